"""Shared machinery of the variational (critic-based) MI bounds: MINE/DV, NWJ, InfoNCE, WDM.

The sample is split at random (seeded) into a training half (``train_fraction``) and a held-out
half, as the benchmark of Czyz et al. ("Beyond Normal", NeurIPS 2023, package ``bmi``) does. A
critic network f(x, y) is trained by Adam to maximise the bound on minibatches of the training
rows; the reported value is the bound averaged over one pass of disjoint minibatches of the
held-out rows. Evaluated on the rows it was trained on, the critic overfits and the "lower
bounds" exceed the truth (independent 5-D x and y, n = 500: MINE 1.67, NWJ 1.22, InfoNCE 2.11
nats where the truth is 0). On held-out rows a critic fixed beforehand gives an unbiased
estimate of NWJ's and InfoNCE's bound, so their expectation is below the truth; DV (MINE) takes
the log of a sample mean, which Jensen's inequality biases upward, so it is not a bound in
expectation.

Early stopping on a validation slice, a departure from bmi stated here: a critic trained too
long on few rows overfits so far that its held-out bound is hugely negative (NWJ -6e7 nats in
the example above, 500 steps). Every ``eval_every`` steps the bound is measured on a validation
slice of the training rows (``validation_fraction``, never used for gradients), training stops
after ``patience`` measurements without improvement, and the critic with the best validation
value is the one evaluated on the held-out rows. bmi instead reports the best of its periodic
test values, which picks the checkpoint on the very rows it reports and so biases the result
upward.

The default critic is separable, f(x, y) = g(x)^T h(y) / sqrt(width) with two MLPs
(Poole, Ozair, van den Oord, Alemi & Tucker, "On Variational Bounds of Mutual Information",
ICML 2019), so a batch of b samples gives the b x b score matrix S_ij = f(x_i, y_j) whose
diagonal holds joint pairs and whose off-diagonal entries are pairs from the product of the
marginals. Inputs are standardised with the training part's mean and deviation; a label y
enters one-hot.

Device: the critic trains and is evaluated on the run's device (``infobench.device.current()``);
the inputs arrive as host arrays and go there once. The critic is initialised and the split and
minibatches are drawn on the host from ``random_state``, so every device starts from the same
critic and sees the same batches (results then agree to float32 rounding, amplified by training).
"""

from __future__ import annotations

import copy
import math

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from infobench import device as devices
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
    train_fraction: float = Field(0.5, gt=0, lt=1, description="share of the rows that train (and validate) the "
                                  "critic; the bound is evaluated on the rest, held out")
    validation_fraction: float = Field(0.2, gt=0, lt=1, description="share of the training rows kept out of the "
                                       "gradient steps to pick the critic (early stopping)")
    eval_every: int = Field(50, ge=1, description="Adam steps between validations")
    patience: int = Field(2, ge=1, description="validations without improvement before training stops")
    random_state: int = Field(0, ge=0, description="seed of the split, the critic's initialisation and batches")


def as_features(a: np.ndarray, fit_rows: np.ndarray | None = None) -> np.ndarray:
    """Standardised float columns (mean and deviation of ``fit_rows``, all rows if None), or
    one-hot columns for a discrete array."""
    if is_discrete(a):
        codes, count = rows_to_codes(a)
        return np.eye(count, dtype=np.float32)[codes]
    a = a.astype(np.float64)
    fit = a if fit_rows is None else a[fit_rows]
    std = fit.std(axis=0)
    return ((a - fit.mean(axis=0)) / np.where(std > 0, std, 1.0)).astype(np.float32)


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
    masked = scores.masked_fill(torch.eye(b, dtype=torch.bool, device=scores.device), float("-inf"))
    return torch.logsumexp(masked.reshape(-1), 0) - math.log(b * (b - 1))


class VariationalBound(MIEstimator):
    """Base of the critic bounds: subclasses give ``objective(scores, x, y, critic)`` (a tensor to maximise)
    and may override ``critic_net`` (the separable critic by default)."""

    Params = CriticParams
    kinds = ("continuous", "mixed", "discrete")
    is_bound = True  # for those whose held-out sample value is unbiased for the bound (NWJ, InfoNCE)

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

    def split(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Seeded random (gradient rows, validation rows, held-out rows) of n rows, at least 2 each."""
        p = self.params
        n_train = int(round(p.train_fraction * n))
        n_valid = int(round(p.validation_fraction * n_train))
        if min(n_train - n_valid, n_valid, n - n_train) < 2:
            raise ValueError(f"need at least 2 gradient, 2 validation and 2 held-out rows for a critic bound, got "
                             f"{n} rows with train_fraction {p.train_fraction} and validation_fraction "
                             f"{p.validation_fraction}")
        order = np.random.default_rng(p.random_state).permutation(n)
        return order[: n_train - n_valid], order[n_train - n_valid : n_train], order[n_train:]

    def evaluate(self, critic, tx, ty, rows: np.ndarray) -> float:
        """The bound of ``critic`` on ``rows``: the mean over disjoint minibatches, weighted by their size."""
        import torch

        values, weights = [], []
        with torch.no_grad():
            for idx in torch.from_numpy(rows).to(tx.device).split(min(self.params.batch_size, len(rows))):
                if len(idx) < 2:
                    continue
                xb, yb = tx[idx], ty[idx]
                values.append(self.value(critic(xb, yb), xb, yb, critic).detach())
                weights.append(len(idx))
        # one copy to the host for all the batches, not one wait per batch
        return float(np.average(torch.stack(values).cpu().numpy().astype(np.float64), weights=weights))

    def estimate(self, x: np.ndarray, y: np.ndarray) -> float:
        import torch

        x, y = check_pair(x, y)
        p = self.params
        fit, valid, held_out = self.split(len(x))
        training = np.concatenate([fit, valid])
        where = devices.current()
        tx, ty = (torch.from_numpy(as_features(a, training)).to(where) for a in (x, y))
        gen = torch.Generator().manual_seed(p.random_state)
        fit_rows = torch.from_numpy(fit)
        with torch_threads(1):
            critic = self.critic_net(tx.shape[1], ty.shape[1]).to(where)  # initialised on the host
            opt = torch.optim.Adam(critic.parameters(), lr=p.lr)
            best, best_state, since_best = -math.inf, None, 0
            for step in range(1, p.steps + 1):
                idx = fit_rows[torch.randperm(len(fit_rows), generator=gen)[: p.batch_size]].to(where)
                xb, yb = tx[idx], ty[idx]
                loss = -self.objective(critic(xb, yb), xb, yb, critic)
                opt.zero_grad()
                loss.backward()
                opt.step()
                if step % p.eval_every == 0 or step == p.steps:
                    score = self.evaluate(critic, tx, ty, valid)
                    if score > best:
                        best, best_state, since_best = score, copy.deepcopy(critic.state_dict()), 0
                    else:
                        since_best += 1
                        if since_best >= p.patience:
                            break
            if best_state is not None:  # None only if every validation was NaN (a diverged critic)
                critic.load_state_dict(best_state)
            return self.evaluate(critic, tx, ty, held_out)
