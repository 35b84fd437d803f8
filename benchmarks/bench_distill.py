"""Seconds per training epoch of every distillation loss against scratch, on the same student (issue 4).

The student (MLP 100x2) is trained on MNIST-1D (4,500 samples, batch 100) for a few epochs
with each registered ``distill.loss``; the teacher (cnn1d, 25 channels) is trained once for
a few epochs and shared. Offline losses gather precomputed teacher logits, so their overhead
is the loss itself; bdkd also trains its teacher in the loop, tgeo takes a bilevel outer step
(a virtual student update and a validation pass) before every student step. Reported: the
median of the per-epoch times (training steps only, evaluation excluded) and its ratio to
scratch. Usage: ``python benchmarks/bench_distill.py [epochs]``.
"""

from __future__ import annotations

import statistics
import sys
import time

import torch

from infobench import registry
from infobench.models.train import TrainConfig, build_model, train_classifier
from infobench.tasks.common import load_data
from infobench.tasks.distill.training import Teacher, train_student


def main(epochs: int = 4) -> None:
    registry.load_plugins()
    torch.set_num_threads(1)
    data = load_data({"name": "mnist1d"}, 0)
    cfg = TrainConfig(epochs=epochs, lr=1e-2, batch_size=100)
    teacher_model = build_model({"name": "cnn1d"}, data.input_shape, data.num_classes, seed=0)
    train_classifier(teacher_model, data.train, TrainConfig(epochs=3, lr=1e-2, batch_size=100), 0)
    rows = []
    for name, cls in registry.items("distill.loss"):
        loss = cls()
        student = build_model({"name": "mlp"}, data.input_shape, data.num_classes, seed=0)
        if cls.modes[0] == "online":
            teacher = Teacher(build_model({"name": "cnn1d"}, data.input_shape, data.num_classes, seed=1), cfg)
        else:
            teacher = Teacher(teacher_model)
        loss.setup(student, teacher.model, data.num_classes)
        times: list[float] = []
        start = time.perf_counter()
        train_student(student, loss, teacher, data.train, cfg, 0, on_epoch=lambda e, s, out=times: out.append(s),
                      val=data.val)
        rows.append((name, cls.modes[0], statistics.median(times), time.perf_counter() - start))
    base = dict((r[0], r[2]) for r in rows)["scratch"]
    print(f"MNIST-1D, {len(data.train)} training samples, MLP student, {epochs} epochs, 1 thread")
    print(f"{'loss':<10} {'mode':<8} {'s/epoch':>8} {'x scratch':>9} {'total s':>8}")
    for name, mode, per_epoch, total in sorted(rows, key=lambda r: r[2]):
        print(f"{name:<10} {mode:<8} {per_epoch:>8.3f} {per_epoch / base:>9.2f} {total:>8.2f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 4)
