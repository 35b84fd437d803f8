"""MNIST-1D (Greydanus, 2020) generated locally, with test domains shifted by generator overrides.

The ``mnist1d`` package builds every example by padding, scaling, translating, adding correlated
and i.i.d. noise to, and shearing one of ten 1-D templates. Shifted domains re-run that generator
with some of these knobs overridden (``Params.shifts``), e.g.::

    shifts:
      noise@2.0: {corr_noise_scale: 0.5, iid_noise_scale: 0.04}
      shear@2.0: {shear_scale: 1.5}

Each domain is keyed by its name in ``shifts`` and ordered as written. It is generated with the
same templates, ``num_samples`` and ``data_seed`` as the clean data and keeps the same test rows,
so, unless ``max_translation`` changes (which alters the random stream), each shifted example
is its clean test example with only the overridden knobs changed. The run seed is not used.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

import numpy as np
from mnist1d.data import get_dataset_args, get_templates
from mnist1d.transform import transform
from mnist1d.utils import ObjectView, set_seed
from pydantic import BaseModel, ConfigDict, Field, field_validator

from infobench.data.base import DataBundle, Dataset, Split
from infobench.data.splits import carve_val
from infobench.registry import register

SHIFTABLE_ARGS = {
    "corr_noise_scale": "scale of the smoothed noise filling the padding (package default 0.25)",
    "iid_noise_scale": "scale of the white noise on every point (package default 0.02)",
    "shear_scale": "scale of the random linear trend added to the signal (package default 0.75)",
    "max_translation": "largest circular shift, an integer >= 1 (package default 48)",
    "scale_coeff": "range of the random amplitude scaling (package default 0.4)",
}
"""Generator arguments a shift may override, with what they control."""


@contextmanager
def _isolated_global_rng() -> Iterator[None]:
    """Restore numpy's and Python's global RNG states afterwards.

    The package draws from the global generators it seeds; without this, loading the data would
    reseed whatever the caller seeded for its own purposes.
    """
    numpy_state, python_state = np.random.get_state(), random.getstate()
    try:
        yield
    finally:
        np.random.set_state(numpy_state)
        random.setstate(python_state)


def generator_args(num_samples: int, seed: int, overrides: dict[str, float]) -> ObjectView:
    """The package's default generator arguments with ``num_samples``, ``seed`` and ``overrides``."""
    args = get_dataset_args(as_dict=True)
    args.update(num_samples=num_samples, seed=seed, **overrides)
    # Specs give numbers as floats; the package draws translations with np.random.choice(int).
    args["max_translation"] = int(args["max_translation"])
    return ObjectView(args)


@lru_cache(maxsize=8)
def _generate_cached(
    num_samples: int, seed: int, overrides: tuple[tuple[str, float], ...]
) -> tuple[np.ndarray, np.ndarray]:
    args = generator_args(num_samples, seed, dict(overrides))
    templates = get_templates()
    with _isolated_global_rng():
        # The same sequence of global draws as mnist1d.data.make_dataset (whose shuffle_seq
        # option stays off), so the examples are identical to the package's for equal args.
        set_seed(args.seed)
        xs, ys = [], []
        for label_ix in range(len(templates["y"])):
            for _ in range(args.num_samples // len(templates["y"])):
                x, _ = transform(templates["x"][label_ix], templates["t"], args)
                xs.append(x)
                ys.append(templates["y"][label_ix])
        order = np.random.permutation(len(ys))
    x, y = np.stack(xs)[order], np.stack(ys)[order].astype(np.int64)
    x.flags.writeable = False
    y.flags.writeable = False
    return x, y


def generate_raw(
    num_samples: int, seed: int, overrides: dict[str, float] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Unstandardised signals x float64 (n, 40) and labels y int64 (n,), as make_dataset draws them.

    ``n`` is ``num_samples`` rounded down to a multiple of 10 (equal classes). Read-only, cached.
    """
    return _generate_cached(num_samples, seed, tuple(sorted((overrides or {}).items())))


def _as_split(x: np.ndarray, y: np.ndarray, mean: float, std: float) -> Split:
    """Standardise with the given statistics; shape the signals as (n, 1, length) float32."""
    return Split(((x - mean) / std).astype(np.float32)[:, None, :], y.copy())


@register("dataset", "mnist1d")
class MNIST1D(Dataset):
    """MNIST-1D signals (n, 1, 40), 10 classes, generated locally; shifts override the generator."""

    class Params(BaseModel):
        """Size and seed of the generated data, the val carve-out, and the shifted domains."""

        model_config = ConfigDict(extra="forbid")

        num_samples: int = Field(
            5000, ge=100, description="examples generated; the package keeps 80% for training"
        )
        data_seed: int = Field(42, ge=0, description="seed of the generator (the package's 42)")
        val_fraction: float = Field(
            0.1, ge=0.0, lt=1.0, description="fraction of the training examples held out for val"
        )
        shifts: dict[str, dict[str, float]] = Field(
            default_factory=dict,
            description=f"domain name -> generator overrides of {', '.join(SHIFTABLE_ARGS)}",
        )

        @field_validator("shifts")
        @classmethod
        def _known_overrides(
            cls, shifts: dict[str, dict[str, float]]
        ) -> dict[str, dict[str, float]]:
            for name, overrides in shifts.items():
                for key, value in overrides.items():
                    if key not in SHIFTABLE_ARGS:
                        raise ValueError(
                            f"shift {name!r}: unknown generator argument {key!r}; "
                            f"valid: {', '.join(SHIFTABLE_ARGS)}"
                        )
                    if value < 0:
                        raise ValueError(f"shift {name!r}: {key} must be >= 0, got {value}")
                translation = overrides.get("max_translation")
                if translation is not None and (translation < 1 or translation != int(translation)):
                    raise ValueError(
                        f"shift {name!r}: max_translation must be an integer >= 1, got {translation}"
                    )
            return shifts

    # Shifts only add test domains: the clean data is generated without their overrides.
    test_only = ("shifts",)

    def files(self) -> list[Path]:
        return []  # generated from the package's templates, which are code

    def load(self, seed: int) -> DataBundle:
        """Train/val from the package's training part, test from its test part, plus shifts.

        Every set, shifted ones included, is standardised with the clean data's mean and std
        (make_dataset's own standardisation), so that a shift is not partly undone.
        """
        p = self.params
        x, y = generate_raw(p.num_samples, p.data_seed)
        mean, std = float(x.mean()), float(x.std())
        n_train = int(len(y) * get_dataset_args().train_split)
        train, val = carve_val(x[:n_train], y[:n_train], p.val_fraction, p.data_seed)
        domains = {}
        for name, overrides in p.shifts.items():
            x_shift, y_shift = generate_raw(p.num_samples, p.data_seed, overrides)
            domains[name] = _as_split(x_shift[n_train:], y_shift[n_train:], mean, std)
        return DataBundle(
            name="mnist1d",
            train=_as_split(train.x, train.y, mean, std),
            val=_as_split(val.x, val.y, mean, std),
            test=_as_split(x[n_train:], y[n_train:], mean, std),
            num_classes=10,
            input_shape=(1, x.shape[1]),
            domains=domains,
        )
