"""Training-step throughput of every distillation loss against a bare torch loop, per device (issues 4, 13).

The student (MLP 100x2) learns MNIST-1D (3,600 training samples, batch 100) with each registered
``distill.loss`` through ``train_student``; the teacher (cnn1d, 25 channels) is trained once, on
the CPU, and copied to each device, so every loss and device distils the same teacher. Offline
losses gather precomputed teacher logits, so their overhead is the loss itself; bdkd also trains
its teacher in the loop (its samples/s count both models' steps), tgeo takes a bilevel outer step
(a virtual student update and a validation pass) before every student step.

Reported per device, for each loss: samples/s of its training steps (the loop's own per-epoch
seconds, evaluation excluded, read after the epoch's last step has finished on the device; the
median over the epochs after the first, which warms up kernels and allocators) and two ratios:

- ``x bare``: against a bare hand-written loop on the same student architecture and the same
  batches (the split on the device, the same host-drawn order): forward, cross-entropy,
  ``zero_grad``, ``backward``, one Adam step, nothing else. Timed right before each loss, so a
  shared machine's load hits both sides of the ratio alike; the ratio is the median over
  ``--rounds`` rounds, samples/s the best round (the bare row: its best over all).
- ``x scratch``: seconds per epoch against the ``scratch`` loss through the same loop (the peer
  comparison of the first version: what the divergence costs over the labels alone).

With a GPU (``--device auto`` finds one, or ``--device cuda``), every loss runs on the CPU and on
the GPU, and a last column gives the GPU/CPU ratio of samples/s. The CPU uses one torch thread,
as the test suite and small specs do. Usage:
``python benchmarks/bench_distill.py [--device auto|cpu|cuda] [--epochs N] [--batch-size B] [--rounds R]``.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

from infobench import device as devices
from infobench import registry
from infobench.errors import InfobenchError
from infobench.models.train import TrainConfig, build_model, index_batches, train_classifier
from infobench.tasks.common import load_data
from infobench.tasks.distill.training import Teacher, on_device, train_student

STUDENT = {"name": "mlp"}
TEACHER = {"name": "cnn1d"}


def steady(seconds: list[float]) -> float:
    """Median seconds per epoch, the first (warm-up) epoch left out when there are others."""
    return statistics.median(seconds[1:] if len(seconds) > 1 else seconds)


def bare_epochs(data, cfg: TrainConfig, where: torch.device) -> list[float]:
    """Seconds of each epoch of a plain cross-entropy loop on the student: the floor of any loss."""
    student = build_model(STUDENT, data.input_shape, data.num_classes, seed=0).to(where)
    optimizer = torch.optim.Adam(student.parameters(), lr=cfg.lr)
    x = on_device(data.train.x, np.float32, where)
    y = on_device(data.train.y, np.int64, where)
    shuffle = torch.Generator().manual_seed(0)
    student.train()
    times = []
    for _ in range(cfg.epochs):
        devices.synchronize()
        start = time.perf_counter()
        for idx in index_batches(torch.randperm(len(y), generator=shuffle).to(where), cfg.batch_size):
            loss = F.cross_entropy(student(x[idx]), y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        devices.synchronize()
        times.append(time.perf_counter() - start)
    return times


def loss_epochs(name: str, data, cfg: TrainConfig, teacher_model, where: torch.device) -> list[float]:
    """Seconds of each epoch of ``train_student`` with loss ``name`` (the loop's own timing)."""
    cls = registry.get("distill.loss", name)
    loss = cls()
    student = build_model(STUDENT, data.input_shape, data.num_classes, seed=0).to(where)
    if cls.modes[0] == "online":
        teacher = Teacher(build_model(TEACHER, data.input_shape, data.num_classes, seed=1).to(where), cfg)
    else:
        teacher = Teacher(copy.deepcopy(teacher_model).to(where))
    loss.setup(student, teacher.model, data.num_classes)
    times: list[float] = []
    train_student(student, loss, teacher, data.train, cfg, 0, on_epoch=lambda e, s: times.append(s), val=data.val)
    return times


def measure(where: torch.device, data, cfg: TrainConfig, teacher_model, rounds: int) -> dict[str, float]:
    """Steady seconds per epoch on ``where``: ``{name: best over rounds}`` for every loss and for
    ``bare``, and ``{"x bare:" + name: median over rounds of bare / loss}``, each loss timed right
    after its own bare loop."""
    names = registry.names("distill.loss")
    seconds: dict[str, list[float]] = {name: [] for name in ["bare", *names]}
    ratios: dict[str, list[float]] = {name: [] for name in names}
    with devices.use(where):
        for _ in range(rounds):
            for name in names:
                bare = steady(bare_epochs(data, cfg, where))
                own = steady(loss_epochs(name, data, cfg, teacher_model, where))
                seconds["bare"].append(bare)
                seconds[name].append(own)
                ratios[name].append(bare / own)
    out = {name: min(values) for name, values in seconds.items()}
    out.update({f"x bare:{name}": statistics.median(values) for name, values in ratios.items()})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--epochs", type=int, default=4, help="epochs per loss (the first is a warm-up)")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3, help="timings per loss: samples/s the best, ratios the median")
    args = parser.parse_args()
    registry.load_plugins()
    torch.set_num_threads(1)
    try:
        target = devices.resolve(args.device)
    except InfobenchError as err:
        sys.exit(str(err))
    where_all = [torch.device("cpu")] + ([target] if target.type != "cpu" else [])
    data = load_data({"name": "mnist1d"}, 0)
    cfg = TrainConfig(epochs=args.epochs, lr=1e-2, batch_size=args.batch_size)
    teacher_model = build_model(TEACHER, data.input_shape, data.num_classes, seed=0)
    train_classifier(teacher_model, data.train, TrainConfig(epochs=3, lr=1e-2, batch_size=100), 0)
    n = len(data.train)
    results = {where: measure(where, data, cfg, teacher_model, args.rounds) for where in where_all}
    modes = {name: cls.modes[0] for name, cls in registry.items("distill.loss")}
    print(f"MNIST-1D, {n} training samples, batch {cfg.batch_size}, MLP student, cnn1d teacher, "
          f"{cfg.epochs} epochs per timing (median after the first), best of {args.rounds} rounds, CPU on 1 thread")
    gpu = where_all[-1] if len(where_all) > 1 else None
    header = f"{'device':<22} {'loss':<10} {'mode':<8} {'samples/s':>10} {'x bare':>7} {'x scratch':>9}"
    print(header + (f" {'GPU/CPU':>8}" if gpu else ""))
    for where, res in results.items():
        label = devices.describe(where)
        print(f"{label:<22} {'bare loop':<10} {'':<8} {n / res['bare']:>10.0f} {1.0:>7.2f} {'':>9}")
        for name in sorted(modes, key=lambda k: res[k]):
            row = (f"{label:<22} {name:<10} {modes[name]:<8} {n / res[name]:>10.0f} {res[f'x bare:{name}']:>7.2f} "
                   f"{res[name] / res['scratch']:>9.2f}")
            if gpu is not None and where == gpu:
                row += f" {results[torch.device('cpu')][name] / res[name]:>8.2f}"
            print(row)


if __name__ == "__main__":
    main()
