"""Shared machinery of the variational (critic-based) MI bounds: MINE/DV, NWJ, InfoNCE, WDM.

A critic network f(x, y) is trained by Adam to maximise the bound on minibatches; the reported
value is the bound averaged over one pass of disjoint minibatches of the whole sample after
training. The default critic is separable, f(x, y) = g(x)^T h(y) / sqrt(width) with two MLPs
(Poole, Ozair, van den Oord, Alemi & Tucker, "On Variational Bounds of Mutual Information",
ICML 2019), so a batch of b samples gives the b x b score matrix S_ij = f(x_i, y_j) whose
diagonal holds joint pairs and whose off-diagonal entries are pairs from the product of the
marginals. Inputs are standardised; a label y enters one-hot.
"""

from __future__ import annotations

import math

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from infobench.mi.base import MIEstimator, check_pair, is_discrete
from infobench.mi.knn import torch_threads
from infobench.mi.symbols import rows_to_codes


class CriticParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    hidden: int = Field(64, ge=1, description="width of each hidden layer of the critic")
    layers: int = Field(2, ge=1, description="hidden layers of the critic MLPs")
    steps: int = Field(500, ge=1, description="Adam steps")
    batch_size: int = Field(256, ge=2, description="samples per minibatch")
    lr: float = Field(1e-3, gt=0, description="Adam learning rate")
    random_state: int = Field(0, ge=0, description="seed of the critic's initialisation and batches")


def as_features(a: np.ndarray) -> np.ndarray:
    """Standardised float columns, or one-hot columns for a discrete array."""
    if is_discrete(a):
        codes, count = rows_to_codes(a)
        return np.eye(count, dtype=np.float32)[codes]
    a = a.astype(np.float64)
    std = a.std(axis=0)
    return ((a - a.mean(axis=0)) / np.where(std > 0, std, 1.0)).astype(np.float32)


def mlp(d_in: int, hidden: int, layers: int, d_out: int):
    from torch import nn

    mods: list = []
    width = d_in
    for _ in range(layers):
        mods += [nn.Linear(width, hidden), nn.ReLU()]
        width = hidden
    mods.append(nn.Linear(width, d_out))
    return nn.Sequential(*mods)


def off_diagonal_logmeanexp(scores):
    """ln of the mean of exp(S_ij) over i != j (pairs from the product of the marginals)."""
    import torch

    b = scores.shape[0]
    masked = scores.masked_fill(torch.eye(b, dtype=torch.bool), float("-inf"))
    return torch.logsumexp(masked.reshape(-1), 0) - math.log(b * (b - 1))


class VariationalBound(MIEstimator):
    """Base of the critic bounds: subclasses give ``objective(scores, x, y, critic)`` (a tensor to maximise)
    and may override ``critic_net`` (the separable critic by default)."""

    Params = CriticParams
    kinds = ("continuous", "mixed", "discrete")
    is_bound = True

    def critic_net(self, dx: int, dy: int):
        """A module mapping (x batch, y batch) to the b x b score matrix."""
        import torch
        from torch import nn

        p = self.params

        class Separable(nn.Module):
            def __init__(self):
                super().__init__()
                self.g, self.h = mlp(dx, p.hidden, p.layers, p.hidden), mlp(dy, p.hidden, p.layers, p.hidden)

            def forward(self, xb, yb):
                return self.g(xb) @ self.h(yb).T / math.sqrt(p.hidden)

        torch.manual_seed(p.random_state)
        return Separable()

    def objective(self, scores, xb, yb, critic):
        raise NotImplementedError

    def value(self, scores, xb, yb, critic):
        """The bound reported after training (the objective without training-only terms)."""
        return self.objective(scores, xb, yb, critic)

    def estimate(self, x: np.ndarray, y: np.ndarray) -> float:
        import torch

        x, y = check_pair(x, y)
        p = self.params
        if len(x) < 4:
            raise ValueError(f"need at least 4 samples for a critic bound, got {len(x)}")
        tx, ty = torch.from_numpy(as_features(x)), torch.from_numpy(as_features(y))
        b = min(p.batch_size, len(x))
        gen = torch.Generator().manual_seed(p.random_state)
        with torch_threads(1):
            critic = self.critic_net(tx.shape[1], ty.shape[1])
            opt = torch.optim.Adam(critic.parameters(), lr=p.lr)
            for _ in range(p.steps):
                idx = torch.randperm(len(tx), generator=gen)[:b]
                loss = -self.objective(critic(tx[idx], ty[idx]), tx[idx], ty[idx], critic)
                opt.zero_grad()
                loss.backward()
                opt.step()
            values, weights = [], []
            for idx in torch.randperm(len(tx), generator=gen).split(b):
                if len(idx) < 2:
                    continue
                xb, yb = tx[idx], ty[idx]
                values.append(float(self.value(critic(xb, yb), xb, yb, critic).detach()))
                weights.append(len(idx))
        return float(np.average(values, weights=weights))
