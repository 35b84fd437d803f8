"""Configuration shared by TTA methods that train every parameter (rmt, upl)."""

from __future__ import annotations

from torch import nn

from infobench.tasks.tta.common import bn_modules, use_batch_stats


def train_all_parameters(model: nn.Module, method: str) -> list[nn.Parameter]:
    """Every parameter of ``model`` requires gradients; BN layers (if any) use test-batch statistics.

    BN layers are configured as in Tent (training mode, no running statistics kept); the rest
    of the model is in eval mode. A model without BN is simply put in eval mode. Returns the
    parameters.
    """
    if bn_modules(model):
        use_batch_stats(model, method)
    else:
        model.eval()
    model.requires_grad_(True)
    return list(model.parameters())
