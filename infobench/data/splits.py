"""Stratified splitting shared by the datasets that carve train/val/test out of one labelled pool.

Every split here is a function of the data and a ``split_seed`` only, never of the run seed, so
all seeds of an experiment train and evaluate on the same examples.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from infobench.data.base import Split
from infobench.data.images import take


def stratified_order(y: np.ndarray, seed: int) -> np.ndarray:
    """A permutation of ``range(len(y))`` in which every prefix is class-balanced.

    Each class is shuffled and its members spread evenly over [0, 1) (with a random phase per
    class); sorting by that position interleaves the classes, so the first ``k`` indices hold
    each class ``c`` ``k * n_c / n`` times up to an error below 2 (and so does any contiguous
    run of the order). Cutting it gives stratified splits of exact sizes, even for classes too
    small for scikit-learn's splitters.
    """
    y = np.asarray(y)
    rng = np.random.default_rng(seed)
    position = np.empty(len(y), dtype=np.float64)
    for label in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == label))
        position[members] = (np.arange(len(members)) + rng.random()) / len(members)
    return np.argsort(position, kind="stable")


def _take(x: np.ndarray, y: np.ndarray, index: np.ndarray) -> Split:
    # take(): a lazy image array (ImageFiles) is subset without decoding it.
    return Split(take(x, index), y[index])


def split_stratified(
    x: np.ndarray, y: np.ndarray, val_fraction: float, test_fraction: float, seed: int
) -> tuple[Split, Split, Split]:
    """Split rows of ``x``/``y`` into stratified (train, val, test) sets.

    ``round(fraction * n)`` rows go to val and to test, the rest to train. Rows keep the
    (class-interleaved, shuffled) order of :func:`stratified_order`; arrays keep their dtype.
    """
    order = stratified_order(y, seed)
    n_test = round(test_fraction * len(y))
    n_val = round(val_fraction * len(y))
    return (
        _take(x, y, order[n_test + n_val :]),
        _take(x, y, order[n_test : n_test + n_val]),
        _take(x, y, order[:n_test]),
    )


def carve_val(
    x: np.ndarray, y: np.ndarray, val_fraction: float, seed: int, max_train: int | None = None
) -> tuple[Split, Split]:
    """Split a training pool into stratified (train, val); optionally keep ``max_train`` train rows.

    The val rows are chosen first, so changing ``max_train`` never changes the validation set;
    the kept train rows are a class-balanced prefix of the remaining ones.
    """
    order = stratified_order(y, seed)
    n_val = round(val_fraction * len(y))
    train_index = order[n_val:]
    if max_train is not None:
        # Re-stratify the remainder so the subsample is balanced, not merely a prefix of it.
        train_index = train_index[stratified_order(y[train_index], seed + 1)[:max_train]]
    return _take(x, y, train_index), _take(x, y, order[:n_val])


class SplitParams(BaseModel):
    """Parameters of a stratified train/val/test split of one pool (train gets the rest)."""

    model_config = ConfigDict(extra="forbid")

    val_fraction: float = Field(
        0.2, ge=0.0, lt=1.0, description="fraction of the examples held out for validation"
    )
    test_fraction: float = Field(
        0.2, ge=0.0, lt=1.0, description="fraction of the examples held out for testing"
    )
    split_seed: int = Field(
        0, ge=0, description="seed of the split; independent of the run seed, so fixed across runs"
    )

    @model_validator(mode="after")
    def _train_keeps_examples(self) -> SplitParams:
        if self.val_fraction + self.test_fraction >= 1.0:
            raise ValueError(
                f"val_fraction + test_fraction must be below 1 so that training keeps examples, "
                f"got {self.val_fraction} + {self.test_fraction}"
            )
        return self


class HeldOutParams(BaseModel):
    """Parameters of a dataset whose test set is fixed and whose val set is carved from train."""

    model_config = ConfigDict(extra="forbid")

    val_fraction: float = Field(
        0.1, ge=0.0, lt=1.0, description="fraction of the training pool held out for validation"
    )
    split_seed: int = Field(
        0, ge=0, description="seed of the val split and subsample; independent of the run seed"
    )
    max_train: int | None = Field(
        None, ge=1, description="keep at most this many (class-balanced) training examples"
    )
