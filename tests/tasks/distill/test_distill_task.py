"""The distill protocol end to end on digits: shared cached teacher, metrics per epoch and final, modes, spec errors."""

from __future__ import annotations

import numpy as np
import pytest

from infobench.data.base import Split
from infobench.errors import SpecError
from infobench.results import load_metrics, load_runs
from infobench.runner import execute, plan
from infobench.spec import validate
from infobench.tasks.distill.task import agreement_and_kl, stratified_subset

EPOCHS = 3


def distill_spec(**extra) -> dict:
    spec = {
        "name": "tiny-distill",
        "task": "distill",
        "seeds": [0],
        "dataset": {"name": "digits"},
        "model": {"name": "mlp", "width": 16, "depth": 1},
        "train": {"epochs": EPOCHS, "lr": 0.01, "batch_size": 128},
        "teacher": {"model": {"name": "mlp", "width": 32}, "train": {"epochs": 3, "lr": 0.01, "batch_size": 128}},
        "methods": ["scratch", "kd", "bdkd", "dhkd", "mi_alpha", "sinkd", "tgeo"],
    }
    spec.update(extra)
    return spec


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    out = tmp_path_factory.mktemp("distill")
    summary = execute(plan(validate(distill_spec()), out))
    return summary, out / "tiny-distill"


def test_every_loss_runs_and_reports_labelled_last_and_best_accuracy(finished):
    _, folder = finished
    runs = load_runs([folder])
    assert set(runs["status"]) == {"done"}, runs[["method", "error"]]
    m = load_metrics([folder])
    final = m[m["step"].isna() & (m["split"] == "test")].pivot_table(index="method", columns="metric", values="value")
    assert (final["accuracy_best"] >= final["accuracy"] - 1e-12).all()
    assert final["best_epoch"].between(1, EPOCHS).all()
    assert final["agreement"].between(0, 1).all() and (final["kl_teacher_student"] >= 0).all()
    per_epoch = m[m["step"].notna() & (m["metric"] == "accuracy") & (m["split"] == "test")]
    assert sorted(per_epoch.groupby("method")["step"].nunique().unique()) == [EPOCHS]
    # accuracy_best is the best of the per-epoch test accuracies
    best = per_epoch.groupby("method")["value"].max()
    assert np.allclose(best.loc[final.index], final["accuracy_best"])
    assert (m[(m["metric"] == "seconds_per_epoch")]["value"] > 0).all()


def test_offline_losses_share_one_cached_teacher_and_bdkd_trains_its_own(finished):
    _, folder = finished
    m = load_metrics([folder])
    teacher = m[(m["metric"] == "teacher_accuracy") & m["step"].isna()].set_index("method")["value"]
    assert teacher["scratch"] == teacher["kd"] == teacher["dhkd"] == teacher["mi_alpha"] == teacher["sinkd"] == teacher["tgeo"]
    online = m[(m["metric"] == "teacher_accuracy") & m["step"].notna()]
    assert set(online["method"]) == {"bdkd"}  # the online teacher is tracked per epoch


def test_agreement_and_kl_by_hand():
    s = np.log(np.array([[0.5, 0.5], [0.9, 0.1]]))
    t = np.log(np.array([[0.25, 0.75], [0.9, 0.1]]))
    agree, kl = agreement_and_kl(s, t)
    assert agree == 0.5  # argmax of the tie [0.5, 0.5] is class 0, the teacher says 1
    expected = 0.5 * (0.25 * np.log(0.5) + 0.75 * np.log(1.5))
    assert kl == pytest.approx(expected, rel=1e-9)


def test_few_shot_subset_is_stratified_seeded_and_keeps_every_class():
    y = np.repeat(np.arange(4), [100, 50, 20, 3])
    split = Split(np.arange(len(y), dtype=np.float32)[:, None], y)
    sub = stratified_subset(split, 0.05, seed=0)
    assert np.bincount(sub.y).tolist() == [5, 3, 1, 1]
    assert np.array_equal(sub.x, stratified_subset(split, 0.05, seed=0).x)
    assert not np.array_equal(sub.x, stratified_subset(split, 0.05, seed=1).x)
    assert stratified_subset(split, 1.0, seed=0) is split


def test_bad_specs_name_the_key():
    with pytest.raises(SpecError, match=r"teacher\.model\.name"):
        validate(distill_spec(teacher={"model": {"name": "mpl"}}))
    with pytest.raises(SpecError, match=r"teacher\.model\.width"):
        validate(distill_spec(teacher={"model": {"name": "mlp", "width": -3}}))
    with pytest.raises(SpecError, match=r"student\.train_fraction"):
        validate(distill_spec(student={"train_fraction": 0}))
    with pytest.raises(SpecError, match=r"teacher\.model"):
        validate(distill_spec(teacher={}))


def test_a_loss_forced_into_a_mode_it_cannot_run_fails_with_the_reason(tmp_path):
    spec = distill_spec(methods=["bdkd"], scenario={"mode": "offline"}, train={"epochs": 1})
    execute(plan(validate(spec), tmp_path))
    runs = load_runs([tmp_path / "tiny-distill"])
    assert runs["status"].tolist() == ["failed"]
    log = next((tmp_path / "tiny-distill" / "logs").glob("*.log")).read_text()
    assert "cannot run in offline mode" in log


def test_mcmi_teacher_and_few_shot_student_end_to_end(tmp_path, finished):
    _, ce_folder = finished
    spec = distill_spec(methods=["kd"], train={"epochs": 1, "batch_size": 32},
                        teacher={**distill_spec()["teacher"], "objective": "mcmi"},
                        student={"train_fraction": 0.05})
    execute(plan(validate(spec), tmp_path))
    m = load_metrics([tmp_path / "tiny-distill"])
    assert load_runs([tmp_path / "tiny-distill"])["status"].tolist() == ["done"]
    value = m.set_index("metric")["value"]
    # digits' training split holds 104-110 images of each of its 10 classes: ceil(5%) = 6 each
    assert value["train_samples"] == 60
    ce = load_metrics([ce_folder])
    ce_teacher = ce[(ce["metric"] == "teacher_nll") & (ce["method"] == "kd")]["value"].item()
    assert value["teacher_nll"] != ce_teacher  # a teacher of its own, not the cached CE one
