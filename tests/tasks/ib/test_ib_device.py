"""The IB network trains and is recorded on the run's device; activations come back as host arrays.

With CUDA (``@pytest.mark.gpu``): a short run of the 12-bit network on the GPU records the
activations the CPU records. Tolerance atol 1e-5: the same SGD steps (the batches are shuffled on
the host) in float32, whose rounding differs by a few ulps per operation on the GPU; tanh layers
keep every activation below 1. TF32 is off, so both sides do float32 arithmetic. SGD, not the
paper's Adam: Adam's first steps are lr * sign(gradient), which a gradient component near 0 can
flip between devices.

No CPU-only check here: the recorder's device handling (the input on the model's device, the
activations copied to the host) cannot fail on a CPU-only machine.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from infobench import device as devices
from infobench.models.train import TrainConfig
from infobench.tasks.ib.recording import train_and_record
from infobench.tasks.ib.tishby_data import Tishby12

CUDA = torch.device("cuda")


pytestmark = pytest.mark.usefixtures("full_float32_on_cuda")  # conftest: TF32 off for parity


@pytest.mark.gpu
def test_a_run_on_cuda_records_the_cpu_activations():
    data = Tishby12().load(0)
    cfg = TrainConfig(epochs=3, lr=0.05, batch_size=256, optimizer="sgd").model_dump()
    on_cpu = train_and_record(data, {"name": "ib_mlp"}, cfg, seed=0, epochs=[0, 1, 3])
    with devices.use(CUDA):
        on_gpu = train_and_record(data, {"name": "ib_mlp"}, cfg, seed=0, epochs=[0, 1, 3])
    assert on_gpu.layers.keys() == on_cpu.layers.keys()
    for name, values in on_cpu.layers.items():
        assert isinstance(on_gpu.layers[name], np.ndarray)
        np.testing.assert_allclose(on_gpu.layers[name], values, atol=1e-5, err_msg=name)
    np.testing.assert_allclose(on_gpu.loss, on_cpu.loss, rtol=1e-5)
