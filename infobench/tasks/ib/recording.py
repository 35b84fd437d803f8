"""Activations of every layer on a fixed evaluation set, recorded at chosen epochs of training.

Forward hooks copy each layer's output while the model runs on the evaluation set; they are
removed afterwards, so the model itself is never changed. The hidden layers are the model's
activation modules (``nn.Tanh``, ``nn.ReLU``, ...) in the order they were registered, named
``layer1``, ``layer2``, ...; the ``output`` layer is the softmax of ``head``'s logits, as in
Shwartz-Ziv & Tishby, who treat the softmax output as the last representation T.

The network trains and runs on the run's device (``infobench.device.current()``); each
recorded activation is copied to the host (float32 numpy) as it is recorded, where the MI
estimators read it.

A recording is cached on disk (``cache_root()/ib/<key>.npz``, keyed by dataset, model,
training, recording options and seed), so every estimator of one setting reads the same
activations instead of training the network again.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from infobench.data.base import DataBundle

# nn classes treated as a layer's output; looked up by name so torch is imported lazily
ACTIVATION_CLASSES = ("ReLU", "Tanh", "ELU", "Softsign", "Sigmoid", "LeakyReLU", "GELU", "SiLU", "Hardtanh")
PART_CODES = {"train": 0, "val": 1, "test": 2}
CACHE_VERSION = 1


def record_epochs(total: int, n_points: int, spacing: str = "log") -> list[int]:
    """Epochs at which to record, ascending and unique, always including 0 (init) and ``total``.

    ``log``: ``n_points - 1`` points log-spaced over [1, total], rounded (duplicates among the
    first epochs merge, so fewer points can come back); ``linear``: evenly spaced over [0, total].
    """
    if total < 0 or n_points < 2:
        raise ValueError(f"need total >= 0 epochs and n_points >= 2, got {total} and {n_points}")
    if total == 0:
        return [0]
    if spacing == "log":
        points = np.rint(np.logspace(0.0, np.log10(total), n_points - 1))
    elif spacing == "linear":
        points = np.rint(np.linspace(0.0, total, n_points))
    else:
        raise ValueError(f"unknown epoch spacing {spacing!r}; known: log, linear")
    return sorted({0, total, *(int(p) for p in points)})


def recorded_layers(model) -> list[tuple[str, Any]]:
    """``[(name, module)]``: every activation module in order (``layer1``...), then ``("output", head)``."""
    hidden = [m for m in model.modules() if type(m).__name__ in ACTIVATION_CLASSES]
    if not hidden:
        raise ValueError(f"model {type(model).__name__} has no activation modules to record")
    return [(f"layer{i}", m) for i, m in enumerate(hidden, 1)] + [("output", model.head)]


class ActivationRecorder:
    """Forward hooks on ``recorded_layers(model)``; ``record(x)`` returns each layer's output on ``x``.

    Use as a context manager: hooks are registered on enter and removed on exit.
    """

    def __init__(self, model, batch_size: int = 4096):
        self.model = model
        self.layers = recorded_layers(model)
        self.batch_size = batch_size
        self._handles: list[Any] = []
        self._current: dict[str, list] = {}

    def __enter__(self) -> ActivationRecorder:
        for name, module in self.layers:
            self._handles.append(module.register_forward_hook(self._hook(name)))
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def _hook(self, name: str) -> Callable:
        def hook(module, inputs, output) -> None:
            if name in self._current:
                self._current[name].append(output.detach().flatten(1).float())

        return hook

    def record(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """``{layer: float32 (n, width)}`` host arrays for inputs ``x`` (n, *input_shape: an array,
        or a tensor on any device), in eval mode on the model's device."""
        import torch

        from infobench.models.train import model_device

        if not self._handles:
            raise RuntimeError("ActivationRecorder.record must run inside its 'with' block")
        self._current = {name: [] for name, _ in self.layers}
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.inference_mode():
                xt = torch.as_tensor(x, dtype=torch.float32, device=model_device(self.model))
                for start in range(0, len(xt), self.batch_size):
                    self.model(xt[start : start + self.batch_size])
        finally:
            self.model.train(was_training)
        out = {name: torch.cat(chunks).cpu().numpy() for name, chunks in self._current.items()}
        self._current = {}
        out["output"] = _softmax(out["output"])
        return out


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


@dataclass
class Recording:
    """What one training run recorded. E recorded epochs, n evaluation rows.

    ``layers[name]``: float32 (E, n, width); ``x``: float32 (n, d) flattened inputs; ``y``: int64
    (n,); ``part``: int8 (n,) with ``PART_CODES`` (which split each row came from);
    ``train_accuracy``/``test_accuracy``/``loss``: (E,) (nan where not defined);
    ``epoch_seconds``: mean wall time of one training epoch without recording;
    ``record_seconds``: mean wall time of one recording pass.
    """

    epochs: np.ndarray
    layers: dict[str, np.ndarray]
    x: np.ndarray
    y: np.ndarray
    part: np.ndarray
    train_accuracy: np.ndarray
    test_accuracy: np.ndarray
    loss: np.ndarray
    epoch_seconds: float
    record_seconds: float

    def to_bytes(self) -> bytes:
        arrays = {f"layer:{k}": v for k, v in self.layers.items()}
        for f in fields(self):
            if f.name != "layers":
                arrays[f.name] = np.asarray(getattr(self, f.name))
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> Recording:
        with np.load(io.BytesIO(data)) as z:
            values = {k: z[k] for k in z.files}
        layers = {k.split(":", 1)[1]: values.pop(k) for k in list(values) if k.startswith("layer:")}
        for name in ("epoch_seconds", "record_seconds"):
            values[name] = float(values[name])
        return cls(layers=layers, **values)


def evaluation_set(data: DataBundle, which: str, max_rows: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inputs, labels and split codes of the evaluation set: ``all`` splits, or one of them.

    With ``max_rows``, a fixed (seed 0) random subset of that many rows is kept.
    """
    names = ("train", "val", "test") if which == "all" else (which,)
    if which not in ("all", *PART_CODES):
        raise ValueError(f"unknown evaluation set {which!r}; known: all, train, val, test")
    splits = [(name, getattr(data, name)) for name in names if len(getattr(data, name))]
    if not splits:
        raise ValueError(f"evaluation set {which!r} of dataset {data.name!r} is empty")
    x = np.concatenate([s.x for _, s in splits]).astype(np.float32)
    y = np.concatenate([s.y for _, s in splits]).astype(np.int64)
    part = np.concatenate([np.full(len(s), PART_CODES[name], dtype=np.int8) for name, s in splits])
    if max_rows is not None and len(y) > max_rows:
        keep = np.sort(np.random.default_rng(0).permutation(len(y))[:max_rows])
        x, y, part = x[keep], y[keep], part[keep]
    return x, y, part


def l2_loss(model, coefficient: float) -> Callable:
    """Cross-entropy plus ``coefficient * sum ||W||^2`` over the weight matrices of ``model``'s Linear layers."""
    import torch.nn.functional as F
    from torch import nn

    weights = [m.weight for m in model.modules() if isinstance(m, nn.Linear)]

    def loss(logits, y):
        penalty = sum(w.pow(2).sum() for w in weights)
        return F.cross_entropy(logits, y) + coefficient * penalty

    return loss


def _accuracy(probs: np.ndarray, y: np.ndarray, mask: np.ndarray) -> float:
    return float((probs[mask].argmax(1) == y[mask]).mean()) if mask.any() else float("nan")


def train_and_record(
    data: DataBundle,
    model_cfg: dict[str, Any],
    train_cfg: dict[str, Any],
    seed: int,
    epochs: list[int],
    eval_set: str = "all",
    max_eval: int | None = None,
    l2: float = 0.0,
) -> Recording:
    """Train the model of ``model_cfg`` on ``data.train`` and record its layers at ``epochs``,
    on the run's device."""
    import torch

    from infobench import device as devices
    from infobench.models.train import TrainConfig, build_model, train_classifier

    config = TrainConfig.model_validate(train_cfg)
    model = build_model(model_cfg, data.input_shape, data.num_classes, seed=seed).to(devices.current())
    x, y, part = evaluation_set(data, eval_set, max_eval)
    x_here = torch.from_numpy(x).to(devices.current())  # the evaluation set goes to the device once
    wanted = set(epochs)
    snapshots: list[dict[str, np.ndarray]] = []
    losses: list[float] = []
    record_times: list[float] = []
    train_time = [0.0]
    with ActivationRecorder(model) as recorder:

        def snapshot(loss: float) -> None:
            start = time.perf_counter()
            snapshots.append(recorder.record(x_here))
            record_times.append(time.perf_counter() - start)
            losses.append(loss)

        if 0 in wanted:
            snapshot(float("nan"))
        mark = [time.perf_counter()]

        def on_epoch(epoch: int, _model, row: dict[str, Any]) -> None:
            devices.synchronize()  # the epoch's kernels have finished: the clock measures them
            train_time[0] += time.perf_counter() - mark[0]
            if epoch in wanted:
                snapshot(row["loss"])
            mark[0] = time.perf_counter()

        loss_fn = l2_loss(model, l2) if l2 > 0 else None
        train_classifier(model, data.train, config, seed, loss_fn=loss_fn, on_epoch=on_epoch)
    names = list(snapshots[0])
    layers = {name: np.stack([s[name] for s in snapshots]) for name in names}
    probs = layers["output"]
    return Recording(
        epochs=np.asarray(sorted(e for e in wanted if e <= config.epochs), dtype=np.int64),
        layers=layers, x=x.reshape(len(x), -1), y=y, part=part,
        train_accuracy=np.array([_accuracy(p, y, part == 0) for p in probs]),
        test_accuracy=np.array([_accuracy(p, y, part == 2) for p in probs]),
        loss=np.asarray(losses, dtype=np.float64),
        epoch_seconds=train_time[0] / max(config.epochs, 1),
        record_seconds=float(np.mean(record_times)),
    )


_memory: dict[str, Recording] = {}


def cached_recording(key_parts: dict[str, Any], compute: Callable[[], Recording]) -> Recording:
    """The recording for ``key_parts``: from this process, from disk, or computed and stored.

    Concurrent workers asking for the same key serialise on a file lock, so one trains.
    """
    from infobench.cache import cache_key, cache_root, exclusive_lock
    from infobench.results import atomic_write

    key = cache_key(**key_parts, version=CACHE_VERSION)
    if key in _memory:
        return _memory[key]
    folder = cache_root() / "ib"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{key}.npz"
    with exclusive_lock(folder / f"{key}.lock"):
        recording = None
        if path.exists():
            try:
                recording = Recording.from_bytes(path.read_bytes())
            except (OSError, ValueError, KeyError, TypeError):
                recording = None  # a torn or stale file is recomputed
        if recording is None:
            recording = compute()
            atomic_write(path, recording.to_bytes())
    _memory.clear()  # keep one recording in memory: they can be tens of MB
    _memory[key] = recording
    return recording
