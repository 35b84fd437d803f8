"""Wasserstein dependency measure: a Lipschitz critic's gap between joint and product of marginals."""

from __future__ import annotations

from pydantic import Field

from infobench.mi.critic import CriticParams, VariationalBound, mlp
from infobench.registry import register


@register("mi.estimator", "wdm")
class WDM(VariationalBound):
    """Wasserstein dependency measure: sup over 1-Lipschitz f of E_P f - E_{P_X P_Y} f (gradient penalty).

    Ozair, Lynch, Bengio, van den Oord, Levine & Sermanet, "Wasserstein Dependency Measure for
    Representation Learning", NeurIPS 2019, eq. (4): W(P_XY, P_X (x) P_Y) by Kantorovich-
    Rubinstein duality, the Lipschitz constraint enforced by the gradient penalty of Gulrajani
    et al. (2017), lambda * E[(|grad f| - 1)_+^2] on the joint pairs. It is a
    dependency measure in the units of the (standardised) inputs, not an estimate of or a bound
    on MI in nats (``is_bound`` is False): it is 0 for independent pairs and grows with
    dependence, and only that is promised.

    Documented choices: a concatenation critic f([x, y]) (the separable one is not Lipschitz
    in a useful way), one-sided penalty on the joint pairs, product-of-marginals pairs by rolling
    y by one place in the batch; held-out evaluation and early stopping of ``infobench.mi.critic``.
    """

    is_bound = False

    class Params(CriticParams):
        penalty: float = Field(10.0, ge=0, description="gradient-penalty weight lambda (Gulrajani et al.: 10)")

    def critic_net(self, dx: int, dy: int):
        import torch
        from torch import nn

        p = self.params

        class Concat(nn.Module):
            def __init__(self):
                super().__init__()
                self.f = mlp(dx + dy, p.hidden, p.layers, 1)

            def forward(self, xb, yb):
                shuffled = torch.roll(yb, 1, dims=0)  # row i pairs x_i with y_(i-1)
                joint = self.f(torch.cat([xb, yb], 1))[:, 0]
                product = self.f(torch.cat([xb, shuffled], 1))[:, 0]
                return torch.stack([joint, product], 1)  # (b, 2): f on joint, f on product pairs

        torch.manual_seed(p.random_state)
        return Concat()

    def value(self, scores, xb, yb, critic):
        return scores[:, 0].mean() - scores[:, 1].mean()

    def objective(self, scores, xb, yb, critic):
        import torch

        z = torch.cat([xb, yb], 1).detach().requires_grad_(True)
        grad = torch.autograd.grad(critic.f(z).sum(), z, create_graph=True)[0]
        excess = torch.clamp(grad.norm(dim=1) - 1, min=0)
        return self.value(scores, xb, yb, critic) - self.params.penalty * (excess**2).mean()
