"""A short ib run (issue 12 item 17: "10-epoch IB gives an empty plane"): the figures show every
recorded epoch and say which, and a network still at chance gets a warning that explains the plane."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from infobench.tasks.base import RunContext
from infobench.tasks.ib import plots
from infobench.tasks.ib.recording import Recording
from infobench.tasks.ib.task import report_recording


def two_epoch_metrics() -> pd.DataFrame:
    rows = []
    for layer in ("layer1", "layer2", "output"):
        for step in (0, 10):
            rows.append({"variant": "binning", "seed": 0, "split": layer, "step": step, "metric": "mi_xt_bits", "value": 5.0})
            rows.append({"variant": "binning", "seed": 0, "split": layer, "step": step, "metric": "mi_ty_bits", "value": 0.1})
        rows.append({"variant": "binning", "seed": 0, "split": layer, "step": None, "metric": "compression_bits", "value": 0.0})
    return pd.DataFrame(rows)


def test_short_run_figures_show_every_recorded_epoch_and_name_the_span(tmp_path, monkeypatch):
    drawn = {}
    monkeypatch.setattr(plots, "save_figure", lambda fig, path: drawn.setdefault(Path(path).name, fig) and Path(path))
    plots.ib_figures(two_epoch_metrics(), tmp_path)
    plane = drawn["ib_plane_binning"].axes[0]
    assert "epochs 0-10, 2 recorded" in plane.get_title()
    assert "epochs 0-10, 2 recorded" in drawn["ib_mi_epochs_binning"].axes[0].get_title()
    # points that do not move are still drawn: one per layer and recorded epoch
    assert sum(len(c.get_offsets()) for c in plane.collections) == 3 * 2


def recording(train_accuracy: float) -> Recording:
    y = np.array([0, 1] * 50)
    part = np.zeros(100, np.int8)
    layers = {"layer1": np.zeros((2, 100, 2), np.float32), "output": np.full((2, 100, 2), 0.5, np.float32)}
    accuracy = np.array([0.5, train_accuracy])
    return Recording(epochs=np.array([0, 10]), layers=layers, x=np.zeros((100, 1), np.float32), y=y, part=part,
                     train_accuracy=accuracy, test_accuracy=np.full(2, np.nan), loss=np.array([np.nan, 0.69]),
                     epoch_seconds=0.01, record_seconds=0.0)


def warnings_for(train_accuracy: float) -> list[str]:
    ctx = RunContext(run=None, plots_dir=None, logger=logging.getLogger("test"))
    report_recording(ctx, recording(train_accuracy), {"layer1": np.zeros(2), "output": np.zeros(2)})
    return ctx.warnings


def test_a_network_still_at_chance_is_warned_about():
    (warning,) = warnings_for(0.52)
    assert "after 10 epoch(s) the training accuracy is 0.520, chance level 0.500" in warning
    assert "train for more epochs" in warning
    assert warnings_for(0.99) == []
