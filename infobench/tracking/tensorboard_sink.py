"""``--log-to tensorboard``: each run of the folder as a TensorBoard run (``tensorboard --logdir
<folder>/tensorboard``).

Layout: ``<folder>/tensorboard/<variant>_seed<seed>_<run id>/`` holds one run's event file:
every metric row as the scalar ``split/metric`` at its step, the configuration as text and as
hyper-parameters (the HPARAMS tab, one row per run), and a marker naming the attempt it holds.
``<folder>/tensorboard/figures/`` holds the sweep's PNG figures as images (a figure saved as PDF
or SVG is not an image TensorBoard can show: with ``--plot-format pdf|svg`` the figures are
named in the text tab instead).

Each directory is written beside its place under a dot name and renamed into it whole, so an
interrupted sweep never leaves TensorBoard half a run; a dot directory left by one is removed
when the next sweep opens the sink.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from infobench.plots import slug
from infobench.tracking import Sink

MARKER = ".infobench-attempt"  # in each run directory: the attempt key it holds
FIGURES = "figures"
INCOMING = ".incoming-"


class TensorBoardSink(Sink):
    name = "tensorboard"

    def __init__(self, folder, spec_name: str):
        super().__init__(folder, spec_name)
        self.root = Path(folder.root) / "tensorboard"
        self.root.mkdir(parents=True, exist_ok=True)
        self.where = f"tensorboard: tensorboard --logdir {self.root}"
        for leftover in self.root.glob(f"{INCOMING}*"):
            shutil.rmtree(leftover)

    def _run_dirs(self) -> dict[str, Path]:
        """run id -> its directory (the run id is the last part of the name)."""
        return {path.name.rsplit("_", 1)[-1]: path for path in self.root.iterdir()
                if path.is_dir() and (path / MARKER).is_file()}

    def sent(self) -> set[str]:
        return {(path / MARKER).read_text().strip() for path in self._run_dirs().values()}

    def _replace(self, name: str, write) -> None:
        """Write a directory under a dot name with ``write(path)``, then rename it into ``name``."""
        incoming = self.root / f"{INCOMING}{name}"
        shutil.rmtree(incoming, ignore_errors=True)
        write(incoming)
        final = self.root / name
        if final.exists():
            shutil.rmtree(final)
        incoming.rename(final)

    def send_run(self, row: dict[str, Any], key: str, config: dict[str, Any],
                 points: list[tuple[str, int, float]]) -> None:
        from torch.utils.tensorboard import SummaryWriter
        from torch.utils.tensorboard.summary import hparams

        def write(path: Path) -> None:
            writer = SummaryWriter(str(path))
            try:
                for name, step, value in points:
                    writer.add_scalar(name, value, step)
                shown = {k: v if isinstance(v, (int, float, str, bool)) else json.dumps(v) for k, v in config.items()}
                writer.add_text("config", "    " + json.dumps(shown, indent=2, default=str).replace("\n", "\n    "))
                status = f"{row['status']}" + (f": {row['error']}" if row.get("error") else "")
                writer.add_text("status", status)
                finals = {name: value for name, step, value in points if step == 0}
                for summary in hparams({**shown, "status": row["status"]}, finals):
                    writer.file_writer.add_summary(summary)
            finally:
                writer.close()
            (path / MARKER).write_text(key + "\n")

        earlier = self._run_dirs().get(row["run_id"])  # the copy of an earlier result, replaced
        if earlier is not None:
            shutil.rmtree(earlier)
        self._replace(f"{slug(row['variant'])}_seed{row['seed']}_{row['run_id']}", write)

    def send_figures(self, figures: Sequence[Path], files: Sequence[Path]) -> None:
        from matplotlib.image import imread
        from torch.utils.tensorboard import SummaryWriter

        if not figures:
            return

        def write(path: Path) -> None:
            writer = SummaryWriter(str(path))
            try:
                for figure in figures:
                    if figure.suffix == ".png":
                        image = imread(str(figure))[..., :3]  # RGB floats in [0, 1]; alpha dropped
                        writer.add_image(figure.stem, image, 0, dataformats="HWC")
                others = [f.name for f in figures if f.suffix != ".png"]
                if others:
                    writer.add_text("figures", "saved as " + ", ".join(others) + " in the results folder's plots/")
            finally:
                writer.close()

        self._replace(FIGURES, write)
