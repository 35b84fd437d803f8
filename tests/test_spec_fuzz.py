"""Fuzzing the spec loader: any YAML ends in a SpecError (exit 2) or a valid spec, never a traceback."""

from __future__ import annotations

import copy
import string

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests_support import TINY

from infobench.errors import SpecError
from infobench.spec import parse_yaml, validate

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20),
)
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)), max_leaves=12)
keys = st.sampled_from(["name", "task", "seeds", "dataset", "model", "train", "scenario", "methods", "threads", "extra"])
subkeys = st.sampled_from(["name", "epochs", "lr", "batch_size", "width", "max_iter", "grid", "n_bins", "severity"])


def outcome(raw) -> str:
    """Validate; anything but a valid spec or a SpecError fails the test (by propagating)."""
    try:
        validate(raw, "fuzz.yaml")
    except SpecError as exc:
        assert exc.problems and all(isinstance(p, str) and p for p in exc.problems)
        return "error"
    return "valid"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(key=keys, sub=subkeys, value=values)
def test_mutated_specs_end_in_a_clear_message(key, sub, value):
    raw = copy.deepcopy(TINY)
    block = raw.get(key)
    if isinstance(block, dict):
        block[sub] = value
    elif isinstance(block, list) and block:
        block[0] = value
    else:
        raw[key] = value
    assert outcome(raw) in ("valid", "error")


@settings(max_examples=150, deadline=None)
@given(text=st.text(alphabet=string.printable + "äö€\u2028", max_size=200))
def test_random_text_ends_in_a_clear_message(text):
    try:
        raw = parse_yaml(text, "fuzz.yaml")
    except SpecError as exc:
        assert "not valid YAML" in str(exc)
        return
    assert outcome(raw) in ("valid", "error")


@settings(max_examples=60, deadline=None)
@given(tag=st.sampled_from(["!!python/object:os.system", "!!python/object/apply:os.system", "!!python/name:os.system",
                            "!!binary", "!!set", "!custom"]))
def test_python_tags_never_construct_objects(tag):
    text = f"name: x\ntask: calibration\nmethods: [{tag} 'echo hacked']\n"
    try:
        raw = parse_yaml(text, "fuzz.yaml")
    except SpecError:
        return
    assert outcome(raw) == "error"


def test_deep_nesting_and_huge_numbers_are_refused_cleanly():
    deep = "a: " + "[" * 5000 + "]" * 5000
    try:
        parse_yaml(deep, "deep.yaml")
    except SpecError:
        pass
    raw = copy.deepcopy(TINY)
    raw["train"]["epochs"] = 10**40
    raw["seeds"] = [-1]
    assert outcome(raw) == "error"
    assert yaml.safe_dump(TINY)  # the fixture spec itself is plain data
