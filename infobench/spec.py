"""Specs: safe YAML loading, ``--set`` overrides, validation with key paths, expansion into runs.

A spec is validated in one pass that collects every problem (file, key path, what was
expected) before anything runs. Valid specs expand into ``Run`` objects: seeds x method
variants, where a method parameter written ``{grid: [...]}`` yields one variant per value
(several grids give their cartesian product).
"""

from __future__ import annotations

import copy
import functools
import hashlib
import itertools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    NonNegativeFloat,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
)
from pydantic import Field as ModelField

from infobench import registry
from infobench.errors import RegistryError, SpecError
from infobench.limits import MAX_RUNS

UNTRAINED = "none"  # ``train: none``: the model is used as its checkpoint has it (tasks.common.is_untrained)

NAME_PATTERN = re.compile(r"[a-z0-9_.-]{1,100}")  # used with fullmatch: no trailing newline slips through
BASE_KEYS = ("name", "task", "description", "seeds", "dataset", "model", "train", "scenario", "methods", "threads",
             "deterministic", "quick", "device", "precision", "claims")
MAX_NODES = 100_000  # values a parsed spec may hold once YAML aliases are expanded
MAX_DEPTH = 40  # nesting a spec may have (deeper is an attack or a mistake, never a config)
MAX_NUMBER = 1e12  # no setting of any plugin is this large; larger means a typo or an attack


def valid_name(name: Any) -> bool:
    """Whether ``name`` may name a results folder: [a-z0-9_.-], 1-100 characters, not . or .."""
    return isinstance(name, str) and NAME_PATTERN.fullmatch(name) is not None and name not in (".", "..")


# ----------------------------------------------------------------------------------------- YAML


# libyaml's parser when PyYAML has it: the pure-Python scanner is quadratic in the nesting of
# flow collections (a 5000-deep "[[[...]]]" takes seconds), libyaml's is linear and capped
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
MAX_SPEC_BYTES = 1 << 20  # a spec is a page of text; a larger file is a mistake or an attack


class _StrictLoader(_SafeLoader):
    """The safe loader, rejecting duplicate keys (PyYAML silently keeps the last one)."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    mapping: dict = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping", node.start_mark, "found an unhashable key", key_node.start_mark
            ) from None
        if key in mapping:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping", node.start_mark, f"found duplicate key {key!r}", key_node.start_mark
            )
        mapping[key] = loader.construct_object(value_node, deep=deep)
    return mapping


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _flow_depth(text: str) -> int:
    """The deepest nesting of ``[ ]`` / ``{ }`` in YAML text, quoted strings and comments skipped
    (checked before parsing: deep flow nesting is slow to parse and can overflow the stack)."""
    depth = deepest = 0
    quote = None
    previous = "\n"
    in_comment = False
    for ch in text:
        if in_comment:
            in_comment = ch != "\n"
        elif quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and previous in " \t\n":
            in_comment = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
        previous = ch
    return deepest


def parse_yaml(text: str, source: str) -> Any:
    """Parse YAML with the safe loader; syntax errors become a ``SpecError`` naming the line."""
    if len(text) > MAX_SPEC_BYTES:
        raise SpecError(source, [f"{len(text):,} characters: larger than a spec can be ({MAX_SPEC_BYTES:,} at most)"])
    if _flow_depth(text) > MAX_DEPTH:
        raise SpecError(source, [f"nested more than {MAX_DEPTH} levels deep"])
    try:
        loader = _StrictLoader(text)  # a SafeLoader: no python/object tags are ever constructed
        try:
            data = loader.get_single_data()
        finally:
            loader.dispose()
        check_size(data, source)
        return data
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpecError(source, [f"not valid YAML{where}: {problem}"]) from None
    except (RecursionError, ValueError, OverflowError) as exc:
        raise SpecError(source, [f"not valid YAML: {exc}"]) from None


def check_size(data: Any, source: str, what: str = "the spec") -> None:
    """Refuse data that would exhaust the machine once expanded: YAML aliases make a 500-byte
    file stand for billions of values (an 'alias bomb'), and deep nesting overflows the stack.

    Sizes are counted with one memo per object, so the count itself costs only the distinct
    objects, not the expanded tree.
    """
    memo: dict[int, int] = {}

    def size(node: Any, depth: int) -> int:
        if depth > MAX_DEPTH:
            raise SpecError(source, [f"{what} is nested more than {MAX_DEPTH} levels deep"])
        if not isinstance(node, (dict, list)):
            return 1
        if id(node) in memo:
            return memo[id(node)]
        children = node.values() if isinstance(node, dict) else node
        total = 1
        for child in children:
            total += size(child, depth + 1)
            if total > MAX_NODES:
                raise SpecError(source, [f"{what} expands to more than {MAX_NODES:,} values "
                                         "(YAML aliases repeated inside each other?)"])
        memo[id(node)] = total
        return total

    size(data, 0)


def read_spec_file(path: str | Path) -> Any:
    path = Path(path)
    if not path.is_file():
        raise SpecError(str(path), ["no such file"])
    try:
        if path.stat().st_size > MAX_SPEC_BYTES:
            raise SpecError(str(path), [f"{path.stat().st_size:,} bytes: larger than a spec can be ({MAX_SPEC_BYTES:,} at most)"])
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(str(path), [f"cannot read: {exc}"]) from None
    return parse_yaml(text, str(path))


# ------------------------------------------------------------------------------------ overrides

_PATH_TOKEN = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _split_path(path: str) -> list[str | int]:
    parts: list[str | int] = []
    for segment in path.split("."):
        tokens = _PATH_TOKEN.findall(segment)
        if not segment or "".join(f"[{i}]" if i else k for k, i in tokens) != segment:
            raise ValueError(f"bad key path {path!r}")
        for key, index in tokens:
            parts.append(int(index) if index else (int(key) if key.isdigit() else key))
    return parts


def apply_overrides(raw: Any, overrides: list[str], source: str) -> Any:
    """Apply ``key.path=value`` overrides; values are parsed as YAML scalars/lists (``1e-3``, ``[1, 2]``)."""
    if not overrides:
        return raw
    data = copy.deepcopy(raw)
    problems = []
    for item in overrides:
        if "=" not in item:
            problems.append(f"--set {item!r}: expected key.path=value")
            continue
        key, _, text = item.partition("=")
        try:
            parts = _split_path(key.strip())
            value = parse_yaml(text, f"--set {key.strip()}") if text.strip() else ""
        except ValueError as exc:
            problems.append(f"--set {item!r}: {exc}")
            continue
        except SpecError as exc:
            problems.extend(f"--set {key.strip()}: {p}" for p in exc.problems)
            continue
        node = data
        try:
            for i, part in enumerate(parts[:-1]):
                if isinstance(node, dict):
                    if not isinstance(node.get(part), (dict, list)):
                        # a method given by name only becomes a mapping so its parameters can be set
                        node[part] = {"name": node[part]} if isinstance(node.get(part), str) else {}
                    node = node[part]
                elif isinstance(node, list) and isinstance(part, int):
                    if isinstance(node[part], str):
                        node[part] = {"name": node[part]}
                    node = node[part]
                else:
                    raise KeyError(".".join(map(str, parts[: i + 1])))
            last = parts[-1]
            if isinstance(node, list) and isinstance(last, int):
                node[last] = value
            elif isinstance(node, dict):
                node[last] = value
            else:
                raise KeyError(key)
        except (KeyError, IndexError, TypeError):
            problems.append(f"--set {item!r}: no such place in the spec")
    if problems:
        raise SpecError(source, problems)
    check_size(data, source)
    return data


# ----------------------------------------------------------------------------------- validation


def _number_problems(node: Any, path: str) -> list[str]:
    """Numbers no setting can mean: not finite, or beyond ``MAX_NUMBER`` (``epochs: 1e40``)."""
    if isinstance(node, dict):
        return [p for k, v in node.items() for p in _number_problems(v, f"{path}.{k}" if path else str(k))]
    if isinstance(node, list):
        return [p for i, v in enumerate(node) for p in _number_problems(v, f"{path}[{i}]")]
    if isinstance(node, (int, float)) and not isinstance(node, bool):
        if node != node or abs(node) == float("inf"):
            return [f"{path}: {node} is not a finite number"]
        if abs(node) > MAX_NUMBER:
            return [f"{path}: {_short(node)} is beyond any sensible setting (|value| <= {MAX_NUMBER:g})"]
    return []


def _grid_count(block: Any) -> int:
    """How many combinations the ``{grid: [...]}`` values of a block (or a list of blocks) make."""
    if isinstance(block, list):
        return sum(_grid_count(item) for item in block) or 1
    if not isinstance(block, dict):
        return 1
    count = 1
    for value in block.values():
        if _is_grid(value) and isinstance(value["grid"], list):
            count *= max(1, len(value["grid"]))
    return count


def _run_count(raw: dict[str, Any], block_keys: list[str]) -> int:
    """Runs a spec will expand into, counted from its grids before anything is expanded."""
    seeds = raw.get("seeds", [0])
    count = len(seeds) if isinstance(seeds, list) else 1
    for key in block_keys:
        count *= _grid_count(raw.get(key))
    methods = raw.get("methods")
    if isinstance(methods, list):
        count *= max(1, sum(_grid_count(m) for m in methods))
    return count


def _loc(prefix: str, loc: tuple) -> str:
    path = prefix
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def _validate_model(model_cls: type[BaseModel], data: Any, prefix: str, problems: list[str]) -> BaseModel | None:
    """Validate ``data`` against ``model_cls``; each pydantic error becomes one problem line."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        problems.append(f"{prefix}: expected a mapping, got {type(data).__name__}")
        return None
    try:
        return model_cls.model_validate(data)
    except ValidationError as exc:
        fields = list(model_cls.model_fields)
        for err in exc.errors():
            where = _loc(prefix, err["loc"])
            if err["type"] == "extra_forbidden":
                key = err["loc"][-1]
                problems.append(f"{where}: unknown key{registry.did_you_mean(str(key), fields)}; expected one of: {', '.join(fields) or 'no keys'}")
            else:
                problems.append(f"{where}: {err['msg']} (got {_short(err.get('input'))})")
        return None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _named_block(block: Any, prefix: str, kind: str, problems: list[str]) -> tuple[Any, dict] | None:
    """A ``{name: ..., **params}`` block (or a bare name): returns (plugin class, params) or None."""
    if isinstance(block, str):
        block = {"name": block}
    if not isinstance(block, dict):
        problems.append(f"{prefix}: expected a mapping with a 'name', got {type(block).__name__}")
        return None
    if "name" not in block:
        problems.append(f"{prefix}.name: missing; say which {kind} to use")
        return None
    name = block["name"]
    if not isinstance(name, str):
        problems.append(f"{prefix}.name: expected a string, got {_short(name)}")
        return None
    try:
        cls = registry.get(kind, name)
    except RegistryError as exc:
        problems.append(f"{prefix}.name: {exc}")
        return None
    return cls, {k: v for k, v in block.items() if k != "name"}


def _is_grid(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"grid"}


def _grid_combos(raw: dict[str, Any], prefix: str, problems: list[str]) -> list[tuple[dict, dict]]:
    """Expand ``{grid: [...]}`` values of a block: [(concrete block, {key: chosen value})]."""
    grid_keys = [k for k, v in raw.items() if _is_grid(v)]
    for key in grid_keys:
        values = raw[key]["grid"]
        if not isinstance(values, list) or not values:
            problems.append(f"{prefix}.{key}.grid: expected a non-empty list of values")
            return []
    combos = itertools.product(*(raw[k]["grid"] for k in grid_keys)) if grid_keys else [()]
    return [({**raw, **dict(zip(grid_keys, combo))}, dict(zip(grid_keys, combo))) for combo in combos]


def _validated_combos(model_cls: type[BaseModel], raw: Any, prefix: str, problems: list[str]) -> list[tuple[dict, dict]]:
    """Every grid combination of ``raw`` validated against ``model_cls``: [(values, choices)]."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        problems.append(f"{prefix}: expected a mapping, got {type(raw).__name__}")
        return []
    out = []
    before = len(problems)
    for concrete, choices in _grid_combos(raw, prefix, problems):
        params = _validate_model(model_cls, concrete, prefix, problems)
        if params is not None:
            out.append((params.model_dump(mode="json"), choices))
    # one bad value repeats the same message for every grid combination; keep each once
    problems[before:] = list(dict.fromkeys(problems[before:]))
    return out


# --------------------------------------------------------------------------------------- claims
# The schema of a spec's ``claims:`` list; infobench.report.claims judges them from results. It
# lives here, not there, because tasks import this module: a module it imports becomes part of
# every run's code digest (provenance.py), and editing how claims are judged must not make
# finished runs stale.

CLAIM_FORMS = ("lower", "higher", "equal", "method")  # the key that says what is claimed
_CLAIM_NEEDS = {"lower": ("than",), "higher": ("than",), "equal": ("to", "tolerance"),
                "method": ("expect", "tolerance")}
_CLAIM_PARTNERS = ("than", "to", "tolerance", "expect")
_Scalar = StrictBool | StrictInt | StrictFloat | StrictStr


class Claim(BaseModel):
    """One published claim a spec declares (the forms: ``infobench.report.claims``)."""

    model_config = ConfigDict(extra="forbid")

    id: str = ModelField(pattern=r"^[A-Za-z0-9_.-]{1,100}$", description="a short name, unique in the spec")
    paper: str = ModelField("", description="where the claim is published: authors, year (and table)")
    metric: str = ModelField(min_length=1, description="the metric the claim is about")
    split: str = ModelField(min_length=1, description="the split (domain) of that metric")
    where: dict[str, _Scalar] = ModelField(default_factory=dict, description="keep the runs whose configuration has these values")
    lower: str | None = ModelField(None, min_length=1, description="this variant's value is below `than`")
    higher: str | None = ModelField(None, min_length=1, description="this variant's value is above `than`")
    equal: str | None = ModelField(None, min_length=1, description="this variant's value is within `tolerance` of `to`")
    method: str | None = ModelField(None, min_length=1, description="this variant's value is within `tolerance` of `expect`")
    than: StrictStr | StrictFloat | StrictInt | None = ModelField(None, description="a variant, or a number")
    to: StrictStr | StrictFloat | StrictInt | None = ModelField(None, description="a variant, or a number")
    tolerance: NonNegativeFloat | None = None
    expect: float | None = None
    published: dict[str, float] = ModelField(default_factory=dict, description="the paper's numbers, in infobench's units")
    note: str = ""

    @property
    def form(self) -> str:
        return next(f for f in CLAIM_FORMS if getattr(self, f) is not None)

    @property
    def subject(self) -> str:
        return getattr(self, self.form)

    @property
    def reference(self) -> str | float:
        """The other side: a variant, or a number (``than``, ``to`` or ``expect``)."""
        return {"lower": self.than, "higher": self.than, "equal": self.to, "method": self.expect}[self.form]

    @property
    def names(self) -> list[tuple[str, str]]:
        """(key, variant name) of each side that names a variant."""
        out = [(self.form, self.subject)]
        if isinstance(self.reference, str):
            out.append(("than" if self.form in ("lower", "higher") else "to", self.reference))
        return out

    def text(self) -> str:
        """The claim in words: ``tent < source``, ``temperature = uncalibrated ± 0.002``."""
        ref = self.reference if isinstance(self.reference, str) else f"{self.reference:.4g}"
        if self.form in ("lower", "higher"):
            return f"{self.subject} {'<' if self.form == 'lower' else '>'} {ref}"
        return f"{self.subject} = {ref} ± {self.tolerance:.4g}"


def _claim_form_problems(claim: Claim, prefix: str) -> list[str]:
    """What a field-valid claim still lacks or has too much of, each with its key path."""
    given = [f for f in CLAIM_FORMS if getattr(claim, f) is not None]
    if not given:
        return [f"{prefix}: say what is claimed: lower/than, higher/than, equal/to/tolerance or method/expect/tolerance"]
    if len(given) > 1:
        return [f"{prefix}.{given[1]}: one claim per entry; this one already says {given[0]}: (make it a claim of its own)"]
    form = given[0]
    needs = _CLAIM_NEEDS[form]
    problems = [f"{prefix}.{key}: missing; a {form}: claim needs {' and '.join(needs)}"
                for key in needs if getattr(claim, key) is None]
    problems += [f"{prefix}.{key}: not used by a {form}: claim (it takes {' and '.join(needs)})"
                 for key in _CLAIM_PARTNERS if key not in needs and getattr(claim, key) is not None]
    return problems


_SETTING_ITEM = re.compile(r",(?=[A-Za-z_][\w.-]*=)")  # a comma that starts the next key=value of a bracket


def split_label(label: str) -> tuple[str, dict[str, str]]:
    """``tent [scenario.rounds=1,train.lr=0.1]`` -> (``tent``, {scenario.rounds: 1, train.lr: 0.1}),
    values as the label writes them (a list value keeps its commas)."""
    base, bracket, rest = label.partition(" [")
    if not bracket or not rest.endswith("]"):
        return label, {}
    items = [item.partition("=") for item in _SETTING_ITEM.split(rest[:-1]) if item]
    return base, {k: v for k, _, v in items}


@dataclass
class MethodVariant:
    """One concrete method configuration: a name and fully resolved parameters."""

    name: str
    params: dict[str, Any]
    label: str
    given: frozenset[str] = frozenset()  # parameters the spec set itself (family defaults leave them)
    entry: dict[str, Any] | None = field(default=None, repr=False, compare=False)  # its spec.methods entry


@dataclass
class Setting:
    """One combination of the non-method blocks (dataset, model, train, scenario, task blocks)."""

    blocks: dict[str, Any]
    label: str  # the grid choices that distinguish it, e.g. "train.lr=0.01"; "" when there is one


@dataclass
class Spec:
    """A validated spec: every block resolved (defaults filled in), grids expanded."""

    source: str
    name: str
    task: str
    description: str
    seeds: list[int]
    blocks: dict[str, list[dict[str, Any]]]  # resolved values of each block, one per grid choice
    settings: list[Setting]
    methods: list[dict[str, Any]]  # resolved entries, grids kept as {grid: [...]} for spec.yaml
    variants: list[MethodVariant]
    threads: int | None = None
    deterministic: bool = False
    quick: dict[str, Any] = field(default_factory=dict)  # the quick: overrides, as written (not applied)
    device: str | None = None  # where runs compute (--device overrides it); not part of a run's identity
    precision: str = "fp32"  # part of every run's configuration when not fp32
    claims: list[Claim] = field(default_factory=list)  # published claims the results are judged on; no run's identity

    def resolved(self) -> dict[str, Any]:
        """The spec as written to results/<name>/spec.yaml (a block with a grid lists each value)."""
        out: dict[str, Any] = {"name": self.name, "task": self.task}
        if self.description:
            out["description"] = self.description
        out["seeds"] = self.seeds
        for key, values in self.blocks.items():
            out[key] = values[0] if len(values) == 1 else values
        out["methods"] = [self._as_run(entry) for entry in self.methods]
        if self.threads is not None:
            out["threads"] = self.threads
        if self.deterministic:
            out["deterministic"] = True
        if self.device is not None:
            out["device"] = self.device
        if self.precision != "fp32":
            out["precision"] = self.precision
        if self.claims:  # in spec.yaml, so that `infobench claims DIR` finds them; never in a run's config
            out["claims"] = [c.model_dump(mode="json", exclude_defaults=True) for c in self.claims]
        return out

    def _as_run(self, entry: dict[str, Any]) -> dict[str, Any]:
        """A method entry with the values its runs use. A parameter the spec left to the benchmark
        family's default (``TTAMethod.family_defaults``) shows that default when every setting's
        family agrees on it; where they differ it is left out, so that reading spec.yaml back
        applies each setting's own. Either way spec.yaml, read back, plans the same runs."""
        given = next((v.given for v in self.variants if v.entry == entry), frozenset())
        per_setting = [_family_defaults(entry["name"], setting, self) for setting in self.settings]
        shown = dict(entry)
        for key in sorted(set().union(*per_setting) - given):
            values = [d.get(key, entry.get(key)) for d in per_setting]
            if all(v == values[0] for v in values):
                shown[key] = values[0]
            else:
                shown.pop(key, None)
        return shown

    def runs(self) -> list[Run]:
        """Seeds x settings x method variants, seed-major so early results cover every method."""
        out = []
        for seed in self.seeds:
            for setting in self.settings:
                for variant in self.variants:
                    config = {
                        "task": self.task,
                        **setting.blocks,
                        "method": {"name": variant.name, "params": _with_family_defaults(variant, setting, self)},
                        "seed": seed,
                    }
                    if self.precision != "fp32":
                        config["precision"] = self.precision
                    label = f"{variant.label} [{setting.label}]" if setting.label else variant.label
                    out.append(Run(config=config, variant=label))
        return out


def _family_defaults(method: str, setting: Setting, spec: Spec) -> dict[str, Any]:
    """The method's defaults for the benchmark family of the setting's dataset
    (``TTAMethod.family_defaults``); ``{}`` for a method or dataset without one."""
    kind = registry.get("task", spec.task).method_kind
    table = getattr(registry.get(kind, method), "family_defaults", None)
    dataset = setting.blocks.get("dataset")
    if not table or not isinstance(dataset, dict):
        return {}
    dataset_kind = registry.get("task", spec.task).dataset_kind
    family = getattr(registry.get(dataset_kind, dataset["name"]), "family", None)
    return table.get(family, {})


def _with_family_defaults(variant: MethodVariant, setting: Setting, spec: Spec) -> dict[str, Any]:
    """The variant's parameters with its method's defaults for the dataset's benchmark family
    applied to every parameter the spec did not set."""
    defaults = _family_defaults(variant.name, setting, spec)
    return {**variant.params, **{k: v for k, v in defaults.items() if k not in variant.given}}


@dataclass
class Run:
    """One unit of work: a fully resolved configuration; its id is a hash of that configuration
    (which, once planned, holds the content digests of the data files it reads under ``data``).
    ``code`` is the digest of the code it runs (``infobench.provenance``), set by the planner."""

    config: dict[str, Any]
    variant: str
    code: str = ""

    @property
    def run_id(self) -> str:
        return _digest(self.config)

    @property
    def setting_id(self) -> str:
        """The id shared by the seeds of one setting: the configuration's hash without the seed.
        Runs are pooled (mean ± std over seeds) only when they share it."""
        return _digest({k: v for k, v in self.config.items() if k != "seed"})

    @property
    def task(self) -> str:
        return self.config["task"]

    @property
    def method(self) -> str:
        return self.config["method"]["name"]

    @property
    def params(self) -> dict[str, Any]:
        return self.config["method"]["params"]

    @property
    def seed(self) -> int:
        return self.config["seed"]

    @property
    def dataset(self) -> str:
        return self.config["dataset"]["name"]

    @property
    def model(self) -> str:
        model = self.config.get("model")
        return model["name"] if model else ""


def _digest(config: dict[str, Any]) -> str:
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def _format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_format_value(v) for v in value) + "]"
    return str(value)


def variant_label(name: str, params: dict[str, Any], defaults: dict[str, Any]) -> str:
    """``tent(lr=0.0001)``: the method name with its non-default parameters."""
    changed = [f"{k}={_format_value(v)}" for k, v in params.items() if k in defaults and defaults[k] != v]
    return f"{name}({','.join(changed)})" if changed else name


def _defaults(model_cls: type[BaseModel]) -> dict[str, Any]:
    if any(f.is_required() for f in model_cls.model_fields.values()):
        return {}
    return model_cls().model_dump(mode="json")


def _expand_method(entry: Any, index: int, method_kind: str, problems: list[str]) -> tuple[dict, list[MethodVariant]]:
    prefix = f"methods[{index}]"
    found = _named_block(entry, prefix, method_kind, problems)
    if found is None:
        return {}, []
    cls, raw = found
    name = cls.registered_name
    defaults = _defaults(cls.Params)
    combos = _validated_combos(cls.Params, raw, prefix, problems)
    resolved_entry: dict[str, Any] = {"name": name}
    for values, _ in combos:
        for key, value in values.items():
            resolved_entry[key] = raw[key] if _is_grid(raw.get(key)) else value
    variants = [MethodVariant(name, values, variant_label(name, values, defaults), frozenset(raw), resolved_entry)
                for values, _ in combos]
    return resolved_entry, variants


def _named_combos(block: Any, prefix: str, kind: str, problems: list[str]) -> list[tuple[dict, dict]]:
    """A named block (``{name: ..., **params}``) with its grids expanded: [(resolved, choices)]."""
    if block is None:
        problems.append(f"{prefix}: missing; give at least {{name: ...}} (one of {', '.join(registry.names(kind))})")
        return []
    found = _named_block(block, prefix, kind, problems)
    if found is None:
        return []
    cls, raw = found
    if kind != "model":
        return [({"name": cls.registered_name, **values}, choices)
                for values, choices in _validated_combos(cls.Params, raw, prefix, problems)]
    from infobench.models.checkpoint import ModelCommon

    # a model block also takes the keys every model has (checkpoint, normalize, strict); they are
    # kept in the configuration only when set, so that runs without them keep their ids
    defaults = ModelCommon().model_dump(mode="json")
    block_cls = _model_block_class(cls.Params, ModelCommon)
    return [({"name": cls.registered_name,
              **{k: v for k, v in values.items() if k not in defaults or v != defaults[k]}}, choices)
            for values, choices in _validated_combos(block_cls, raw, prefix, problems)]


@functools.cache
def _model_block_class(params: type[BaseModel], common: type[BaseModel]) -> type[BaseModel]:
    """A model's own Params and the keys common to every model, validated as one block."""
    # common first in the bases, so that the model's own fields come first in messages
    return type(f"{params.__name__}Block", (common, params), {"__doc__": params.__doc__})


def _named_list_combos(block: Any, key: str, problems: list[str], kind: str | None = None) -> list[tuple[dict, dict]]:
    """The named block at ``key``, or a list of them (several datasets or models: one setting
    each); names are looked up under registry ``kind`` (default: ``key``)."""
    kind = kind or key
    if isinstance(block, list) and block:
        return [c for i, item in enumerate(block) for c in _named_combos(item, f"{key}[{i}]", kind, problems)]
    return _named_combos(block, key, kind, problems)


def _label(block: str, choices: dict[str, Any]) -> str:
    return ",".join(f"{block}.{k}={_format_value(v)}" for k, v in choices.items())


def validate(raw: Any, source: str = "<spec>", max_runs: int = MAX_RUNS) -> Spec:
    """Validate a parsed spec; raises ``SpecError`` listing every problem with its key path.

    A spec whose grids multiply to more than ``max_runs`` runs is refused before any of them
    is expanded (naming the product), so a typo in a grid cannot exhaust the machine.
    """
    from infobench.tasks.base import Task  # the task decides which blocks it accepts

    problems: list[str] = []
    if not isinstance(raw, dict):
        raise SpecError(source, [f"the spec must be a mapping of keys (name, task, ...), got {type(raw).__name__}"])

    task_cls: type[Task] | None = None
    task_name = raw.get("task")
    if task_name is None:
        problems.append("task: missing; one of " + ", ".join(registry.names("task")))
    elif not isinstance(task_name, str):
        problems.append(f"task: expected a string, got {_short(task_name)}")
    else:
        try:
            task_cls = registry.get("task", task_name)
        except RegistryError as exc:
            problems.append(f"task: {exc}")

    allowed = list(BASE_KEYS) + (list(task_cls.blocks) if task_cls else [])
    for key in raw:
        if key not in allowed:
            problems.append(f"{key}: unknown key{registry.did_you_mean(str(key), allowed)}; expected one of: {', '.join(allowed)}")

    name = raw.get("name")
    if name is None:
        problems.append("name: missing; the results go to results/<name>/")
    elif not valid_name(name):
        problems.append(f"name: {_short(name)} must be 1-100 characters of a-z, 0-9, '_', '.', '-' "
                        "(it names the results folder)")

    description = raw.get("description", "")
    if not isinstance(description, str):
        problems.append("description: expected a string")
        description = ""

    seeds = raw.get("seeds", [0])
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        seeds = [seeds]
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) and not isinstance(s, bool) and 0 <= s < 2**32 for s in seeds):
        problems.append(f"seeds: expected a non-empty list of integers in [0, 2^32), got {_short(seeds)}")
        seeds = []
    elif len(set(seeds)) != len(seeds):
        problems.append(f"seeds: repeated seed in {seeds}")

    threads = raw.get("threads")
    if threads is not None and (not isinstance(threads, int) or isinstance(threads, bool) or not 1 <= threads <= 1024):
        problems.append(f"threads: expected a positive integer, got {_short(threads)}")
    deterministic = raw.get("deterministic", False)
    if not isinstance(deterministic, bool):
        problems.append(f"deterministic: expected true or false, got {_short(deterministic)}")
    device = raw.get("device")
    if device is not None:
        from infobench.device import DEVICE_NAME

        if not isinstance(device, str) or not DEVICE_NAME.fullmatch(device):
            problems.append(f"device: expected auto, cpu, cuda, cuda:N or mps, got {_short(device)}")
    precision = raw.get("precision", "fp32")
    if precision not in ("fp32", "bf16", "fp16"):
        problems.append(f"precision: expected fp32, bf16 or fp16, got {_short(precision)}")
    quick = raw.get("quick", {})
    if not isinstance(quick, dict) or not all(isinstance(k, str) for k in quick):
        problems.append("quick: expected a mapping of key paths to values (the overrides --quick applies)")
        quick = {}
    claims = _claims(raw.get("claims"), problems)
    problems.extend(_number_problems({k: v for k, v in raw.items() if k != "quick"}, ""))
    if problems and any("not a finite number" in p or "beyond any sensible" in p for p in problems):
        raise SpecError(source, problems)  # nothing below is safe to expand with such numbers

    block_keys = ["dataset", "model", "train", "scenario", *(task_cls.blocks if task_cls else ())]
    planned = _run_count(raw, block_keys)
    if planned > max_runs:
        raise SpecError(source, [*problems, f"the spec expands into {planned:,} runs (seeds x settings x method "
                                            f"variants), over the limit of {max_runs:,}; shrink the grids or "
                                            "raise the limit with --max-runs"])

    # each block: a list of (resolved values, grid choices), one entry per grid combination
    block_combos: dict[str, list[tuple[dict, dict]]] = {
        "dataset": _named_list_combos(raw.get("dataset"), "dataset", problems,
                                      task_cls.dataset_kind if task_cls is not None else "dataset"),
    }
    if task_cls is None or task_cls.uses_model:
        block_combos["model"] = _named_list_combos(raw.get("model"), "model", problems)
    elif "model" in raw:
        problems.append(f"model: task {task_name!r} trains no model of its own; remove this block")

    methods: list[dict[str, Any]] = []
    variants: list[MethodVariant] = []
    if task_cls is not None:
        train_cls = task_cls.train_config()
        if train_cls is not None and raw.get("train") == UNTRAINED:
            block_combos["train"] = [(UNTRAINED, {})]  # the model is used as its checkpoint has it
        elif train_cls is not None:
            block_combos["train"] = _validated_combos(train_cls, raw.get("train", {}), "train", problems)
        elif "train" in raw:
            problems.append(f"train: task {task_name!r} takes no train block")
        block_combos["scenario"] = _validated_combos(task_cls.Scenario, raw.get("scenario", {}), "scenario", problems)
        for key, block_cls in task_cls.blocks.items():
            block_combos[key] = _validated_combos(block_cls, raw.get(key, {}), key, problems)

        entries = raw.get("methods")
        if entries is None:
            problems.append("methods: missing; list at least one of " + ", ".join(registry.names(task_cls.method_kind)))
        elif not isinstance(entries, list) or not entries:
            problems.append("methods: expected a non-empty list of method names or {name: ..., param: value} mappings")
        else:
            for i, entry in enumerate(entries):
                resolved, expanded = _expand_method(entry, i, task_cls.method_kind, problems)
                if expanded:
                    methods.append(resolved)
                    variants.extend(expanded)
            labels = [v.label for v in variants]
            repeated = sorted({label for label in labels if labels.count(label) > 1})
            if repeated:
                problems.append(f"methods: the same variant is listed more than once: {', '.join(repeated)}")

    settings: list[Setting] = []
    if not problems:
        keys = list(block_combos)
        for combo in itertools.product(*(block_combos[k] for k in keys)):
            blocks = {k: values for k, (values, _) in zip(keys, combo)}
            label = ",".join(filter(None, (_label(k, choices) for k, (_, choices) in zip(keys, combo))))
            settings.append(Setting(blocks=blocks, label=label))
        for setting in settings:
            problems.extend(p for p in task_cls.check_spec(setting.blocks) if p not in problems)
            model = setting.blocks.get("model")
            if setting.blocks.get("train") == UNTRAINED and isinstance(model, dict) and not model.get("checkpoint"):
                problem = (f"train: none uses the model as its checkpoint has it, but model {model['name']!r} has no "
                           "checkpoint: give model.checkpoint: PATH (a .pt or .safetensors state dict)")
                if problem not in problems:
                    problems.append(problem)
        problems.extend(_claim_name_problems(claims, variants, settings, task_cls.method_kind))

    if problems:
        raise SpecError(source, problems)
    return Spec(
        source=source, name=name, task=task_name, description=description, seeds=seeds,
        blocks={k: [values for values, _ in combos] for k, combos in block_combos.items()},
        settings=settings, methods=methods, variants=variants, threads=threads,
        deterministic=deterministic, quick=quick, device=device, precision=precision, claims=claims,
    )


def _claims(raw: Any, problems: list[str]) -> list[Claim]:
    """The ``claims:`` list validated (:class:`Claim` and its form rules), each problem with its
    key path (``claims[1].than``)."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        problems.append("claims: expected a list of claims, e.g. - {id: ..., metric: ..., split: ..., lower: A, than: B}")
        return []
    claims = []
    for i, entry in enumerate(raw):
        claim = _validate_model(Claim, entry, f"claims[{i}]", problems)
        if claim is not None:
            found = _claim_form_problems(claim, f"claims[{i}]")
            problems.extend(found)
            claims += [] if found else [claim]
    ids = [c.id for c in claims]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        problems.append(f"claims: the same id is used more than once: {', '.join(repeated)}")
    return claims


def _claim_name_problems(claims: list[Claim], variants: list[MethodVariant], settings: list[Setting],
                         method_kind: str) -> list[str]:
    """Names the claims give that the spec lacks: a variant (a variant label or a method name) and
    the configuration key paths of ``where:`` and of a name's setting bracket
    (``tent [scenario.rounds=1]``). Values are not checked here: ``--quick`` and ``--set`` may
    run other values than the full spec, and judging a folder names what it lacks. A method of
    the task that a ``--set methods=...`` left out is no problem: its claims are judged "not run"."""
    if not claims:
        return []
    from infobench.results import flat_config

    known = list(dict.fromkeys([*(v.label for v in variants), *(v.name for v in variants)]))
    paths = {key for s in settings for key in flat_config(s.blocks)}
    paths |= {key for v in variants for key in flat_config({"method": {"params": v.params}}) if key != "method"}
    paths = sorted(paths)
    problems = []
    for i, claim in enumerate(claims):
        prefix = f"claims[{i}]"
        for key, name in claim.names:
            base, setting = split_label(name)
            # a label whose parameters a --set changed is judged later; its method must be here
            method = base.split("(", 1)[0]
            if base not in known and method not in known and method not in registry.names(method_kind):
                problems.append(f"{prefix}.{key}: no variant {base!r} in this spec{registry.did_you_mean(base, known)}; "
                                f"variants: {', '.join(known)}")
            problems += [f"{prefix}.{key}: {path!r} in its setting bracket is no key path of the runs' "
                         f"configuration{registry.did_you_mean(path, paths)}" for path in setting if path not in paths]
        problems += [f"{prefix}.where.{key}: no such key path in the runs' configuration{registry.did_you_mean(key, paths)}"
                     for key in claim.where if key not in paths]
    return problems


def read_claims(path: str | Path) -> list[Claim]:
    """The validated ``claims:`` of a spec file (a results folder's spec.yaml too), without
    validating the rest of it; malformed claims are a ``SpecError`` naming each key path."""
    raw = read_spec_file(path)
    problems: list[str] = []
    claims = _claims(raw.get("claims") if isinstance(raw, dict) else None, problems)
    if problems:
        raise SpecError(str(path), problems)
    return claims


def quick_overrides(raw: Any) -> list[str]:
    """The spec's ``quick:`` block as ``--set`` items (what ``--quick`` applies before ``--set``)."""
    quick = raw.get("quick") if isinstance(raw, dict) else None
    if not quick:
        return []
    if not isinstance(quick, dict):
        return []  # validation names the problem
    return [f"{key}={json.dumps(value)}" for key, value in quick.items()]


def load_spec(path: str | Path, overrides: list[str] | None = None, quick: bool = False,
              max_runs: int = MAX_RUNS) -> Spec:
    """Read, override and validate one spec file.

    With ``quick``, the spec's own ``quick:`` overrides (a short version of the experiment) are
    applied first, then ``overrides``; the results go to ``<name>-quick`` unless the block names
    a folder itself. A spec without a ``quick:`` block is an error then.
    """
    raw = read_spec_file(path)
    if quick:
        shortening = quick_overrides(raw)
        if not shortening:
            raise SpecError(str(path), ["--quick: this spec has no quick: block of overrides"])
        if isinstance(raw.get("name"), str) and not any(item.startswith("name=") for item in shortening):
            shortening.append(f"name={raw['name']}-quick")  # never mixed into the full experiment's folder
        raw = apply_overrides(raw, shortening, f"{path} (quick:)")
    raw = apply_overrides(raw, overrides or [], str(path))
    return validate(raw, str(path), max_runs=max_runs)
