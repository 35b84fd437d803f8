"""What every model block may carry besides its own parameters: a checkpoint and an input normalisation.

``finish_model`` loads the checkpoint (a state dict of the bare architecture, as the public
repositories publish them) and then wraps the model so that it normalises its [0, 1] inputs
the way the checkpoint was trained.
"""

from __future__ import annotations

import logging
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, get_args

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor

from infobench.errors import DataError, InfobenchError
from infobench.models.base import Classifier

log = logging.getLogger("infobench.models")

# Per-channel (mean, std) of the training sets. CIFAR-10: the training set's statistics
# (RobustBench models take [0, 1] inputs and need none of this). CIFAR-100: the values of
# RepDistiller (CRD) and mdistiller (DKD), whose teacher checkpoints were trained with them.
# ImageNet: torchvision's and timm's.
NORMALIZATIONS: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4867, 0.4408), (0.2675, 0.2565, 0.2761)),
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
}
NormalizeName = Literal["none", "cifar10", "cifar100", "imagenet"]
# The Literal is what specs are validated against; keep it and the table in step.
assert set(get_args(NormalizeName)) == {"none", *NORMALIZATIONS}

# Prefixes that wrappers add in front of every key: nn.DataParallel / DistributedDataParallel
# ("module."), training scripts that save a wrapper's state ("model.").
WRAPPER_PREFIXES = ("module.", "model.")
# Keys under which training scripts nest the state dict in a larger checkpoint dict.
NESTING_KEYS = ("state_dict", "model", "net")

EXPECTED_FORMAT = ("a state dict (parameter name -> tensor) saved with torch.save(model.state_dict()) "
                   "as .pt/.pth, possibly nested under 'state_dict', 'model' or 'net', or a .safetensors file")


class ModelCommon(BaseModel):
    """Keys any model block takes besides the model's own parameters."""

    model_config = ConfigDict(extra="forbid")

    checkpoint: str | None = Field(
        None, description="Local file of weights to load (.pt/.pth state dict, or .safetensors); none: random init.")
    normalize: NormalizeName = Field(
        "none", description="Per-channel mean/std the model subtracts/divides from its [0, 1] inputs, "
                            "as its checkpoint was trained.")
    strict: bool = Field(
        True, description="Refuse a checkpoint whose keys or shapes differ from the model's; "
                          "false loads the keys that fit and leaves the rest as initialised.")


COMMON_MODEL_KEYS = tuple(ModelCommon.model_fields)


def split_common(cfg: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(own, common)``: the model block ``cfg`` split into the keys of ``ModelCommon`` and the rest.

    Everything that is not a common key (``name`` included, if present) stays in ``own``.
    """
    own = {k: v for k, v in cfg.items() if k not in COMMON_MODEL_KEYS}
    common = {k: v for k, v in cfg.items() if k in COMMON_MODEL_KEYS}
    return own, common


# --------------------------------------------------------------------------------- reading files


def load_state(path: str | Path) -> dict[str, Tensor]:
    """The state dict (name -> tensor, on the CPU) stored in ``path``.

    ``.safetensors`` files are read with the safetensors package; anything else with
    ``torch.load(weights_only=True)``, which refuses pickled Python objects (a whole saved
    model, custom classes) rather than running their code. A dict that holds the state dict
    under 'state_dict', 'model' or 'net' (training checkpoints with optimizer state, epoch,
    ...) is unwrapped. A missing, unreadable, truncated or otherwise unsuitable file raises
    ``DataError`` naming the path and the format expected.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"{path}: checkpoint file not found; expected {EXPECTED_FORMAT}")
    if path.suffix == ".safetensors":
        data: Any = _load_safetensors(path)
    else:
        try:
            data = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # truncated zip, not a torch file, unreadable: torch raises many kinds
            objects = _pickled_objects(path) if isinstance(exc, pickle.UnpicklingError) else []
            if objects:
                raise DataError(
                    f"{path}: holds pickled Python objects ({_some(objects, limit=5)}), which are not loaded "
                    f"because unpickling can run arbitrary code; expected {EXPECTED_FORMAT} (re-save "
                    "the weights alone: torch.save(model.state_dict(), path))") from None
            raise DataError(f"{path}: cannot be read as a torch checkpoint ({type(exc).__name__}: "
                            f"{_first_line(exc)}); expected {EXPECTED_FORMAT}") from None
    return _state_dict_in(data, path)


def _pickled_objects(path: Path) -> list[str]:
    """The classes a torch file would have to unpickle (a whole model, numpy scalars, ...)."""
    try:
        return sorted(torch.serialization.get_unsafe_globals_in_checkpoint(path))
    except Exception:  # not a torch file at all
        return []


def _load_safetensors(path: Path) -> dict[str, Tensor]:
    try:
        from safetensors.torch import load_file
    except ImportError:
        raise InfobenchError(f"{path}: reading .safetensors files needs the safetensors package "
                             "(pip install safetensors)") from None
    try:
        return load_file(path, device="cpu")
    except Exception as exc:  # SafetensorError for a bad header or truncated data, OSError
        raise DataError(f"{path}: cannot be read as a .safetensors file ({type(exc).__name__}: "
                        f"{_first_line(exc)}); expected {EXPECTED_FORMAT}") from None


def _state_dict_in(data: Any, path: Path) -> dict[str, Tensor]:
    """Unwrap nested checkpoint dicts down to the name -> tensor mapping, checking it is one."""
    while isinstance(data, Mapping) and not _all_tensors(data):
        nested = [k for k in NESTING_KEYS if isinstance(data.get(k), Mapping)]
        if not nested:
            break
        data = data[nested[0]]
    if not isinstance(data, Mapping) or not data:
        what = "an empty dict" if isinstance(data, Mapping) else f"a {type(data).__name__}"
        raise DataError(f"{path}: holds {what}; expected {EXPECTED_FORMAT}")
    if not _all_tensors(data):
        odd = [f"{k!r} ({type(v).__name__})" for k, v in data.items() if not isinstance(v, Tensor)]
        raise DataError(f"{path}: entries that are not tensors: {_some(odd)}; expected {EXPECTED_FORMAT}")
    return {str(k): v for k, v in data.items()}


def _all_tensors(data: Mapping) -> bool:
    return all(isinstance(v, Tensor) for v in data.values())


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _some(items: list[str], limit: int = 10) -> str:
    """The first ``limit`` items, then how many more."""
    shown = ", ".join(items[:limit])
    return shown + (f", ... ({len(items) - limit} more)" if len(items) > limit else "")


# ------------------------------------------------------------------------------ loading weights


def match_keys(state: Mapping[str, Tensor], own_keys: set[str], renames: Mapping[str, str]) -> dict[str, Tensor]:
    """``state`` with its keys mapped onto the model's naming.

    A prefix that every key carries (``module.``, ``model.``) and the model does not is
    dropped. Then each key that the model does not have is renamed by the first matching
    prefix rule of ``renames`` (``{"fc.": "head."}``; an empty prefix matches every key). Keys
    the model already has are left alone, so a state dict saved from infobench's own model
    loads unchanged.
    """
    keys = list(state)
    for prefix in WRAPPER_PREFIXES:
        if keys and all(k.startswith(prefix) and k not in own_keys for k in keys):
            keys = [k[len(prefix):] for k in keys]
    out: dict[str, Tensor] = {}
    for key, value in zip(keys, state.values(), strict=True):
        if key not in own_keys:
            for old, new in renames.items():
                if key.startswith(old):
                    key = new + key[len(old):]
                    break
        out[key] = value
    return out


def apply_checkpoint(model: Classifier, path: str | Path, strict: bool = True) -> Classifier:
    """Load the state dict in ``path`` into ``model`` (in place) and return the model.

    Keys are matched by ``match_keys`` with the model's ``checkpoint_renames``. With
    ``strict``, any missing or unexpected key or differing shape raises ``DataError`` listing
    them; otherwise the fitting keys load, the rest keep their initial values (logged), and
    only a checkpoint with no fitting key at all is refused. BatchNorm's
    ``num_batches_tracked`` counters, absent from old checkpoints, are never required.
    """
    own = model.state_dict()
    state = match_keys(load_state(path), set(own), getattr(model, "checkpoint_renames", {}))
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in own]
    wrong_shape = [f"{k} (checkpoint {tuple(state[k].shape)}, model {tuple(own[k].shape)})"
                   for k in state if k in own and state[k].shape != own[k].shape]
    fitting = {k: v for k, v in state.items() if k in own and v.shape == own[k].shape}
    problems = [f"{len(keys)} {what}: {_some(keys)}" for what, keys in
                (("missing key(s)", missing), ("unexpected key(s)", unexpected), ("shape mismatch(es)", wrong_shape))
                if keys]
    name = getattr(model, "registered_name", type(model).__name__)
    if problems and (strict or not fitting):
        renames = getattr(model, "checkpoint_renames", {})
        hint = "; set strict: false to load the keys that fit" if fitting else ""
        raise DataError(
            f"{path}: the checkpoint does not fit model {name!r}: " + "; ".join(problems)
            + f". Expected {EXPECTED_FORMAT}, for this architecture (prefixes {', '.join(WRAPPER_PREFIXES)} "
            f"are dropped{', keys renamed by ' + repr(renames) if renames else ''}){hint}")
    if problems:
        log.warning("%s: loaded %d of %d tensors into model %r; %s", path, len(fitting), len(own), name,
                    "; ".join(problems))
    model.load_state_dict(fitting, strict=False)
    return model


def checkpoint_digest(path: str | Path) -> str:
    """sha256 of the checkpoint file (memoised by infobench.provenance), for run provenance."""
    from infobench.provenance import file_digest

    path = Path(path).expanduser()
    try:
        return file_digest(path)
    except OSError as exc:
        raise DataError(f"{path}: cannot read the checkpoint file ({exc.strerror or exc}); "
                        f"expected {EXPECTED_FORMAT}") from None


# ---------------------------------------------------------------------------------- normalising


class Normalized(Classifier):
    """``inner`` with its inputs normalised per channel: ``features(x) = inner.features((x - mean) / std)``.

    The wrapper is a second view of the same model rather than a parent of it: it shares the
    inner model's submodules, parameters and buffers (the same dicts), so module names,
    ``state_dict`` keys and hooks are those of the bare architecture, ``head`` *is* the
    inner head, and replacing ``head`` (or any layer) on the wrapper replaces it in both.
    Other attributes are looked up on ``inner``.
    """

    def __init__(self, inner: Classifier, mean: tuple[float, ...], std: tuple[float, ...]):
        super().__init__(inner.params, inner.input_shape, inner.num_classes)
        for shared in ("_parameters", "_buffers", "_non_persistent_buffers_set", "_modules"):
            object.__setattr__(self, shared, getattr(inner, shared))
        object.__setattr__(self, "_inner", inner)  # not a submodule: its children are ours already
        self.feature_dim = inner.feature_dim
        self.training = inner.training
        shape = (1, len(mean)) + (1,) * (len(inner.input_shape) - 1)
        # plain tensors, not buffers: the buffer dict is the inner model's, and the state
        # dict must stay the bare architecture's; they follow the input's device on first use
        self._mean = torch.tensor(mean).reshape(shape)
        self._std = torch.tensor(std).reshape(shape)

    @property
    def inner(self) -> Classifier:
        return self._inner

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name == "_inner" or "_inner" not in self.__dict__:
                raise
            return getattr(self._inner, name)

    def train(self, mode: bool = True) -> Normalized:
        super().train(mode)
        self._inner.training = mode  # the inner model's own flag, which features() may read
        return self

    def features(self, x: Tensor) -> Tensor:
        if self._mean.device != x.device or self._mean.dtype != x.dtype:
            self._mean, self._std = self._mean.to(x), self._std.to(x)
        return self._inner.features((x - self._mean) / self._std)

    def extra_repr(self) -> str:
        return f"mean={tuple(self._mean.flatten().tolist())}, std={tuple(self._std.flatten().tolist())}"


def normalized(model: Classifier, normalize: str) -> Classifier:
    """``model`` normalising its inputs by the statistics named ``normalize`` ("none": unchanged)."""
    if normalize == "none":
        return model
    mean, std = NORMALIZATIONS[normalize]
    if len(model.input_shape) != 3 or model.input_shape[0] != len(mean):
        raise InfobenchError(
            f"model.normalize: {normalize!r} normalises {len(mean)}-channel images (C, H, W), but the model "
            f"takes inputs of shape {model.input_shape}; use normalize: none")
    return Normalized(model, mean, std)


def finish_model(model: Classifier, common: ModelCommon) -> Classifier:
    """Load ``common.checkpoint`` into the freshly built ``model``, then add its input normalisation.

    The checkpoint goes into the bare architecture first, so a state dict of that architecture
    (as the public repositories save it) loads; the wrapper shares the same keys anyway.
    """
    if common.checkpoint is not None:
        apply_checkpoint(model, common.checkpoint, strict=common.strict)
    return normalized(model, common.normalize)
