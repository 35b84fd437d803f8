"""Training the cached teacher shows as a named progress line and its time is logged (issue 12 item 17)."""

from __future__ import annotations

import logging

from infobench.progress import use_progress
from infobench.spec import validate
from infobench.tasks.base import RunContext
from infobench.tasks.distill.task import DistillTask


class RecordingProgress:
    """Stands in for rich's Progress: keeps every line a run adds, with its total and advances."""

    def __init__(self) -> None:
        self.lines: list[list] = []  # [description, total, advances]

    def add_task(self, description: str, total: int | None = None) -> int:
        self.lines.append([description.strip(), total, 0])
        return len(self.lines) - 1

    def advance(self, task: int) -> None:
        self.lines[task][2] += 1

    def remove_task(self, task: int) -> None:
        pass


class ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def run_once(run, tmp_path) -> tuple[RecordingProgress, list[str]]:
    logger = logging.getLogger("tests.distill_progress")
    logger.setLevel(logging.INFO)
    handler = ListHandler()
    logger.addHandler(handler)
    progress = RecordingProgress()
    try:
        with use_progress(progress):
            DistillTask().run(run, RunContext(run=run, plots_dir=tmp_path, logger=logger))
    finally:
        logger.removeHandler(handler)
    return progress, handler.messages


def test_teacher_training_has_a_named_progress_line_and_a_logged_time(tmp_path):
    spec = validate({
        "name": "progress", "task": "distill", "seeds": [0], "dataset": {"name": "digits"},
        "model": {"name": "mlp", "width": 8, "depth": 1},
        "train": {"epochs": 2, "lr": 0.01, "batch_size": 256},
        "teacher": {"model": {"name": "mlp", "width": 16}, "train": {"epochs": 3, "lr": 0.01, "batch_size": 256}},
        "methods": ["kd"],
    })
    run = spec.runs()[0]

    progress, messages = run_once(run, tmp_path)
    names = [line[0] for line in progress.lines]
    # the teacher's own line, then its epochs beneath it, then the student's epochs
    assert names[0].startswith("teacher mlp (ce): 3 epochs"), names
    assert progress.lines[0][2] == 1  # done once the teacher is ready
    assert progress.lines[1][:3] == ["train", 3, 3]
    assert progress.lines[2][:3] == ["student", 2, 2]
    assert any(m.startswith("teacher ready after") for m in messages), messages

    # the next run of the seed loads the cached teacher: the line still shows, no training under it
    progress, messages = run_once(run, tmp_path)
    assert [line[0] for line in progress.lines][1:] == ["student"]
    assert progress.lines[0][0].startswith("teacher mlp (ce)")
    assert any(m.startswith("teacher ready after") for m in messages)
