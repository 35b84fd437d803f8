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
import shutil
import stat
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
    inode would let a third process lock a new file and train concurrently. A link at its name
    is not followed.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


MAX_ENTRY_BYTES = 8 << 30  # a cached state dict larger than this is not ours (a link to /dev/zero, say)


def _regular_file(path: Path) -> bool:
    """Whether ``path`` is a plain file (not a folder, device or link): the only thing the cache reads."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def _read_entry(key: str, folder: Path) -> tuple[bytes, str] | None:
    """The weights' bytes and the recorded digest of entry ``key``, or None (logged) when either
    is missing, not a plain file, too large or unreadable: such an entry is a miss, not a failure."""
    weights, digest_file = folder / f"{key}.pt", folder / f"{key}.sha256"
    if not weights.exists() and not weights.is_symlink():
        return None
    if not (_regular_file(weights) and _regular_file(digest_file)):
        log.warning("cache entry %s is incomplete or not made of plain files; retraining", key)
        return None
    try:
        if weights.stat().st_size > MAX_ENTRY_BYTES or digest_file.stat().st_size > 256:
            raise ValueError("larger than a cache entry can be")
        return weights.read_bytes(), digest_file.read_text(encoding="ascii").strip()
    except (OSError, ValueError) as exc:  # UnicodeDecodeError is a ValueError
        log.warning("cache entry %s cannot be read (%s); retraining", key, exc)
        return None


def _load(key: str, folder: Path, build: Callable[[], nn.Module], newer_than: float | None = None) -> nn.Module | None:
    """The cached model for ``key``, or None when absent, older than ``newer_than`` (a forced
    retrain) or failing verification (logged)."""
    if newer_than is not None and _regular_file(folder / f"{key}.pt") and (folder / f"{key}.pt").stat().st_mtime < newer_than:
        log.info("cache entry %s predates this sweep's --retrain; retraining", key)
        return None
    entry = _read_entry(key, folder)
    if entry is None:
        return None
    data, expected = entry
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
    """Store a trained model; a cache that cannot take it (a folder in the way, a full disk) costs
    the next run a retrain, never this run its result."""
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    data = buffer.getvalue()
    try:
        # Weights first, checksum second: a crash in between leaves an entry without a checksum,
        # which the next load treats as a miss.
        atomic_write(folder / f"{key}.pt", data)
        atomic_write(folder / f"{key}.sha256", hashlib.sha256(data).hexdigest() + "\n")
        atomic_write(folder / f"{key}.json", json.dumps(key_parts, sort_keys=True, indent=2,
                                                        default=_jsonable) + "\n")
    except OSError as exc:
        log.warning("cannot store cache entry %s (%s); the model is used but not kept", key, exc)


def retrain_since() -> float | None:
    """With ``--retrain``, the sweep's start: entries written before it are retrained once."""
    value = os.environ.get("INFOBENCH_RETRAIN_SINCE")
    try:
        return float(value) if value else None
    except ValueError:
        return None


def model_key_parts(key_parts: dict[str, Any]) -> dict[str, Any]:
    """``key_parts`` with a dataset configuration replaced by what shapes training on it: the
    parameters that are not test-only and the content of its files, never their paths
    (``infobench.provenance.training_data_key``); a model's ``checkpoint`` path is replaced by
    the file's sha256 likewise."""
    dataset = key_parts.get("dataset")
    if isinstance(dataset, dict) and isinstance(dataset.get("name"), str):
        from infobench.provenance import training_data_key

        key_parts = {**key_parts, "dataset": training_data_key(dataset)}
    model = key_parts.get("model")
    if isinstance(model, dict) and model.get("checkpoint"):
        from infobench.data.files import data_path
        from infobench.provenance import file_digest

        digest = file_digest(data_path(model["checkpoint"]))
        key_parts = {**key_parts, "model": {**model, "checkpoint": "sha256:" + digest}}
    return key_parts


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
        model = _load(key, folder, build, newer_than=retrain_since())
        if model is not None:
            log.info("cache hit %s (%s)", key, role)
        else:
            log.info("cache miss %s (%s): training", key, role)
            model = build()
            train(model)
            _save(key, folder, model, key_parts)
    model.eval()
    return model


CACHE_FOLDERS = ("models", "ib", "fingerprints")  # what infobench keeps under cache_root()


def entries() -> list[dict[str, Any]]:
    """The cached models, newest first: key, role, dataset, model, seed, bytes, written (epoch s)."""
    folder = models_dir()
    out = []
    for weights in sorted(folder.glob("*.pt")) if folder.is_dir() else []:
        if not _regular_file(weights):
            continue
        parts: dict[str, Any] = {}
        sidecar = weights.with_suffix(".json")
        if _regular_file(sidecar):
            try:
                parts = json.loads(sidecar.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                parts = {}
        parts = parts if isinstance(parts, dict) else {}

        def name_of(block: Any) -> str:
            return str(block.get("name", "")) if isinstance(block, dict) else ""

        info = weights.stat()
        out.append({"key": weights.stem, "role": str(parts.get("role", "")), "dataset": name_of(parts.get("dataset")),
                    "model": name_of(parts.get("model")), "seed": parts.get("seed", ""), "bytes": info.st_size,
                    "written": info.st_mtime})
    return sorted(out, key=lambda e: -e["written"])


def clear() -> int:
    """Delete what infobench keeps in the cache (models, IB recordings, file digests); returns the
    number of files removed. Anything else under the cache root is left alone."""
    removed = 0
    for name in CACHE_FOLDERS:
        folder = cache_root() / name
        if folder.is_symlink():
            folder.unlink()
            continue
        if folder.is_dir():
            removed += sum(1 for p in folder.rglob("*") if not p.is_dir())
            shutil.rmtree(folder)
    return removed
