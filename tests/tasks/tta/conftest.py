"""Shared fixtures of the TTA tests: a small BN CNN trained on digits, and corrupted digits."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def digits_c():
    """digits-c with three severity-5 corruptions (about 360 test samples per domain)."""
    from infobench.data.digits_c import DigitsC

    params = DigitsC.Params(corruptions=["gaussian_noise", "defocus_blur", "contrast"], severity=5)
    return DigitsC(params).load(0)


@pytest.fixture(scope="session")
def _trained_cnn(digits_c):
    from infobench.models.train import TrainConfig, build_model, train_classifier

    model = build_model({"name": "cnn2d", "width": 16}, digits_c.input_shape, digits_c.num_classes, seed=0)
    train_classifier(model, digits_c.train, TrainConfig(epochs=15, lr=3e-3, batch_size=64), seed=0)
    return model.eval()


@pytest.fixture
def source_model(_trained_cnn):
    """A fresh copy of a small cnn2d (width 16, BatchNorm) trained on clean digits for 15 epochs."""
    import copy

    return copy.deepcopy(_trained_cnn)
