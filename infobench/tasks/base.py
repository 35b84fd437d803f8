"""The task protocol: how one run turns a resolved configuration into metric rows.

A task owns its protocol (train or load the model under study, apply the method, evaluate)
and knows nothing of the runner; the runner knows nothing of any method. Everything a run
reports goes through ``RunContext.metric``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict

from infobench.errors import DivergedError

if TYPE_CHECKING:
    import pandas as pd

    from infobench.spec import Run


class NoScenario(BaseModel):
    model_config = ConfigDict(extra="forbid")


@dataclass
class RunContext:
    """What a running task can touch: its config, a logger, the plots folder, and the metric sink."""

    run: Run
    plots_dir: Path
    logger: logging.Logger
    rows: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def metric(self, metric: str, value: float, split: str = "test", step: int | None = None) -> None:
        """Record one observation. ``step`` is the epoch or batch index; None for final values."""
        self.rows.append({"split": split, "step": step, "metric": metric, "value": float(value)})

    def metrics(self, values: dict[str, float], split: str = "test", step: int | None = None) -> None:
        for name, value in values.items():
            self.metric(name, value, split=split, step=step)

    def check_finite(self, value: Any, what: str) -> None:
        """Raise ``DivergedError`` when ``value`` (a number, numpy array or tensor) holds a NaN or inf."""
        if _all_finite(value):
            return
        raise DivergedError(f"{what} is not finite")

    def log(self, message: str) -> None:
        self.logger.info(message)

    def warn(self, message: str) -> None:
        """Something the user must see although the run finished (a degenerate fit, a filter that
        kept almost nothing): logged as a warning, stored with the run and shown in the summary."""
        self.logger.warning(message)
        self.warnings.append(message)


def _all_finite(value: Any) -> bool:
    if isinstance(value, (int, float)):
        return math.isfinite(value)
    if hasattr(value, "detach"):  # a torch tensor, without importing torch here
        import torch

        return bool(torch.isfinite(value).all())
    import numpy as np

    return bool(np.isfinite(np.asarray(value)).all())


class Task:
    """Base class of tasks. Subclasses register with ``@register("task", name)``.

    - ``method_kind``: the registry kind holding this task's methods (``"calibration.method"``).
    - ``Scenario``: pydantic model of the task's ``scenario`` block.
    - ``blocks``: extra top-level spec blocks this task accepts (``teacher``, ``student``).
    - ``uses_model``: whether the spec names a ``model`` (the mi task has none).
    - ``dataset_kind``: the registry kind its ``dataset`` block names (the mi task's are
      distributions with known MI, kept out of ``infobench list datasets``).
    - ``summary_metrics``, ``summary_split``: what ``infobench run`` prints when it ends.
    - ``extra_kinds``: other registry kinds its blocks name, listed with its methods by
      ``infobench list methods <task>`` (``{"losses": "calibration.loss"}``).
    """

    method_kind: ClassVar[str]
    Scenario: ClassVar[type[BaseModel]] = NoScenario
    blocks: ClassVar[dict[str, type[BaseModel]]] = {}
    uses_model: ClassVar[bool] = True
    dataset_kind: ClassVar[str] = "dataset"
    summary_metrics: ClassVar[tuple[str, ...] | None] = None  # shown after a run; None: all
    summary_split: ClassVar[str | None] = None  # the split shown after a run; None: all
    extra_kinds: ClassVar[dict[str, str]] = {}  # other plugins a spec of this task can name

    @classmethod
    def train_config(cls) -> type[BaseModel] | None:
        """Pydantic model of the ``train`` block, or None when the task trains nothing."""
        from infobench.models.train import TrainConfig

        return TrainConfig

    @classmethod
    def check_spec(cls, blocks: dict[str, Any]) -> list[str]:
        """Cross-block checks on one resolved setting (dataset, model, train, scenario, ...).

        Returns problem lines with key paths; single blocks are validated before this.
        """
        return []

    def run(self, run: Run, ctx: RunContext) -> None:
        """Execute one run, reporting through ``ctx``. Raise ``DivergedError`` on NaN losses/predictions."""
        raise NotImplementedError

    def summarize(self, spec_name: str, metrics: pd.DataFrame, plots_dir: Path) -> list[Path]:
        """Figures over all finished runs of a spec (called after a sweep); returns the files written."""
        return []
