"""Where a run computes: the device and the numeric precision, chosen once per run.

The CLI's ``--device`` (or the spec's ``device:``) names a device: ``auto`` (CUDA when
present, else Apple's MPS when present, else the CPU), ``cpu``, ``cuda``, ``cuda:N`` or
``mps``. The runner resolves it and calls :func:`use` in the process that executes the run;
tasks read it back with :func:`current` and move their model and data there. Methods,
losses, calibrators and estimators stay device-agnostic: they create tensors on the device
of what they are given (``x.device``, a model parameter's device) and never assume the CPU.

``precision`` (the spec's ``precision:``, part of a run's identity) is ``fp32`` (default),
``bf16`` or ``fp16``; the lower two run forward passes under ``torch.autocast`` on CUDA
(:func:`autocast`), with a gradient scaler for fp16 (:func:`grad_scaler`). On the CPU and
MPS they are refused at plan time, since autocast there changes which kernels run but is not
what the published numbers were measured with.

Torch is imported lazily, so that the CLI's help and ``compare`` never load it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from infobench.errors import InfobenchError

if TYPE_CHECKING:
    import torch

Precision = Literal["fp32", "bf16", "fp16"]
PRECISIONS = ("fp32", "bf16", "fp16")
DEVICE_NAME = re.compile(r"auto|cpu|mps|cuda(:\d{1,3})?")

_current: dict[str, Any] = {"device": None, "precision": "fp32"}


def check_name(name: str) -> str:
    """``name`` if it is a device name infobench accepts, else an ``InfobenchError``."""
    if not isinstance(name, str) or not DEVICE_NAME.fullmatch(name):
        raise InfobenchError(f"device {name!r} is not one of auto, cpu, cuda, cuda:N, mps")
    return name


def resolve(name: str = "auto") -> torch.device:
    """The torch device ``name`` stands for on this machine; an error when it is absent.

    ``auto`` takes the first CUDA device, else MPS, else the CPU. ``cuda`` without an index
    is the current CUDA device (``cuda:0`` unless :func:`claim_gpu` gave this process another).
    """
    import torch

    check_name(name)
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise InfobenchError(
                f"device {name!r}: CUDA is not available here (torch {torch.__version__}, "
                f"built for CUDA {torch.version.cuda or 'none'}); use --device cpu or auto"
            )
        count = torch.cuda.device_count()
        index = int(name.split(":")[1]) if ":" in name else torch.cuda.current_device()
        if index >= count:
            raise InfobenchError(f"device {name!r}: this machine has {count} CUDA device(s), 0..{count - 1}")
        return torch.device("cuda", index)
    if name == "mps" and not _mps_available():
        raise InfobenchError("device 'mps': Apple's Metal backend is not available here; use --device cpu or auto")
    return torch.device(name)


def _mps_available() -> bool:
    import torch

    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def check_precision(precision: str, device: torch.device) -> None:
    """Refuse a reduced precision where infobench does not run it (only CUDA autocasts)."""
    if precision not in PRECISIONS:
        raise InfobenchError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    if precision != "fp32" and device.type != "cuda":
        raise InfobenchError(f"precision {precision!r} needs a CUDA device; this run is on {device}")
    if precision == "bf16":
        import torch

        if not torch.cuda.is_bf16_supported():
            raise InfobenchError(f"precision 'bf16': {torch.cuda.get_device_name(device)} has no bfloat16 support")


def describe(device: torch.device) -> str:
    """A device with its hardware name, for the manifest and the logs ("cuda:0 (NVIDIA H200)")."""
    import torch

    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return str(device)


@contextlib.contextmanager
def use(device: torch.device, precision: str = "fp32") -> Iterator[None]:
    """Make ``device`` and ``precision`` the current ones for the block (one run)."""
    import torch

    before = dict(_current)
    _current.update(device=device, precision=precision)
    try:
        if device.type == "cuda":
            with torch.cuda.device(device):
                yield
        else:
            yield
    finally:
        _current.update(before)


def current() -> torch.device:
    """The device of the run in progress (the CPU outside a run)."""
    import torch

    return _current["device"] if _current["device"] is not None else torch.device("cpu")


def precision() -> str:
    return _current["precision"]


def autocast() -> contextlib.AbstractContextManager:
    """``torch.autocast`` at the run's precision on CUDA; nothing at fp32."""
    import torch

    dev, prec = current(), precision()
    if prec == "fp32" or dev.type != "cuda":
        return contextlib.nullcontext()
    return torch.autocast("cuda", dtype=torch.bfloat16 if prec == "bf16" else torch.float16)


def grad_scaler() -> Any:
    """A ``GradScaler`` for fp16 training on CUDA (a disabled one otherwise: a pass-through)."""
    import torch

    return torch.amp.GradScaler("cuda", enabled=current().type == "cuda" and precision() == "fp16")


def tensor(array: Any, dtype: Any = None) -> torch.Tensor:
    """A numpy array (or tensor) as a tensor on the current device, copied once."""
    import numpy as np
    import torch

    if not isinstance(array, torch.Tensor):
        array = torch.from_numpy(np.ascontiguousarray(array))
    return array.to(current(), dtype=dtype) if dtype is not None else array.to(current())


def synchronize() -> None:
    """Wait for queued kernels, so that a wall-clock time measures the work and not its launch."""
    import torch

    dev = current()
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    elif dev.type == "mps":
        torch.mps.synchronize()


_claimed: list[Any] = []


def claim_gpu(slots_dir: Path) -> int | None:
    """Give this worker process a CUDA device of its own, for sweeps with ``--jobs N``.

    Each of the machine's GPUs has a lock file in ``slots_dir``; the process takes the first
    one no other process holds (an ``flock`` kept for the life of the process, so a worker
    that dies frees its GPU) and makes it the current CUDA device. With more workers than
    GPUs the extra ones share, round-robin by process id. Returns the index, or None
    without CUDA.
    """
    import torch

    if not torch.cuda.is_available():
        return None
    if _claimed:
        return torch.cuda.current_device()
    count = torch.cuda.device_count()
    slots_dir.mkdir(parents=True, exist_ok=True)
    chosen = os.getpid() % count
    for index in range(count):
        handle = open(slots_dir / f"gpu{index}.lock", "a")  # noqa: SIM115 - held for the process
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            continue
        _claimed.append(handle)
        chosen = index
        break
    torch.cuda.set_device(chosen)
    return chosen
