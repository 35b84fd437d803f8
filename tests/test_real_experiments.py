"""The four real-data experiments (issue 13, item 6) end to end on tiny files in the releases' layouts.

Each test writes a few images in the exact on-disk layout the experiment reads (the CIFAR python
pickles, CIFAR-10-C's .npy per corruption, ImageNet-C's folder tree of JPEGs) and a checkpoint in
the format its publisher ships (RobustBench's ``{'state_dict': {'module.…'}}``, RepDistiller's
``{'model': …}``, torchvision's bare state dict), all under one folder named by
``$INFOBENCH_DATA``, so the experiment's own relative paths find them. It then runs the
experiment's ``--quick`` version through the CLI, shrinking only the model (``--set``) where the
published one would take minutes on a CPU. The checkpoints are random networks with
non-default BatchNorm statistics; the labels of the evaluated images are that network's own
predictions, computed here without infobench's checkpoint loading, so a checkpoint that is not
applied (or applied without its normalisation or BN statistics) shows as an error above 0 where
the published-numbers table reads its metric. tests/test_experiments.py leaves these four out of
its generic ``--quick`` loop (REAL_DATA there), which has no data files to give them.
"""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from infobench.cli import app
from infobench.results import load_metrics, load_runs
from infobench.spec import load_spec

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"
CIFAR100_MEAN, CIFAR100_STD = (0.5071, 0.4867, 0.4408), (0.2675, 0.2565, 0.2761)
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


# ------------------------------------------------------------------ the releases' layouts


def write_cifar_pickle(path: Path, images: np.ndarray, labels: np.ndarray, label_key: str) -> None:
    """One batch file of a CIFAR python-version folder with the release's content: a dict with
    bytes keys, b'data' uint8 (n, 3072) holding the red, green and blue planes in turn, and the
    labels as a list. ``images``: uint8 (n, 3, 32, 32). Pickled by Python 3 (protocol 4); the
    release's Python 2 opcodes are tested with the loader (tests/data/test_cifar10_loader.py)."""
    batch = {
        b"batch_label": path.name.encode(),
        label_key.encode(): [int(v) for v in labels],
        b"data": np.ascontiguousarray(images.reshape(len(images), 3 * 32 * 32)),
        b"filenames": [f"img_{i}.png".encode() for i in range(len(images))],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump(batch, f, protocol=4)


def random_images(rng: np.random.Generator, n: int) -> np.ndarray:
    """uint8 (n, 3, 32, 32): random 4 x 4 colour blocks plus pixel noise."""
    base = rng.integers(0, 256, size=(n, 3, 4, 4)).repeat(8, axis=2).repeat(8, axis=3)
    noise = rng.integers(-40, 41, size=(n, 3, 32, 32))
    return np.clip(base + noise, 0, 255).astype(np.uint8)


def write_cifar10(folder: Path, rng: np.random.Generator, per_batch: int = 8) -> None:
    """The CIFAR-10 python version: data_batch_1 ... data_batch_5 and test_batch."""
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        write_cifar_pickle(folder / name, random_images(rng, per_batch), np.arange(per_batch) % 10, "labels")


def write_cifar100(folder: Path, train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray]) -> None:
    """The CIFAR-100 python version (cifar-100-python): train, test (fine labels), meta."""
    write_cifar_pickle(folder / "train", *train, "fine_labels")
    write_cifar_pickle(folder / "test", *test, "fine_labels")
    (folder / "meta").write_bytes(pickle.dumps({b"fine_label_names": [b"c%d" % i for i in range(100)]}))


def with_bn_statistics(model: torch.nn.Module, inputs: torch.Tensor) -> torch.nn.Module:
    """``model`` after a few train-mode passes over ``inputs``: running BN statistics far from the
    initial (0, 1), so a checkpoint loaded without its buffers predicts differently. Eval mode."""
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = 0.5
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(inputs)
    return model.eval()


def spread_head(net: torch.nn.Module, head: torch.nn.Linear, x: torch.Tensor) -> None:
    """Set the classifier ``head`` of ``net`` (in eval mode) so that its predictions on ``x`` spread
    over the classes: row k is the (centred, unit) penultimate feature of ``x[k]``, so that image k
    is mostly predicted as class k. A random network predicts one class for most inputs."""
    captured = []
    hook = head.register_forward_hook(lambda module, inputs, output: captured.append(inputs[0]))
    with torch.no_grad():
        net(x)
        hook.remove()
        centred = captured[0] - captured[0].mean(0)
        k = min(len(centred), head.out_features)
        head.weight.zero_()
        head.weight[:k] = 10 * centred[:k] / centred[:k].norm(dim=1, keepdim=True)
        head.bias.zero_()


def normalised(x: np.ndarray, mean=None, std=None) -> torch.Tensor:
    """Float images ``x`` in [0, 1] as a tensor, minus ``mean`` and over ``std`` per channel if given."""
    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    if mean is None:
        return t
    return (t - torch.tensor(mean).reshape(1, 3, 1, 1)) / torch.tensor(std).reshape(1, 3, 1, 1)


def predict(model: torch.nn.Module, x: np.ndarray, mean=None, std=None) -> np.ndarray:
    """Class predictions of ``model`` (eval mode) on images ``x`` in [0, 1], normalised here if asked."""
    with torch.no_grad():
        return model(normalised(x, mean, std)).argmax(1).numpy()


def unit(images: np.ndarray) -> np.ndarray:
    """uint8 pixels as float32 in [0, 1], as the loaders scale them."""
    return images.astype(np.float32) / np.float32(255)


TINY_WRN_CIFAR100 = "{name: wrn, depth: 10, widen_factor: 1, normalize: cifar100}"
"""A model block 50 times cheaper than the CIFAR-100 ResNets, for the models trained in tests."""


def cifar100_network(name: str, bn_images: np.ndarray, labelled: np.ndarray) -> tuple[torch.nn.Module, np.ndarray]:
    """A random CIFAR-100 network ``name`` with BN statistics from ``bn_images`` (normalised with
    the CIFAR-100 mean and std, as the checkpoints were trained), and its predictions on
    ``labelled``: the labels under which a model that is this checkpoint scores 1."""
    from infobench.models.train import build_model

    net = build_model({"name": name}, (3, 32, 32), 100, seed=5)
    with_bn_statistics(net, normalised(unit(bn_images), CIFAR100_MEAN, CIFAR100_STD))
    spread_head(net, net.head, normalised(unit(labelled), CIFAR100_MEAN, CIFAR100_STD))
    return net, predict(net, unit(labelled), CIFAR100_MEAN, CIFAR100_STD)


def save_repdistiller(net: torch.nn.Module, path: Path) -> None:
    """``net`` saved as RepDistiller's train_teacher.py saves a checkpoint: the state dict (its
    classifier named ``fc``) under 'model', beside the epoch and the accuracy."""
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k.replace("head.", "fc."): v for k, v in net.state_dict().items()}
    torch.save({"epoch": 240, "model": state, "accuracy": 79.42}, path)


# ------------------------------------------------------------------ running an experiment


def run_quick(name: str, data: Path, tmp_path: Path, monkeypatch, *overrides: str):
    """``infobench run experiments/<name>.yaml --quick`` with the data folder as $INFOBENCH_DATA
    and an empty current folder; returns the spec and its results (runs, metrics)."""
    monkeypatch.setenv("INFOBENCH_DATA", str(data))
    monkeypatch.chdir(tmp_path)
    path = EXPERIMENTS / f"{name}.yaml"
    sets = [arg for override in overrides for arg in ("--set", override)]
    out = tmp_path / "results"
    result = CliRunner().invoke(app, ["run", str(path), "--quick", "--out", str(out), "--threads", "1", *sets])
    assert result.exit_code == 0, result.output
    spec = load_spec(path, list(overrides), quick=True)
    folder = out / spec.name
    runs = load_runs([folder])
    assert len(runs) == len(spec.runs()) and set(runs["status"]) == {"done"}, runs[["variant", "status", "error"]]
    return spec, runs, load_metrics([folder])


def final(metrics, metric: str, split: str):
    """Final values (no step) of ``metric`` on ``split``, one per run, indexed by method variant."""
    rows = metrics[(metrics["metric"] == metric) & (metrics["split"] == split) & metrics["step"].isna()]
    return rows.set_index("variant")["value"]


# ------------------------------------------------------------------ the tests


def test_tta_cifar10c_runs_on_the_release_layout_with_a_robustbench_checkpoint(tmp_path, monkeypatch):
    """Every method reports the benchmark's numbers (error per corruption and over the stream),
    and the unadapted source model is the checkpoint: zero error on images labelled with its own
    predictions, where the same architecture freshly initialised is far off."""
    from infobench.models.train import build_model

    rng = np.random.default_rng(0)
    data = tmp_path / "data"
    write_cifar10(data / "cifar-10-batches-py", rng)
    corruptions = load_spec(EXPERIMENTS / "tta_cifar10c.yaml", quick=True).blocks["dataset"][0]["corruptions"]
    n = 24  # images per severity
    images = {c: random_images(rng, 5 * n) for c in corruptions}  # (5n, 3, 32, 32): severities 1-5 in turn
    level5 = slice(4 * n, 5 * n)
    shape = {"name": "wrn", "depth": 10, "widen_factor": 1}
    net = build_model(shape, (3, 32, 32), 10, seed=3)
    with_bn_statistics(net, normalised(unit(np.concatenate(list(images.values())))))
    first = images[corruptions[0]]
    spread_head(net, net.head, normalised(unit(first[level5])))
    # The release has one labels.npy for every corruption: severity 5 gets the checkpoint's
    # predictions on the first corruption's images; where another corruption's image is predicted
    # otherwise, it is replaced by the first corruption's.
    target = predict(net, unit(first[level5]))
    labels = rng.integers(0, 10, size=5 * n).astype(np.uint8)
    labels[level5] = target
    folder = data / "CIFAR-10-C"
    folder.mkdir()
    np.save(folder / "labels.npy", labels)
    for c, stack in images.items():
        disagree = 4 * n + np.flatnonzero(predict(net, unit(stack[level5])) != target)
        stack[disagree] = first[disagree]
        np.save(folder / f"{c}.npy", np.ascontiguousarray(stack.transpose(0, 2, 3, 1)))  # stored (5n, 32, 32, 3)
    robustbench = {"state_dict": {f"module.{k.replace('head.', 'fc.')}": v for k, v in net.state_dict().items()}}
    (data / "models/cifar10/corruptions").mkdir(parents=True)
    torch.save(robustbench, data / "models/cifar10/corruptions/Standard.pt")

    spec, runs, metrics = run_quick(
        "tta_cifar10c", data, tmp_path, monkeypatch,
        "model.depth=10", "model.widen_factor=1", "methods[3].fisher_size=40", "methods[4].warmup_samples=32",
        "methods[4].source_batch_size=16")

    assert set(runs["method"]) == {"source", "norm", "tent", "eata", "rmt"}
    domains = [f"{c}@5" for c in corruptions]
    for split in [*domains, "stream"]:
        error = final(metrics, "error", split)
        assert set(error.index) == set(runs["variant"]) and error.between(0, 1).all(), (split, error)
        before = final(metrics, "error_before", split)
        assert (before == 0).all(), (split, before)  # the checkpoint, BN statistics and all
    assert final(metrics, "error", "stream")["source"] == 0
    fresh = build_model(shape, (3, 32, 32), 10, seed=4).eval()
    assert np.mean(predict(fresh, unit(first[level5])) != target) > 0.3  # so zero error is the checkpoint's


def test_distill_cifar100_distils_the_repdistiller_teacher_checkpoint(tmp_path, monkeypatch):
    """scratch and kd each report last and best test top-1 (the published table's metric), and
    the teacher is the checkpoint with its CIFAR-100 normalisation: its test accuracy is 1 on
    images labelled with the checkpoint's predictions on normalised inputs. The teacher is a
    resnet8x4 in RepDistiller's checkpoint layout, and the student a WRN-10-1, for speed (a
    resnet32x4 takes 60 ms per image on one CPU thread)."""
    rng = np.random.default_rng(1)
    data = tmp_path / "data"
    train_images, test_images = random_images(rng, 16), random_images(rng, 16)
    teacher, test_labels = cifar100_network("resnet8x4", train_images, test_images)
    write_cifar100(data / "cifar-100-python", (train_images, rng.integers(0, 100, 16)), (test_images, test_labels))
    checkpoint = data / "models/cifar100/resnet8x4_vanilla/ckpt_epoch_240.pth"
    save_repdistiller(teacher, checkpoint)

    spec, runs, metrics = run_quick(
        "distill_cifar100", data, tmp_path, monkeypatch, "teacher.model.name=resnet8x4",
        f"teacher.model.checkpoint={checkpoint.relative_to(data)}", f"model={TINY_WRN_CIFAR100}",
        "train.epochs=2", "train.milestones=[1]")

    assert set(runs["method"]) == {"scratch", "kd"}
    for metric in ("accuracy", "accuracy_best"):
        values = final(metrics, metric, "test")
        assert set(values.index) == {"scratch", "kd"} and values.between(0, 1).all(), (metric, values)
    assert (final(metrics, "teacher_accuracy", "test") == 1).all()
    without_normalisation = predict(teacher, unit(test_images))
    assert np.mean(without_normalisation == test_labels) < 0.9  # the normalisation matters here


def test_calibration_cifar100_trains_and_fits_every_calibrator_on_the_held_out_split(tmp_path, monkeypatch):
    """As shipped (the model trained here on 90% of the training pickle, the calibrators fitted on
    the other 10%): every calibrator of Guo et al.'s comparison reports the test ECE and accuracy,
    and temperature scaling leaves the accuracy unchanged. A WRN-10-1 stands in for the
    resnet32x4, and the matrix fits are cut short (fixed penalties, few iterations): on 100
    classes the cross-validated one takes 20 s here."""
    rng = np.random.default_rng(2)
    data = tmp_path / "data"
    write_cifar100(data / "cifar-100-python", (random_images(rng, 100), np.arange(100)),
                   (random_images(rng, 20), np.arange(20)))

    spec, runs, metrics = run_quick(
        "calibration_cifar100", data, tmp_path, monkeypatch, f"model={TINY_WRN_CIFAR100}",
        "train.epochs=2", "train.milestones=[1]", "methods[4]={name: matrix, l2_offdiag: 1, l2_bias: 1, l2_diag: 1, max_iter: 1}",
        "methods[5].max_iter=1")

    assert set(runs["method"]) == {"uncalibrated", "temperature", "vector", "matrix", "histogram", "isotonic"}
    assert len(runs) == 8
    ece, accuracy = final(metrics, "ece", "test"), final(metrics, "accuracy", "test")
    assert set(ece.index) == set(runs["variant"]) and ece.between(0, 1).all(), ece
    assert accuracy["temperature"] == accuracy["uncalibrated"]
    assert set(metrics.loc[metrics["metric"] == "ece", "split"]) == {"test"}  # no shifted domains


def test_calibration_cifar100_takes_a_checkpoint_in_place_of_training(tmp_path, monkeypatch):
    """The documented alternative, ``--set train=none --set model.checkpoint=...``: the
    uncalibrated test accuracy is the checkpoint's (1 on images labelled with its predictions)."""
    rng = np.random.default_rng(4)
    data = tmp_path / "data"
    train_images, test_images = random_images(rng, 50), random_images(rng, 12)
    net, test_labels = cifar100_network("resnet8x4", train_images[:8], test_images)
    write_cifar100(data / "cifar-100-python", (train_images, np.arange(50) % 100), (test_images, test_labels))
    save_repdistiller(net, data / "resnet8x4_45k.pth")

    spec, runs, metrics = run_quick(
        "calibration_cifar100", data, tmp_path, monkeypatch, "train=none", "model.name=resnet8x4",
        "model.checkpoint=resnet8x4_45k.pth", "methods=[uncalibrated, temperature]")

    accuracy = final(metrics, "accuracy", "test")
    assert accuracy.to_dict() == {"uncalibrated": 1.0, "temperature": 1.0}


@pytest.mark.vision
def test_tta_imagenetc_runs_on_the_release_tree_with_a_torchvision_checkpoint(tmp_path, monkeypatch):
    """The ImageNet-C tree (<corruption>/5/<wnid>/*.JPEG) and a torchvision state dict (its own
    key names, ImageNet normalisation): every method reports the error per corruption and over the
    stream, and the source model is the checkpoint (zero error on images filed under the class it
    predicts, decoded and normalised here with torchvision's own transforms)."""
    import torchvision
    from PIL import Image
    from torchvision import transforms

    corruptions = load_spec(EXPERIMENTS / "tta_imagenetc.yaml", quick=True).blocks["dataset"][0]["corruptions"]
    wnids = ["n01440764", "n01443537", "n01484850"]
    rng = np.random.default_rng(3)
    torch.manual_seed(6)
    net = torchvision.models.resnet18(num_classes=len(wnids))
    staging = tmp_path / "staging"
    staging.mkdir()
    names = [f"ILSVRC2012_val_{i:08d}.JPEG" for i in range(1, 10)]
    for name in names:
        pixels = rng.integers(0, 256, size=(6, 8, 3)).repeat(10, axis=0).repeat(10, axis=1).astype(np.uint8)
        Image.fromarray(pixels).save(staging / name, quality=90)
    preprocess = transforms.Compose([transforms.Resize(36), transforms.CenterCrop(32), transforms.ToTensor()])
    x = np.stack([preprocess(Image.open(staging / name).convert("RGB")).numpy() for name in names])
    with_bn_statistics(net, normalised(x, IMAGENET_MEAN, IMAGENET_STD))
    spread_head(net, net.fc, normalised(x, IMAGENET_MEAN, IMAGENET_STD))
    classes = predict(net, x, IMAGENET_MEAN, IMAGENET_STD)
    data = tmp_path / "data"
    for corruption in corruptions:
        for wnid in wnids:
            (data / "ImageNet-C" / corruption / "5" / wnid).mkdir(parents=True)
        for name, label in zip(names, classes):
            shutil.copy(staging / name, data / "ImageNet-C" / corruption / "5" / wnids[label] / name)
    (data / "models/imagenet").mkdir(parents=True)
    torch.save(net.state_dict(), data / "models/imagenet/resnet18-test.pth")

    spec, runs, metrics = run_quick(
        "tta_imagenetc", data, tmp_path, monkeypatch, "model.arch=resnet18",
        "model.checkpoint=models/imagenet/resnet18-test.pth", "dataset.image_size=32", "dataset.resize=36")

    assert set(runs["method"]) == {"source", "norm", "tent", "eta", "sar"}
    domains = [f"{c}@5" for c in corruptions]
    for split in [*domains, "stream"]:
        error = final(metrics, "error", split)
        assert set(error.index) == set(runs["variant"]) and error.between(0, 1).all(), (split, error)
        assert (final(metrics, "error_before", split) == 0).all(), split
        images_read = len(names) * (len(domains) if split == "stream" else 1)
        assert (final(metrics, "samples", split) == images_read).all(), split
    assert len(set(classes)) > 1  # the labels are not one class that any model might predict


def test_the_distill_student_follows_the_recipes_step_schedule(monkeypatch):
    """distill_cifar100 trains its student with ``schedule: step``: after the milestone the
    student's learning rate is ``lr * gamma``, as in train_classifier (the distill loop once
    applied only ``schedule: cosine`` and kept the rate constant)."""
    from infobench.data.base import Split
    from infobench.models.train import TrainConfig, build_model
    from infobench.tasks.distill import training
    from infobench.tasks.distill.losses.scratch import Scratch

    optimizers = []

    def recording(model, cfg):
        optimizers.append(make(model, cfg))
        return optimizers[-1]

    make = training.make_optimizer
    monkeypatch.setattr(training, "make_optimizer", recording)
    rng = np.random.default_rng(0)
    train = Split(rng.normal(size=(32, 4)).astype(np.float32), np.arange(32) % 2)
    student, teacher = (build_model({"name": "mlp", "width": 4, "depth": 1}, (4,), 2, seed=s) for s in (0, 1))
    loss = Scratch(Scratch.Params())
    loss.setup(student, teacher, 2)
    config = TrainConfig(epochs=2, lr=0.1, batch_size=16, optimizer="sgd", schedule="step", milestones=[1], gamma=0.1)
    training.train_student(student, loss, training.Teacher(teacher), train, config, seed=0)
    assert optimizers[0].param_groups[0]["lr"] == pytest.approx(0.01)
