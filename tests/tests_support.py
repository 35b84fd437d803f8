"""Plain data shared by tests that cannot take fixtures (hypothesis strategies), and the toy
task of the runner tests (registered once, here, however many test modules use it)."""

from typing import Literal

from pydantic import BaseModel, ConfigDict

from infobench import registry
from infobench.errors import DivergedError
from infobench.tasks.base import Task

TTA_DIGITS = {
    "name": "tta-tiny",
    "task": "tta",
    "seeds": [0],
    "threads": 1,
    "dataset": {"name": "digits-c", "corruptions": ["defocus_blur", "contrast"], "severity": 5},
    "model": {"name": "cnn2d", "width": 8},
    "train": {"epochs": 3, "lr": 3.0e-3, "batch_size": 64},
    "scenario": {"order": "continual", "batch_size": 64, "max_per_domain": 128},
    "methods": ["source"],
}
"""A TTA spec on two digits-c domains that runs in seconds (a few epochs of a small CNN)."""

TINY = {
    "name": "tiny",
    "task": "calibration",
    "seeds": [0],
    "dataset": {"name": "digits"},
    "model": {"name": "mlp", "width": 32},
    "train": {"epochs": 3, "lr": 0.01, "batch_size": 64},
    "methods": ["uncalibrated", "temperature"],
}


class Behave:
    """Test method: reports a metric, raises, or turns NaN, as told."""

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        mode: Literal["ok", "fail", "nan", "nan_metric", "warn"] = "ok"


registry.register("test-toy.method", "behave")(Behave)


@registry.register("task", "test-toy")
class ToyTask(Task):
    """A task that needs no data: the method's mode decides the outcome."""

    method_kind = "test-toy.method"
    uses_model = False

    @classmethod
    def train_config(cls):
        return None

    def run(self, run, ctx):
        mode = run.params["mode"]
        if mode == "fail":
            raise RuntimeError("the method broke")
        if mode == "nan":
            raise DivergedError("loss became nan at epoch 3")
        if mode == "warn":
            ctx.warn("the filter kept 2% of the samples")
        ctx.metric("score", float("nan") if mode == "nan_metric" else run.seed + 0.5)


def toy_spec(**extra) -> dict:
    return {"name": "toy", "task": "test-toy", "seeds": [0, 1], "dataset": {"name": "digits"},
            "methods": [{"name": "behave"}, {"name": "behave", "mode": "fail"},
                        {"name": "behave", "mode": "nan"}, {"name": "behave", "mode": "nan_metric"}], **extra}
