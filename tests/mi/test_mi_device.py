"""The torch-based MI estimators run on the run's device and give the CPU's numbers there.

Torch-based: the critic bounds (mine, nwj, infonce, wdm: the critic trains on the device), the
kernel estimators' distances (kde, renyi, vendi with its Gaussian kernel, dsmi: float64 on the
device) and kl_entropy's autoencoder. Inputs arrive as host arrays. On the CPU alone, the critic
objectives run on torch's data-less ``meta`` device, which refuses any CPU tensor mixed in; with
CUDA (``@pytest.mark.gpu``), every one of them gives the CPU's estimate.

Tolerances of the CPU-vs-CUDA parity: kernel estimators, rtol 1e-9 (float64 distances; the
eigen-decompositions run on the host). Critic bounds, atol 2e-3 nats: the critic is initialised
and its batches drawn on the host, so both devices run the same float32 training, whose rounding
differences (1e-7 relative per step) grow over the 60 Adam steps here to ~1e-5; the margin
covers an Adam step flipped by a gradient component near 0. kl_entropy with an autoencoder,
atol 2e-3 nats: codes that differ by float32 rounding move k-th neighbour distances by as much.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from infobench import device as devices
from infobench import registry

registry.load_plugins()
CUDA = torch.device("cuda")
CRITICS = ["mine", "nwj", "infonce", "wdm"]
FAST_CRITIC = {"steps": 60, "eval_every": 20, "batch_size": 64}


pytestmark = pytest.mark.usefixtures("full_float32_on_cuda")  # conftest: TF32 off for parity


def gaussian_pair(n: int = 400, dim: int = 2, rho: float = 0.8, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, dim))
    return x, rho * x + np.sqrt(1 - rho**2) * rng.normal(size=(n, dim))


@pytest.mark.parametrize("name", CRITICS)
def test_critic_objectives_compute_on_the_device_of_their_batch(name):
    cls = registry.get("mi.estimator", name)
    estimator = cls(cls.Params())
    critic = estimator.critic_net(3, 2).to("meta")
    xb, yb = torch.randn(16, 3).to("meta"), torch.randn(16, 2).to("meta")
    value = estimator.objective(critic(xb, yb), xb, yb, critic)
    value.backward()
    assert value.device.type == "meta" and value.shape == ()
    assert all(p.grad.device.type == "meta" for p in critic.parameters())


def estimates_on_both_devices(name: str, params: dict, x, y) -> tuple[float, float]:
    cls = registry.get("mi.estimator", name)
    on_cpu = cls(cls.Params(**params)).estimate(x, y)
    with devices.use(CUDA):
        on_gpu = cls(cls.Params(**params)).estimate(x, y)
    return on_cpu, on_gpu


@pytest.mark.gpu
@pytest.mark.parametrize("name", CRITICS)
def test_critic_bounds_give_the_cpu_estimate_on_cuda(name):
    x, y = gaussian_pair()
    on_cpu, on_gpu = estimates_on_both_devices(name, FAST_CRITIC, x, y)
    assert on_gpu == pytest.approx(on_cpu, abs=2e-3)


@pytest.mark.gpu
@pytest.mark.parametrize(("name", "params", "label"), [
    ("kde", {}, False),
    ("kde", {}, True),
    ("renyi", {"max_samples": 300}, False),
    ("vendi", {"kernel": "gaussian", "max_samples": 300}, False),
    ("dsmi", {"max_samples": 300, "repetitions": 2}, True),
])
def test_kernel_estimators_give_the_cpu_estimate_on_cuda(name, params, label):
    x, y = gaussian_pair()
    if label:
        y = (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0)
    on_cpu, on_gpu = estimates_on_both_devices(name, params, x, y)
    assert on_gpu == pytest.approx(on_cpu, rel=1e-9)


@pytest.mark.gpu
def test_kl_entropy_autoencoder_gives_the_cpu_estimate_on_cuda():
    x, y = gaussian_pair(dim=4)
    params = {"compress_dim": 2, "ae_epochs": 5, "noise_std": 0.1}
    on_cpu, on_gpu = estimates_on_both_devices("kl_entropy", params, x, y)
    assert on_gpu == pytest.approx(on_cpu, abs=2e-3)
