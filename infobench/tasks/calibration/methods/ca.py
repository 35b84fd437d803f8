"""Correctness-aware calibration, ``ca`` (Liu et al., "Optimizing Calibration by Gaining Aware of
Prediction Correctness", arXiv 2404.13016, 2024, Sec. 3-4).

Each sample x is seen through transformed views t_1(x) ... t_V(x); the model's softmax on each
view, restricted to the top-k classes of the original prediction (in that order), forms the
feature vector

    f(x) = [p(y_(1..k) | x), p(y_(1..k) | t_1(x)), ..., p(y_(1..k) | t_V(x))]     (k (V + 1) values)

because how a prediction's probabilities move under small perturbations says whether it is
likely correct. A small MLP g maps f(x) to a per-sample temperature

    T(x) = T_min + (T_max - T_min) sigmoid(g(f(x))),     T in [0.1, 10],

and the calibrated prediction is softmax(z / T(x)) (the argmax never changes). g is fitted on
the validation split with the class-balanced squared error between the top-label confidence and
the correctness c = 1[argmax z = y]:

    L = 1/2 [ mean_{c=1} (max softmax(z/T) - 1)^2 + mean_{c=0} (max softmax(z/T))^2 ].

Views: images (n, ch, h, w) get rotation by +-15 degrees, a Gaussian blur (sigma 1 pixel),
Gaussian noise (std 0.1) and a contrast reduction (factor 0.5 around each image's mean);
signals (n, ch, L) get the 1-D analogs: a circular shift by +-L/20 samples, blur, noise and
contrast. Documented choices: these fixed view strengths, k = 3, one hidden layer of 32 units,
full-batch Adam (lr 1e-2, 300 steps, weight decay 1e-4), the noise drawn from a fixed seed so a
sample's features are deterministic.

Where it computes: the views and the model's passes on them run on the model's device (the
noise drawn on the CPU from a fixed seed, so the features do not depend on the device); the
temperature network is fitted on the host, full batch in float32. It has k (V + 1) = 18 inputs
and 32 hidden units over a few hundred validation rows: 300 Adam steps of kernels that small are
launch-bound on a GPU, slower than on the CPU, and a host fit gives the same T(x) for the same
features wherever the model ran.

Departure for a degenerate validation set: when every validation prediction is correct (or
every one wrong) the balanced loss has one side only, whose optimum is the bound T_min (or T_max)
for every sample: on 359 digits that a CNN gets all right, T(x) went to ~0.12 and the test NLL
from 0.064 to 0.113. Correctness cannot be learned from one class, so ``ca`` then falls back to a
single temperature for every sample, fitted as :mod:`.temperature` does (MAP under its
Gamma(2, 1) prior on 1/T): T = 0.34, test NLL 0.058, on that digits seed. ``degenerate_reason``
says so.
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from infobench.registry import register
from infobench.tasks.calibration.methods.base import Calibrator, check_logits
from infobench.tasks.calibration.methods.temperature import fit_temperature

T_MIN, T_MAX = 0.1, 10.0


def views(x, seed: int = 0) -> list:
    """Transformed copies of the batch ``x`` (torch tensor (n, ch, h, w) or (n, ch, L))."""
    import torch
    import torch.nn.functional as F

    # the noise is drawn on the CPU from its own seed and then moved: a CUDA generator draws other
    # numbers, and a sample's features must not depend on the device the model runs on
    gen = torch.Generator().manual_seed(seed)
    noise = x + 0.1 * torch.randn(x.shape, generator=gen, dtype=x.dtype).to(x.device)
    axes = tuple(range(1, x.dim()))
    contrast = 0.5 * (x - x.mean(dim=axes, keepdim=True)) + x.mean(dim=axes, keepdim=True)
    radius = 2
    offsets = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    kernel = torch.exp(-0.5 * offsets**2)
    kernel = kernel / kernel.sum()
    channels = x.shape[1]
    if x.dim() == 4:
        row = kernel.view(1, 1, 1, -1).repeat(channels, 1, 1, 1)
        blur = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode="replicate"), row, groups=channels)
        blur = F.conv2d(F.pad(blur, (0, 0, radius, radius), mode="replicate"), row.transpose(2, 3), groups=channels)
        rotations = []
        for degrees in (15.0, -15.0):
            a = math.radians(degrees)
            theta = torch.tensor([[math.cos(a), -math.sin(a), 0.0], [math.sin(a), math.cos(a), 0.0]],
                                 dtype=x.dtype, device=x.device)
            grid = F.affine_grid(theta.expand(x.shape[0], 2, 3), list(x.shape), align_corners=False)
            rotations.append(F.grid_sample(x, grid, align_corners=False, padding_mode="zeros"))
        return [*rotations, blur, noise, contrast]
    if x.dim() == 3:
        blur = F.conv1d(F.pad(x, (radius, radius), mode="replicate"),
                        kernel.view(1, 1, -1).repeat(channels, 1, 1), groups=channels)
        shift = max(1, x.shape[-1] // 20)
        return [torch.roll(x, shift, dims=-1), torch.roll(x, -shift, dims=-1), blur, noise, contrast]
    raise ValueError(f"ca needs images (n, ch, h, w) or signals (n, ch, L), got inputs of shape {tuple(x.shape)}")


def view_features(model, x, logits: np.ndarray, top_k: int, batch_size: int = 1024) -> np.ndarray:
    """Softmax of the original and of every view on the original's top-k classes: (n, k (V + 1)).

    The views and the model's passes run on the model's device; the features come back to the
    host (float32), where the temperature network is fitted.
    """
    import torch

    from infobench.models.train import model_device

    where = model_device(model)
    k = min(top_k, logits.shape[1])
    top = np.argsort(-logits, axis=1, kind="stable")[:, :k]
    probs = torch.softmax(torch.from_numpy(np.asarray(logits, dtype=np.float32)), 1)
    feats = []
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(x), batch_size):
            stop = start + batch_size
            xb = torch.as_tensor(x[start:stop], dtype=torch.float32, device=where)
            idx = torch.from_numpy(top[start:stop])
            cols = [probs[start:stop].gather(1, idx)]
            gather_on_device = idx.to(where)
            for view in views(xb, seed=start):
                cols.append(torch.softmax(model(view), 1).gather(1, gather_on_device).cpu())
            feats.append(torch.cat(cols, dim=1).numpy())
    model.train(was_training)
    return np.concatenate(feats).astype(np.float32)


@register("calibration.method", "ca")
class CorrectnessAware(Calibrator):
    """Correctness-aware calibration: an MLP on transformed views predicts a per-sample temperature."""

    uses_inputs: ClassVar[bool] = True
    reports_degenerate_fit: ClassVar[bool] = True

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        top_k: int = Field(3, ge=1, description="classes of the original prediction whose view probabilities are features")
        hidden: int = Field(32, ge=1, description="hidden units of the temperature MLP")
        steps: int = Field(300, ge=1, description="full-batch Adam steps on the validation split")
        lr: float = Field(1e-2, gt=0, description="Adam learning rate")
        weight_decay: float = Field(1e-4, ge=0, description="Adam weight decay")
        seed: int = Field(0, ge=0, description="initialisation of the MLP")

    def bind(self, model) -> CorrectnessAware:
        """The classifier whose views the calibrator looks at (set by the task before ``fit``)."""
        self.model = model
        return self

    def _net(self, n_features: int):
        import torch
        from torch import nn

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.params.seed)
            return nn.Sequential(nn.Linear(n_features, self.params.hidden), nn.ReLU(), nn.Linear(self.params.hidden, 1))

    def _temperature(self, features):
        import torch

        return T_MIN + (T_MAX - T_MIN) * torch.sigmoid(self.net(features)[:, 0])

    def fit(self, logits: np.ndarray, labels: np.ndarray, x: np.ndarray | None = None) -> CorrectnessAware:
        import torch

        logits, labels = check_logits(logits, labels)
        if x is None or len(x) != len(logits):
            raise ValueError("ca needs the validation inputs x (one per logit row) and a bound model")
        correct = logits.argmax(1) == labels
        self.degenerate_reason = ""
        if correct.all() or not correct.any():
            self.net = None
            self.val_temperature = fit_temperature(logits, labels)
            self.degenerate_reason = (
                f"every validation prediction is {'correct' if correct.all() else 'wrong'}, so the balanced loss "
                f"would drive every T(x) to {T_MIN if correct.all() else T_MAX:g}; fell back to one temperature "
                f"(MAP temperature scaling): T = {self.val_temperature:.3g}")
            return self
        feats = torch.from_numpy(view_features(self.model, x, logits, self.params.top_k))
        z = torch.from_numpy(np.asarray(logits, dtype=np.float32))
        correct = torch.from_numpy(correct)
        self.net = self._net(feats.shape[1])
        opt = torch.optim.Adam(self.net.parameters(), lr=self.params.lr, weight_decay=self.params.weight_decay)
        for _ in range(self.params.steps):
            conf = torch.softmax(z / self._temperature(feats)[:, None], 1).max(1).values
            loss = torch.stack([((conf[correct] - 1) ** 2).mean(), (conf[~correct] ** 2).mean()]).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        self.net.eval()
        self.val_temperature = float(self._temperature(feats).mean().detach())
        return self

    def calibrated_logits(self, logits: np.ndarray, x: np.ndarray | None = None) -> np.ndarray:
        import torch

        logits, _ = check_logits(logits)
        if x is None or len(x) != len(logits):
            raise ValueError("ca needs the inputs x (one per logit row) to calibrate their logits")
        if self.net is None:  # degenerate validation set: one temperature for every sample
            return np.asarray(logits, dtype=np.float64) / self.val_temperature
        feats = torch.from_numpy(view_features(self.model, x, logits, self.params.top_k))
        with torch.inference_mode():
            temperature = self._temperature(feats).numpy().astype(np.float64)
        return np.asarray(logits, dtype=np.float64) / temperature[:, None]

    def transform(self, logits: np.ndarray, x: np.ndarray | None = None) -> np.ndarray:
        from infobench.metrics import softmax

        return softmax(self.calibrated_logits(logits, x))

    def calibrated_log_probs(self, logits: np.ndarray, x: np.ndarray | None = None) -> np.ndarray:
        from infobench.metrics import log_softmax

        return log_softmax(self.calibrated_logits(logits, x))

    def fitted(self) -> dict[str, float]:
        return {"temperature_mean": self.val_temperature}
