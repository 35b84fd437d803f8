"""On-disk cache of trained base models (source, teacher, model under study), keyed by a hash.

An entry for key ``K`` lives in ``cache_root() / "models"``:

- ``K.pt``: the state dict, written atomically (temp file in the same folder, then rename);
- ``K.sha256``: the hex digest of ``K.pt``'s bytes, written after it, so a torn, truncated or
  edited weights file is detected on load and retrained instead of silently used;
- ``K.json``: the key parts, for humans browsing the cache;
- ``K.lock``: an ``fcntl.flock`` target; check, train and save happen under an exclusive
  lock so parallel workers asking for the same model train it once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import fcntl
import hashlib
import io
import json
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel
from torch import nn

from infobench.results import atomic_write

log = logging.getLogger("infobench.cache")

KEY_LENGTH = 20


def cache_root() -> Path:
    """``$INFOBENCH_CACHE`` when set and non-empty, else ``~/.cache/infobench``."""
    env = os.environ.get("INFOBENCH_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "infobench"


def models_dir() -> Path:
    """Folder of cached model entries under ``cache_root()``."""
    return cache_root() / "models"


def _jsonable(obj: Any) -> Any:
    """``json.dumps`` fallback for the non-JSON values that config dicts tend to carry."""
    if isinstance(obj, BaseModel):
        return obj.model_dump(mode="json")
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (Path, enum.Enum)):
        return str(obj.value if isinstance(obj, enum.Enum) else obj)
    if isinstance(obj, (set, frozenset)):
        return sorted(obj, key=repr)
    raise TypeError(f"cache key part of type {type(obj).__name__} is not JSON-serialisable: {obj!r}")


def canonical_json(parts: dict[str, Any]) -> str:
    """Key parts as JSON with sorted keys and no whitespace: equal parts, equal text."""
    return json.dumps(parts, sort_keys=True, separators=(",", ":"), default=_jsonable)


def cache_key(**parts: Any) -> str:
    """First 20 hex characters of the sha256 of the canonical JSON of ``parts``.

    Pass everything the trained weights depend on: dataset config, model config, training
    config, seed, role (source/teacher/...), and anything else that changes the result.
    """
    return hashlib.sha256(canonical_json(parts).encode()).hexdigest()[:KEY_LENGTH]


@contextlib.contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created if missing) for the block.

    The lock file is never deleted: removing it while another process waits on the old
    inode would let a third process lock a new file and train concurrently.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _load(key: str, folder: Path, build: Callable[[], nn.Module]) -> nn.Module | None:
    """The cached model for ``key``, or None when absent or failing verification (logged)."""
    weights, digest_file = folder / f"{key}.pt", folder / f"{key}.sha256"
    if not weights.exists():
        return None
    if not digest_file.exists():
        log.warning("cache entry %s has no checksum file (interrupted save?); retraining", key)
        return None
    data = weights.read_bytes()
    expected = digest_file.read_text().strip()
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        log.warning(
            "cache entry %s failed its checksum (expected %s, got %s): tampered or torn file; "
            "retraining", key, expected[:12], actual[:12],
        )
        return None
    model = build()
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    except Exception as exc:  # a stale entry from an older architecture is retrained, not fatal
        log.warning("cache entry %s does not load into the model (%s); retraining", key, exc)
        return None
    return model


def _save(key: str, folder: Path, model: nn.Module, key_parts: dict[str, Any]) -> None:
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    data = buffer.getvalue()
    # Weights first, checksum second: a crash in between leaves an entry without a checksum,
    # which the next load treats as a miss.
    atomic_write(folder / f"{key}.pt", data)
    atomic_write(folder / f"{key}.sha256", hashlib.sha256(data).hexdigest() + "\n")
    atomic_write(folder / f"{key}.json", json.dumps(key_parts, sort_keys=True, indent=2,
                                                    default=_jsonable) + "\n")


def cached_model(
    key_parts: dict[str, Any],
    build: Callable[[], nn.Module],
    train: Callable[[nn.Module], None],
) -> nn.Module:
    """The model for ``key_parts``: loaded from the cache, or built, trained and stored.

    ``build()`` returns a fresh untrained model; ``train(model)`` trains it in place. On a hit
    only ``build`` runs, then the stored state dict is loaded. Concurrent callers with the
    same key serialise on a file lock, so the first trains and the others then hit. If
    ``train`` raises, nothing is stored. The returned model is in eval mode.
    """
    key = cache_key(**key_parts)
    role = key_parts.get("role", "model")
    folder = models_dir()
    folder.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(folder / f"{key}.lock"):
        model = _load(key, folder, build)
        if model is not None:
            log.info("cache hit %s (%s)", key, role)
        else:
            log.info("cache miss %s (%s): training", key, role)
            model = build()
            train(model)
            _save(key, folder, model, key_parts)
    model.eval()
    return model
