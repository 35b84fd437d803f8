"""The 12-bit synthetic task of Shwartz-Ziv & Tishby ("Opening the Black Box of Deep Neural
Networks via Information", 2017, Sec. 3.1), generated in code.

The inputs are all 2^12 = 4096 binary vectors x in {0, 1}^12. As in the paper, the 12 bits
stand for 12 points spread uniformly over the 2-sphere; here they are the 12 vertices v_i of a
regular icosahedron (the only 12-point configuration on the sphere with all points
equivalent). The label is a threshold of a spherically symmetric function of the marked points:

    f(x) = || sum_i x_i v_i ||^2,        y = 1  iff  f(x) > theta,   theta = 2.5

f is invariant under every rotation of the sphere that maps the point set to itself (it depends
only on the pairwise angles of the marked points). The values of f are discrete; theta = 2.5
falls between the levels 2.211 and 2.894 and gives p(y = 1) = 2036 / 4096 = 0.497, the closest
to 1/2 any threshold of f can get.

Documented choice: the paper's own f (a file shipped with its code) is not public in closed
form, so this f is the simplest O(3)-invariant function of the point set whose threshold splits
the inputs in half; the information-plane phenomena studied on it depend on the 12-10-7-5-4-3-2
network and the 4096 uniform inputs, not on the particular symmetric rule.

Split: a stratified 80/20 train/test split fixed by ``split_seed`` (the paper's 80% training
size); ``val_fraction`` (0 by default, the paper has no validation set) is carved out of the
test share.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from infobench.data.base import DataBundle, Dataset
from infobench.data.splits import split_stratified
from infobench.registry import register

N_BITS = 12
THRESHOLD = 2.5


def icosahedron_vertices() -> np.ndarray:
    """The 12 unit vectors (12, 3) of a regular icosahedron: cyclic permutations of (0, +-1, +-phi)."""
    phi = (1.0 + 5.0**0.5) / 2.0
    points = []
    for a in (-1.0, 1.0):
        for b in (-phi, phi):
            points += [(0.0, a, b), (a, b, 0.0), (b, 0.0, a)]
    v = np.asarray(points)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def all_inputs() -> np.ndarray:
    """Every 12-bit input as float32 (4096, 12) of 0/1; row i is i in binary, most significant bit first."""
    codes = np.arange(2**N_BITS)[:, None]
    return ((codes >> np.arange(N_BITS - 1, -1, -1)) & 1).astype(np.float32)


def symmetric_score(x: np.ndarray) -> np.ndarray:
    """f(x) = ||sum_i x_i v_i||^2 for rows x of shape (n, 12): (n,) float64."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != N_BITS:
        raise ValueError(f"tishby12 inputs must have shape (n, {N_BITS}), got {x.shape}")
    m = x @ icosahedron_vertices()
    return np.einsum("ij,ij->i", m, m)


@lru_cache(maxsize=1)
def tishby_pool() -> tuple[np.ndarray, np.ndarray]:
    """All 4096 inputs and their labels (x float32 (4096, 12), y int64 (4096,)); read-only."""
    x = all_inputs()
    y = (symmetric_score(x) > THRESHOLD).astype(np.int64)
    x.flags.writeable = False
    y.flags.writeable = False
    return x, y


@register("dataset", "tishby12")
class Tishby12(Dataset):
    """Shwartz-Ziv & Tishby's 12-bit task: all 4096 binary inputs, symmetric rule, p(y=1)=0.497."""

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")

        test_fraction: float = Field(0.2, gt=0, lt=1, description="Share of the 4096 inputs held out (paper: 0.2).")
        val_fraction: float = Field(0.0, ge=0, lt=1, description="Share carved out as validation (paper: none).")
        split_seed: int = Field(0, ge=0, description="Seed of the stratified split (not the run seed).")

        @model_validator(mode="after")
        def _fractions_leave_training_data(self):
            if self.test_fraction + self.val_fraction >= 1:
                raise ValueError(
                    f"test_fraction + val_fraction must be < 1, got {self.test_fraction} + {self.val_fraction}"
                )
            return self

    def load(self, seed: int) -> DataBundle:
        x, y = tishby_pool()
        train, val, test = split_stratified(x, y, self.params.val_fraction, self.params.test_fraction,
                                            self.params.split_seed)
        return DataBundle(name="tishby12", train=train, val=val, test=test, num_classes=2,
                          input_shape=(N_BITS,))
