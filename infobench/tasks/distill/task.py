"""Task ``distill``: which divergence transfers a teacher's knowledge best to a small student.

Spec design (``infobench list methods distill`` lists the losses):

- ``model`` is the **student** (a model list gives one setting per student), and ``train`` is
  the student's optimisation. The results' ``model`` column therefore names the student.
- ``teacher`` holds the teacher's ``model`` (required), its own ``train`` config and its
  ``objective`` (``ce``, or ``mcmi``: CE - lambda * CMI, see ``losses/mcmi.py``). In offline
  mode the teacher is trained once per (dataset, teacher, seed) and cached, so every loss of a
  seed distils the same teacher.
- ``student`` holds the student's data: ``train_fraction`` < 1 gives a few-shot student that
  sees a class-stratified subset of the training split (the teacher always sees all of it).
- ``scenario.mode``: ``auto`` (each loss's own mode: bdkd online, the rest offline),
  ``offline`` or ``online``; a loss asked for a mode it cannot run in fails with a message.

Reported metrics (the student unless prefixed ``teacher_``), per epoch (``step`` = epoch) and
at the end (``step`` empty): on ``test``, ``accuracy`` (last epoch), ``nll``, ``ece``,
``agreement`` (teacher-student top-1 agreement), ``kl_teacher_student`` (mean
KL(p_teacher || p_student) in nats at T=1); on ``val``, ``accuracy``; on ``train``,
``seconds_per_epoch`` (training steps only). At the end also ``accuracy_best`` (best test
accuracy over epochs, as many papers report), ``best_epoch``, ``accuracy_at_best_val`` (test
accuracy at the epoch of best validation accuracy), the full classification metric set, and
the teacher's ``teacher_accuracy``, ``teacher_nll``, ``teacher_ece``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from infobench.data.base import Split
from infobench.errors import RegistryError
from infobench.metrics import classification_metrics
from infobench.models.train import TrainConfig
from infobench.progress import track
from infobench.registry import register
from infobench.tasks.base import RunContext, Task
from infobench.tasks.common import load_data, trained_model


class TeacherBlock(BaseModel):
    """The ``teacher`` block: model, training and objective of the teacher."""

    model_config = ConfigDict(extra="forbid")

    model: dict[str, Any] = Field(description="The teacher model, e.g. {name: cnn1d, channels: 25}.")
    train: TrainConfig | Literal["none"] = Field(
        default_factory=TrainConfig,
        description="The teacher's training config, or none: the teacher is its model.checkpoint as it is.",
    )
    objective: Literal["ce", "mcmi"] = Field(
        "ce", description="ce: cross-entropy; mcmi: CE - cmi_weight * CMI (maximum conditional MI teacher)."
    )
    cmi_weight: float = Field(0.2, ge=0, description="lambda of the mcmi objective (ignored for ce).")


class StudentBlock(BaseModel):
    """The ``student`` block: which part of the training split the student learns from."""

    model_config = ConfigDict(extra="forbid")

    train_fraction: float = Field(
        1.0, gt=0, le=1, description="Class-stratified fraction of the training split the student sees (few-shot < 1)."
    )


class DistillScenario(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Literal["auto", "offline", "online"] = Field(
        "auto", description="auto: each loss's own mode; offline: frozen cached teacher; online: trained together."
    )
    n_bins: int = Field(15, ge=1, le=1000, description="Bins of the ECE.")


def stratified_subset(split: Split, fraction: float, seed: int) -> Split:
    """``ceil(fraction * n_c)`` random samples of every class ``c`` (at least one each), seeded."""
    if fraction >= 1.0:
        return split
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(split))
    labels = split.y[order]
    keep = []
    for c in np.unique(labels):
        members = order[labels == c]
        keep.append(members[: max(1, int(np.ceil(fraction * len(members))))])
    idx = np.sort(np.concatenate(keep))
    return Split(split.x[idx], split.y[idx])


def agreement_and_kl(student_logits: np.ndarray, teacher_logits: np.ndarray) -> tuple[float, float]:
    """Top-1 agreement in [0, 1] and mean KL(softmax(teacher) || softmax(student)) in nats."""
    def log_softmax(z):
        z = z.astype(np.float64) - z.max(1, keepdims=True)
        return z - np.log(np.exp(z).sum(1, keepdims=True))

    log_t, log_s = log_softmax(teacher_logits), log_softmax(student_logits)
    kl = float(np.mean((np.exp(log_t) * (log_t - log_s)).sum(1)))
    agree = float(np.mean(student_logits.argmax(1) == teacher_logits.argmax(1)))
    return agree, kl


def offline_teacher(data, cfg: dict[str, Any], teacher_cfg: TeacherBlock, seed: int, ctx: RunContext):
    """The frozen teacher of an offline run: trained once per (dataset, teacher, seed), then cached.

    Training it is the longest step of a seed's first run while the runs bar stays at 0, so it
    gets a progress line of its own (its epochs show in the "train" line beneath it) and the
    time it took, training or loading, goes to the run's log.
    """
    from infobench.tasks.distill.losses.mcmi import mcmi_objective

    objective = key = None
    if teacher_cfg.objective == "mcmi":
        objective = mcmi_objective(teacher_cfg.cmi_weight)
        key = {"objective": "mcmi", "cmi_weight": teacher_cfg.cmi_weight}
    epochs = "no training (its checkpoint)" if teacher_cfg.train == "none" else f"{teacher_cfg.train.epochs} epochs"
    label = f"teacher {teacher_cfg.model['name']} ({teacher_cfg.objective}): {epochs}, once per seed (then cached)"
    started = time.perf_counter()
    for _ in track([label], label):
        model = trained_model(data, cfg["dataset"], teacher_cfg.model, cfg["teacher"]["train"],
                              seed, role="teacher", loss_fn=objective, loss_key=key)
    ctx.log(f"teacher ready after {time.perf_counter() - started:.1f} s ({epochs} if trained now; see the cache line above)")
    return model


@register("task", "distill")
class DistillTask(Task):
    """Knowledge distillation from a cached (or co-trained) teacher to a small student."""

    method_kind = "distill.loss"
    extra_kinds = {"teacher objectives (teacher.objective)": "distill.teacher"}
    Scenario = DistillScenario
    blocks = {"teacher": TeacherBlock, "student": StudentBlock}
    summary_metrics = ("accuracy", "accuracy_best", "nll", "ece", "agreement", "kl_teacher_student")

    @classmethod
    def check_spec(cls, blocks: dict[str, Any]) -> list[str]:
        from infobench import registry

        model = blocks.get("teacher", {}).get("model", {})
        if "name" not in model:
            return ["teacher.model.name: missing; say which model the teacher is (e.g. {name: cnn1d})"]
        try:
            model_cls = registry.get("model", model["name"])
        except RegistryError as exc:
            return [f"teacher.model.name: {exc}"]
        from infobench.models.checkpoint import ModelCommon, split_common

        own, common = split_common({k: v for k, v in model.items() if k != "name"})
        problems = []
        for what, schema in ((own, model_cls.Params), (common, ModelCommon)):
            try:
                schema.model_validate(what)
            except ValidationError as exc:
                problems += [f"teacher.model.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
        teacher = blocks.get("teacher", {})
        if teacher.get("train") == "none" and not common.get("checkpoint"):
            problems.append("teacher.train: none uses the teacher as its checkpoint has it; give teacher.model.checkpoint")
        return problems

    def run(self, run, ctx: RunContext) -> None:
        from infobench import device as devices
        from infobench import registry
        from infobench.models.train import build_model, predict_logits
        from infobench.tasks.distill.training import Teacher, train_student

        cfg = run.config
        scenario = DistillScenario.model_validate(cfg["scenario"])
        teacher_cfg = TeacherBlock.model_validate(cfg["teacher"])
        student_cfg = StudentBlock.model_validate(cfg["student"])
        train_cfg = TrainConfig.model_validate(cfg["train"])
        loss_cls = registry.get(self.method_kind, run.method)
        loss_fn = loss_cls(loss_cls.Params.model_validate(run.params))
        mode = loss_cls.modes[0] if scenario.mode == "auto" else scenario.mode
        if mode not in loss_cls.modes:
            raise ValueError(f"loss {run.method!r} cannot run in {mode} mode (it supports {', '.join(loss_cls.modes)}); "
                             "set scenario.mode to auto")
        ctx.log(f"distill {run.method} in {mode} mode, teacher objective {teacher_cfg.objective}")

        data = load_data(cfg["dataset"], run.seed)
        if mode == "offline":
            teacher = Teacher(offline_teacher(data, cfg, teacher_cfg, run.seed, ctx))
        else:
            if teacher_cfg.objective != "ce":
                raise ValueError("teacher.objective mcmi trains a cached offline teacher; online teachers use ce")
            if teacher_cfg.train == "none":
                raise ValueError(f"loss {run.method!r} trains its teacher online, which teacher.train: none rules out")
            online_cfg = teacher_cfg.train.model_copy(update={"epochs": train_cfg.epochs})
            teacher = Teacher(build_model(teacher_cfg.model, data.input_shape, data.num_classes,
                                          seed=run.seed + 1).to(devices.current()), online_cfg)

        train_split = stratified_subset(data.train, student_cfg.train_fraction, run.seed)
        ctx.metric("train_samples", len(train_split), split="train")
        student = build_model(cfg["model"], data.input_shape, data.num_classes, seed=run.seed).to(devices.current())
        loss_fn.setup(student, teacher.model, data.num_classes)  # train_student moves the loss's modules to the student

        fixed_teacher_test = None if mode == "online" else predict_logits(teacher.model, data.test.x)
        history: list[dict[str, float]] = []

        def evaluate(epoch: int | None, seconds: float | None) -> dict[str, float]:
            t_logits = fixed_teacher_test if fixed_teacher_test is not None else predict_logits(teacher.model, data.test.x)
            s_logits = predict_logits(student, data.test.x)
            ctx.check_finite(s_logits, f"student logits at epoch {epoch}")
            full = classification_metrics(s_logits, data.test.y, n_bins=scenario.n_bins)
            agree, kl = agreement_and_kl(s_logits, t_logits)
            row = {k: full[k] for k in ("accuracy", "nll", "ece")} if epoch is not None else dict(full)
            row.update(agreement=agree, kl_teacher_student=kl)
            ctx.metrics(row, split="test", step=epoch)
            if epoch is not None:
                val_acc = float("nan")  # a dataset without a validation split records none
                if len(data.val):
                    val_acc = float((predict_logits(student, data.val.x).argmax(1) == data.val.y).mean())
                    ctx.metric("accuracy", val_acc, split="val", step=epoch)
                ctx.metric("seconds_per_epoch", seconds, split="train", step=epoch)
                if mode == "online":
                    ctx.metric("teacher_accuracy", float((t_logits.argmax(1) == data.test.y).mean()), split="test", step=epoch)
                history.append({"epoch": epoch, "test": row["accuracy"], "val": val_acc, "seconds": seconds})
            return row

        train_student(student, loss_fn, teacher, train_split, train_cfg, run.seed, on_epoch=evaluate, val=data.val)
        evaluate(None, None)
        t_logits = predict_logits(teacher.model, data.test.x)
        t_metrics = classification_metrics(t_logits, data.test.y, n_bins=scenario.n_bins)
        ctx.metrics({f"teacher_{k}": t_metrics[k] for k in ("accuracy", "nll", "ece")}, split="test")
        if history:
            test_acc = np.array([h["test"] for h in history])
            val_acc = np.array([h["val"] for h in history])
            best = int(np.argmax(test_acc))
            ctx.metric("accuracy_best", test_acc[best], split="test")
            ctx.metric("best_epoch", history[best]["epoch"], split="test")
            if np.isfinite(val_acc).any():
                ctx.metric("accuracy_at_best_val", test_acc[int(np.nanargmax(val_acc))], split="test")
            ctx.metric("seconds_per_epoch", float(np.mean([h["seconds"] for h in history])), split="train")

    def summarize(self, spec_name: str, metrics, plots_dir: Path) -> list[Path]:
        """Test accuracy of the student over epochs in %, one line per loss (mean ± std over seeds),
        with the teacher's test accuracy as a black dashed line.

        ``student_accuracy.<format>`` when the spec has one setting; with a grid over the other
        blocks (two student models, say), one ``student_accuracy_<setting>`` per setting, so that
        students are only drawn against others of the same setting, under their own teacher. The
        teacher line is the mean over seeds of the fixed teacher's final ``teacher_accuracy``;
        online teachers (trained alongside their student, which record it per epoch) are left out.
        """
        from infobench.plots import line_plot, series_styles, split_settings, unique_slugs, wrapped

        curves = metrics[(metrics["metric"] == "accuracy") & (metrics["split"] == "test") & metrics["step"].notna()]
        if curves.empty:
            return []
        curves = curves.assign(value=curves["value"] * 100)
        curves["variant"], setting = split_settings(curves["variant"])
        styles = series_styles(curves["variant"])
        written = []
        for label, name in unique_slugs(setting).items():
            part = curves[setting == label]
            teacher = fixed_teacher_accuracy(metrics[metrics["run_id"].isin(part["run_id"])])
            title = f"{spec_name}: student test accuracy" + (f"\n{wrapped(label)}" if label else "")
            path, _ = line_plot(part, x="step", y="value", hue="variant",
                                path=Path(plots_dir) / (f"student_accuracy_{name}" if label else "student_accuracy"),
                                title=title, xlabel="epoch", ylabel="student test accuracy [%]", styles=styles,
                                reference=None if teacher is None else (100 * teacher, f"teacher ({100 * teacher:.1f}%)"))
            written.append(path)
        return written


def fixed_teacher_accuracy(metrics) -> float | None:
    """Mean over seeds of the final ``teacher_accuracy`` of runs whose teacher is fixed (trained
    before the student; an online teacher records it per epoch as well); None when there is none.
    Runs of one seed share their teacher, so each seed counts once."""
    rows = metrics[metrics["metric"] == "teacher_accuracy"]
    online = set(rows.loc[rows["step"].notna(), "run_id"])
    final = rows[rows["step"].isna() & ~rows["run_id"].isin(online)]
    if final.empty:
        return None
    return float(final.groupby("seed")["value"].mean().mean())
