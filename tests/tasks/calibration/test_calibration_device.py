"""Calibrators, calibration-aware losses and the metrics work wherever the logits are.

Post-hoc calibrators compute on the host (numpy, float64): a tensor on any device is accepted
and gives exactly the numbers of the same array. ``ca`` runs its views through the model on the
model's device; the training losses compute on the device of their logits. On the CPU alone:
tensors with gradients (which ``np.asarray`` refuses) go through every calibrator and metric,
and the losses and ``ca``'s views run on torch's data-less ``meta`` device, which refuses any
CPU tensor mixed in. With CUDA (``@pytest.mark.gpu``), the same on the GPU.

Tolerances of the CPU-vs-CUDA parity: host calibrators, exact (the same host arithmetic on the
same float32 logits); losses and their gradients, float32, rtol 1e-5, atol 1e-6 (reductions in
another order, a few ulps); ``ca``, whose features come from the model on each device (rtol
1e-5) and whose temperature network is then fitted by 300 Adam steps on the host, rtol 1e-3 on
the calibrated logits. TF32 is off, so both sides do float32 arithmetic.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from infobench import device as devices
from infobench import metrics, registry
from infobench.data.base import DataBundle, Split
from infobench.models.train import TrainConfig, build_model
from infobench.tasks.calibration.losses.base import train_with_loss
from infobench.tasks.calibration.methods.ca import view_features, views

registry.load_plugins()
HOST_CALIBRATORS = [name for name in registry.names("calibration.method") if name != "ca"]
LOSSES = registry.names("calibration.loss")
CUDA = torch.device("cuda")
N, CLASSES = 120, 4


pytestmark = pytest.mark.usefixtures("full_float32_on_cuda")  # conftest: TF32 off for parity


def logits_and_labels(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Over-confident float32 logits of a 4-class problem that is right about 70% of the time."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, CLASSES, N)
    logits = rng.normal(size=(N, CLASSES)) * 2
    logits[np.arange(N), labels] += 2.5
    return (logits * 2).astype(np.float32), labels.astype(np.int64)


def calibrator(name: str):
    cls = registry.get("calibration.method", name)
    return cls(cls.Params())


def fitted_log_probs(name: str, logits, labels, test_logits) -> np.ndarray:
    return calibrator(name).fit(logits, labels).calibrated_log_probs(test_logits)


@pytest.mark.parametrize("name", HOST_CALIBRATORS)
def test_host_calibrators_take_tensors_with_gradients_and_give_the_array_numbers(name):
    logits, labels = logits_and_labels(0)
    test_logits, _ = logits_and_labels(1)
    expected = fitted_log_probs(name, logits, labels, test_logits)
    as_tensor = fitted_log_probs(name, torch.tensor(logits, requires_grad=True), torch.from_numpy(labels),
                                 torch.tensor(test_logits, requires_grad=True))
    assert isinstance(as_tensor, np.ndarray)
    np.testing.assert_array_equal(as_tensor, expected)


def test_metrics_take_tensors_with_gradients_and_bfloat16():
    logits, labels = logits_and_labels(0)
    expected = metrics.calibration_metrics(logits, labels)
    assert metrics.calibration_metrics(torch.tensor(logits, requires_grad=True), torch.from_numpy(labels)) == expected
    rounded = torch.from_numpy(logits).bfloat16()
    assert metrics.nll(rounded, labels) == metrics.nll(rounded.float().numpy(), labels)


def loss_value_and_grad(name: str, where: torch.device):
    """A training loss's value and its gradient w.r.t. the logits on ``where`` (stateful losses
    set up on ``where``; CaPE in a calibration epoch, its soft targets from a linear model)."""
    cls = registry.get("calibration.loss", name)
    loss = cls(cls.Params())
    g = torch.Generator().manual_seed(0)
    logits = (torch.randn(16, CLASSES, generator=g) * 3).to(where).requires_grad_(True)
    labels = torch.randint(CLASSES, (16,), generator=g).to(where)
    indices = torch.arange(16, 32).to(where)
    if loss.needs_loop:
        loss.setup(40, CLASSES, where)
        model = torch.nn.Linear(3, CLASSES)
        with torch.no_grad():
            model.weight.copy_(torch.randn(CLASSES, 3, generator=g))
            model.bias.zero_()
        x = torch.randn(40, 3, generator=g)
        y = torch.randint(CLASSES, (40,), generator=g)
        if where.type != "meta":  # CaPE bins real predictions on the host
            loss.start_epoch(2, 2, model.to(where), x.to(where), y.to(where))
        value = loss(logits, labels, indices)
    else:
        value = loss.batch_loss(logits, labels)
    value.backward()
    return value, logits.grad


@pytest.mark.parametrize("name", LOSSES)
def test_training_losses_compute_on_the_device_of_their_logits(name):
    meta = torch.device("meta")
    value, grad = loss_value_and_grad(name, meta)
    assert value.device == meta and grad.device == meta


@pytest.mark.parametrize("shape", [(3, 1, 8, 8), (3, 2, 20)])
def test_ca_views_are_made_on_the_device_of_their_input(shape):
    x = torch.rand(shape).to("meta")
    made = views(x)
    assert len(made) == 5 and all(v.device.type == "meta" and v.shape == x.shape for v in made)


def signal_model_and_data():
    """A small MLP on (1, 20) signals with its validation and test inputs and logits."""
    model = build_model({"name": "mlp", "width": 16, "depth": 1}, (1, 20), CLASSES, seed=0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2 * N, 1, 20)).astype(np.float32)
    with torch.inference_mode():
        logits = model(torch.from_numpy(x)).numpy() * 4
    labels = np.where(rng.random(2 * N) < 0.7, logits.argmax(1), rng.integers(0, CLASSES, 2 * N))
    return model, x, logits, labels


@pytest.mark.gpu
@pytest.mark.parametrize("name", HOST_CALIBRATORS)
def test_host_calibrators_give_the_array_numbers_for_cuda_tensors(name):
    logits, labels = logits_and_labels(0)
    test_logits, _ = logits_and_labels(1)
    expected = fitted_log_probs(name, logits, labels, test_logits)
    on_gpu = fitted_log_probs(name, torch.from_numpy(logits).to(CUDA), torch.from_numpy(labels).to(CUDA),
                              torch.from_numpy(test_logits).to(CUDA))
    np.testing.assert_array_equal(on_gpu, expected)


@pytest.mark.gpu
def test_metrics_take_cuda_tensors():
    logits, labels = logits_and_labels(0)
    on_gpu = metrics.calibration_metrics(torch.from_numpy(logits).to(CUDA), torch.from_numpy(labels).to(CUDA))
    assert on_gpu == metrics.calibration_metrics(logits, labels)


@pytest.mark.gpu
def test_ca_gives_the_cpu_features_and_temperatures_with_the_model_on_cuda():
    model, x, logits, labels = signal_model_and_data()
    val, test = slice(0, N), slice(N, 2 * N)

    def calibrated(where):
        model.to(where)
        features = view_features(model, x[val], logits[val], top_k=3)
        cal = registry.get("calibration.method", "ca")().bind(model).fit(logits[val], labels[val], x=x[val])
        return features, cal.calibrated_logits(logits[test], x=x[test])

    cpu_features, cpu_logits = calibrated(torch.device("cpu"))
    with devices.use(CUDA):
        gpu_features, gpu_logits = calibrated(CUDA)
    np.testing.assert_allclose(gpu_features, cpu_features, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(gpu_logits, cpu_logits, rtol=1e-3)


@pytest.mark.gpu
@pytest.mark.parametrize("name", LOSSES)
def test_training_losses_give_the_cpu_numbers_on_cuda(name):
    cpu_value, cpu_grad = loss_value_and_grad(name, torch.device("cpu"))
    with devices.use(CUDA):
        gpu_value, gpu_grad = loss_value_and_grad(name, CUDA)
    assert gpu_value.device.type == CUDA.type
    torch.testing.assert_close(gpu_value.cpu(), cpu_value, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(gpu_grad.cpu(), cpu_grad, rtol=1e-5, atol=1e-6)


@pytest.mark.gpu
@pytest.mark.parametrize("name", ["aldr_kl", "cape"])
def test_losses_with_their_own_loop_train_on_cuda(name):
    rng = np.random.default_rng(0)

    def split(n):
        y = rng.integers(0, CLASSES, n)
        return Split((rng.normal(size=(n, 1, 6)) + y[:, None, None]).astype(np.float32), y.astype(np.int64))

    data = DataBundle(name="blobs", num_classes=CLASSES, input_shape=(1, 6), train=split(64), val=split(24),
                      test=split(24))
    cls = registry.get("calibration.loss", name)
    with devices.use(CUDA):
        model = build_model({"name": "mlp", "width": 8, "depth": 1}, (1, 6), CLASSES, seed=0).to(CUDA)
        history = train_with_loss(model, data, TrainConfig(epochs=4, batch_size=16, lr=1e-2), 0, cls(cls.Params()))
    assert len(history) == 4 and all(np.isfinite(row["val_nll"]) for row in history)
    assert all(p.device.type == CUDA.type for p in model.parameters())
