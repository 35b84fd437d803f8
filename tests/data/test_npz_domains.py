"""npz shifted domains: members ``domain/<name>/x`` and ``domain/<name>/y`` become
``DataBundle.domains`` in archive order, with the same checks as the other sets, and a TTA run
on such a file runs (it failed with "has no shifted domains" before)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from infobench import registry
from infobench.errors import DataError

NPZ = registry.get("dataset", "npz")


def _arrays(n: int = 60, classes: int = 3, seed: int = 0) -> dict[str, np.ndarray]:
    """Two Gaussian blobs per class in 4-d; the domains shift them by +2 and scale them by 3."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    x = rng.normal(size=(n, 4)) + 3 * np.eye(4)[y]
    return {
        "x": x,
        "y": y,
        # Keyword order is archive order: snow before fog, on purpose not sorted.
        "domain/snow@5/x": x + 2.0,
        "domain/snow@5/y": y,
        "domain/fog@5/x": 3.0 * x[:30],
        "domain/fog@5/y": y[:30].astype(np.uint8),
    }


def test_domains_are_read_in_archive_order(tmp_path):
    arrays = _arrays()
    np.savez(tmp_path / "d.npz", **arrays)
    bundle = NPZ(NPZ.Params(path=tmp_path / "d.npz")).load(0)
    assert list(bundle.domains) == ["snow@5", "fog@5"]
    snow, fog = bundle.domains["snow@5"], bundle.domains["fog@5"]
    assert snow.x.dtype == np.float32 and fog.y.dtype == np.int64
    assert np.array_equal(snow.x, (arrays["x"] + 2.0).astype(np.float32))
    assert np.array_equal(fog.y, arrays["y"][:30]) and fog.x.shape == (30, 4)
    assert bundle.num_classes == 3 and len(bundle.train) + len(bundle.val) + len(bundle.test) == 60


@pytest.mark.parametrize(
    "change, match",
    [
        ({"domain/fog@5/x": np.zeros((30, 5))}, r"'domain/fog@5/x' has examples of shape \(5,\) but 'x' has \(4,\)"),
        ({"domain/fog@5/y": np.zeros(29)}, r"'domain/fog@5/y' has shape \(29,\) but there are 30 inputs"),
        ({"domain/fog@5/y": None}, "has 'domain/fog@5/x' without 'domain/fog@5/y'"),
        ({"domain/fog@5/z": np.zeros(3)}, "has member 'domain/fog@5/z', not 'domain/<name>/x'"),
        ({"domain/x": np.zeros(3)}, "has member 'domain/x', not 'domain/<name>/x'"),
        ({"domain/fog@5/x": np.full((30, 4), np.inf)}, "'domain/fog@5/x' contains NaN or infinite"),
        ({"domain/fog@5/y": np.full(30, 3)}, "domain 'fog@5' holds label 3, but the other sets have classes 0..2"),
    ],
)
def test_malformed_domains_name_the_path_and_format(tmp_path, change, match):
    arrays = {**_arrays(), **change}
    path = tmp_path / "d.npz"
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    with pytest.raises(DataError, match=match) as info:
        NPZ(NPZ.Params(path=path)).load(0)
    assert str(info.value).startswith(f"{path}: ")
    assert "shifted domains as pairs 'domain/<name>/x'/'domain/<name>/y'" in str(info.value)


def test_a_tta_run_on_an_npz_with_domains_runs(tmp_path):
    from infobench.results import load_metrics
    from infobench.runner import execute, plan
    from infobench.spec import validate

    np.savez(tmp_path / "shift.npz", **_arrays(n=90))
    spec = validate({
        "name": "npz-tta",
        "task": "tta",
        "seeds": [0],
        "threads": 1,
        "dataset": {"name": "npz", "path": str(tmp_path / "shift.npz")},
        "model": {"name": "mlp", "width": 8, "depth": 1},
        "train": {"epochs": 2, "lr": 1.0e-2, "batch_size": 32},
        "scenario": {"order": "continual", "batch_size": 16},
        "methods": ["source"],
    })
    summary = execute(plan(spec, tmp_path / "out"))
    assert summary.statuses == {"done": 1}
    m = load_metrics(tmp_path / "out" / "npz-tta")
    samples = m[(m.metric == "samples") & m.split.isin(["snow@5", "fog@5", "stream"])]
    assert dict(zip(samples.split, samples.value, strict=True)) == {"snow@5": 90, "fog@5": 30, "stream": 120}
    assert re.fullmatch(r"[0-9a-f]{64}", plan(spec, tmp_path / "out").runs[0].config["data"][0])
