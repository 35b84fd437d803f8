"""Per-benchmark-family defaults of the TTA methods (issue 13).

``TTAMethod.family_defaults`` holds, per dataset family, the values where the anchors' configs
for CIFAR-10-C and ImageNet-C differ (mariodoebler/test-time-adaptation,
``classification/cfgs/{cifar10_c,imagenet_c}/<method>.yaml`` over ``classification/conf.py``);
the spec applies them to every parameter a user did not set. ``Params`` defaults stay the
papers'.
"""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError

from infobench import registry
from infobench.tasks.tta.common import EntropyParams, make_optimizer

# The anchors' optimizers: cifar10_c configs OPTIM Adam, LR 1e-3; imagenet_c configs SGD, LR
# 0.00025, with conf.py's OPTIM.MOMENTUM 0.9 and OPTIM.NESTEROV True passed to torch.optim.SGD.
CIFAR_ADAM = {"optimizer": "adam", "lr": 1e-3}
IMAGENET_SGD = {"optimizer": "sgd", "lr": 0.00025, "momentum": 0.9, "nesterov": True}
TENT = {"cifar": CIFAR_ADAM, "imagenet": IMAGENET_SGD}
EXPECTED = {
    "tent": TENT,
    "woc": TENT,  # no anchor config: Tent with a filter
    "sfda_prior": TENT,  # no anchor config: Tent with a KL term
    "deyo": TENT,
    # eta.yaml: EATA.D_MARGIN 0.4 (cifar) / 0.05 (imagenet)
    "eta": {"cifar": {**CIFAR_ADAM, "d_margin": 0.4}, "imagenet": {**IMAGENET_SGD, "d_margin": 0.05}},
    # eata.yaml: also EATA.FISHER_ALPHA 1.0 / 2000.0, SOURCE.NUM_SAMPLES 2000, Fisher batches of
    # TEST.BATCH_SIZE (200 / 64)
    "eata": {
        "cifar": {**CIFAR_ADAM, "d_margin": 0.4, "fisher_alpha": 1.0, "fisher_size": 2000, "fisher_batch_size": 200},
        "imagenet": {**IMAGENET_SGD, "d_margin": 0.05, "fisher_alpha": 2000.0, "fisher_size": 2000,
                     "fisher_batch_size": 64},
    },
    # methods/sar.py always wraps plain SGD (no Nesterov) in SAM, at the config's lr
    "sar": {"cifar": {"optimizer": "sgd", "lr": 1e-3, "momentum": 0.9},
            "imagenet": {"optimizer": "sgd", "lr": 0.00025, "momentum": 0.9}},
    # rmt.yaml: imagenet LR 0.01; source batches of TEST.BATCH_SIZE
    "rmt": {"cifar": {**CIFAR_ADAM, "source_batch_size": 200},
            "imagenet": {**IMAGENET_SGD, "lr": 0.01, "source_batch_size": 64}},
    # the same in both families (norm_test, norm_alpha with BN.ALPHA 0.1, source) or no anchor config
    "source": {}, "norm": {}, "alpha_bn": {}, "core": {}, "adanpc": {}, "upl": {},
}


def test_every_method_is_listed():
    assert sorted(EXPECTED) == sorted(registry.names("tta.method"))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_family_defaults_are_the_anchors_and_valid_parameters(name):
    cls = registry.get("tta.method", name)
    assert cls.family_defaults == EXPECTED[name]
    for family, values in cls.family_defaults.items():
        assert family in ("cifar", "imagenet")
        assert set(values) <= set(cls.Params.model_fields), (family, set(values) - set(cls.Params.model_fields))
        params = cls.Params.model_validate(values)
        assert {key: getattr(params, key) for key in values} == values


def test_eta_and_eata_parameter_defaults_are_the_papers_imagenet_setting():
    # Niu et al. 2022, the authors' main.py: SGD(lr 0.00025, momentum 0.9), no Nesterov;
    # d_margin 0.05, fisher_alpha 2000, fisher_size 2000, batch 64
    paper = {"optimizer": "sgd", "lr": 0.00025, "momentum": 0.9, "nesterov": False, "d_margin": 0.05,
             "entropy_factor": 0.4}
    eta = registry.get("tta.method", "eta").Params()
    eata = registry.get("tta.method", "eata").Params()
    assert {key: getattr(eta, key) for key in paper} == paper
    assert {key: getattr(eata, key) for key in paper} == paper
    assert (eata.fisher_alpha, eata.fisher_size, eata.fisher_batch_size) == (2000.0, 2000, 64)


def test_sar_parameter_defaults_are_the_papers_imagenet_setting():
    sar = registry.get("tta.method", "sar").Params()
    assert (sar.optimizer, sar.lr, sar.momentum, sar.nesterov) == ("sgd", 0.00025, 0.9, False)


def test_nesterov_reaches_sgd_and_needs_momentum():
    weight = torch.nn.Parameter(torch.zeros(2))
    sgd = make_optimizer([weight], EntropyParams(optimizer="sgd", lr=0.1, nesterov=True))
    assert sgd.param_groups[0]["nesterov"] is True and sgd.param_groups[0]["momentum"] == 0.9
    assert make_optimizer([weight], EntropyParams(optimizer="sgd")).param_groups[0]["nesterov"] is False
    with pytest.raises(ValidationError, match="nesterov"):
        EntropyParams(optimizer="sgd", nesterov=True, momentum=0.0)
