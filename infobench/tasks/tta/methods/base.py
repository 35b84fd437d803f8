"""The contract of a test-time adaptation method.

A method is set up once on the trained source model, then sees the unlabeled stream one
batch at a time: ``adapt_and_predict(x)`` returns the logits it predicts for ``x`` *before*
(or while, for methods whose update uses the same forward pass) updating on it; labels are
never shown. ``reset()`` restores the state right after ``setup`` (episodic or per-domain
resets). ``batch_stats`` holds diagnostics of the last batch (``{"kept": 0.4}`` for the
fraction a sample filter kept), which the task records per batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict
from torch import Tensor

from infobench.data.base import Split
from infobench.models.base import Classifier

Updates = Literal["nothing", "bn_stats", "bn_affine", "all", "head", "memory"]


class NoParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


@dataclass
class SourceInfo:
    """What a method may know of the source side at set-up.

    ``train`` is the labelled source training split, given only to methods that declare
    ``needs_source = True`` (and recorded as such in the run); ``None`` otherwise.
    """

    num_classes: int
    train: Split | None = None


class TTAMethod:
    """Base class of TTA methods; subclasses register with ``@register("tta.method", name)``.

    Class attributes every method declares (recorded with each run):
    - ``needs_source``: whether ``setup`` reads source training data.
    - ``updates``: which parameters/state adaptation changes.
    - ``family_defaults``: parameter defaults that differ by benchmark family, from the
      anchors' per-dataset configs: ``{"cifar": {"d_margin": 0.4}, "imagenet": {...}}``. The
      spec applies those of the dataset's ``family`` to every parameter the user did not set,
      so they are part of the run's configuration (recorded and hashed like any other value).
      ``Params`` defaults stay the paper's; a family missing here uses them.
    """

    Params: ClassVar[type[BaseModel]] = NoParams
    needs_source: ClassVar[bool] = False
    updates: ClassVar[Updates] = "nothing"
    family_defaults: ClassVar[dict[str, dict[str, Any]]] = {}

    def __init__(self, params: BaseModel | None = None):
        self.params = params if params is not None else self.Params()
        self.batch_stats: dict[str, float] = {}

    def setup(self, model: Classifier, source: SourceInfo) -> None:
        """Take ownership of ``model`` (a copy the task made) and prepare adaptation."""
        self.model = model

    def adapt_and_predict(self, x: Tensor) -> Tensor:
        """Logits of shape (n, C) for the batch ``x``, then adapt on it (online, one pass)."""
        raise NotImplementedError

    def reset(self) -> None:
        """Return to the state right after ``setup``."""
        raise NotImplementedError
