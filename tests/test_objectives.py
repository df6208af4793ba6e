import math

import pytest
import torch
from torch import nn

from gankit.config import ObjectiveConfig
from gankit.objectives import (
    LOSSES,
    GradientPenalty,
    R1Penalty,
    build_objective,
    hinge_d,
    least_squares_d,
    minimax_d,
    minimax_g,
    non_saturating_g,
)


def test_loss_closed_forms():
    real, fake = torch.tensor([0.0]), torch.tensor([0.0])
    assert math.isclose(float(minimax_d(real, fake)), 2 * math.log(2), rel_tol=1e-6)
    assert math.isclose(float(minimax_g(fake)), -math.log(2), rel_tol=1e-6)
    assert math.isclose(float(non_saturating_g(fake)), math.log(2), rel_tol=1e-6)
    assert float(least_squares_d(torch.tensor([1.0]), torch.tensor([0.0]))) == 0.0
    assert float(hinge_d(torch.tensor([2.0]), torch.tensor([-3.0]))) == 0.0
    assert float(hinge_d(torch.tensor([0.0]), torch.tensor([0.0]))) == 2.0
    assert set(LOSSES) == {"minimax", "non-saturating", "wasserstein", "least-squares", "hinge"}


def test_gradient_penalty_of_linear_critic():
    """D(x) = w·x has gradient norm ‖w‖ everywhere: GP = λ(‖w‖ - 1)²."""
    d = nn.Linear(4, 1, bias=False)
    with torch.no_grad():
        d.weight.copy_(torch.tensor([[3.0, 0.0, 4.0, 0.0]]))
    critic = lambda x: d(x).squeeze(1)  # noqa: E731
    real, fake = torch.randn(8, 4), torch.randn(8, 4)
    assert math.isclose(float(GradientPenalty(10.0)(critic, real, fake)), 10 * 16, rel_tol=1e-5)
    assert math.isclose(float(R1Penalty(2.0)(critic, real, fake)), 0.5 * 2 * 25, rel_tol=1e-5)


def test_gradient_penalty_one_alpha_per_sample():
    seen = {}

    def critic(x):
        seen["x"] = x
        return x.sum(dim=(1, 2, 3))

    real, fake = torch.zeros(3, 2, 4, 4), torch.ones(3, 2, 4, 4)
    GradientPenalty()(critic, real, fake)
    mixed = seen["x"]
    for i in range(3):  # every pixel of a sample shares one coefficient
        assert torch.allclose(mixed[i], mixed[i].flatten()[0].expand_as(mixed[i]))


def test_weight_clip_after_step():
    d = nn.Linear(3, 1)
    with torch.no_grad():
        d.weight.fill_(5.0)
    objective = build_objective(ObjectiveConfig(loss="wasserstein", weight_clip=0.01))
    objective.after_discriminator_step(d)
    assert d.weight.abs().max() <= 0.01


@pytest.mark.parametrize("loss", sorted(LOSSES))
def test_objective_backprops(loss):
    d = nn.Sequential(nn.Flatten(), nn.Linear(4, 1), nn.Flatten(0))
    objective = build_objective(ObjectiveConfig(loss=loss, gradient_penalty=1.0, r1=1.0))
    real, fake = torch.randn(5, 4), torch.randn(5, 4, requires_grad=True)
    loss_d, stats = objective.discriminator_loss(d, real, fake)
    loss_d.backward()
    assert fake.grad is None  # the D step never reaches into G
    assert all(p.grad is not None for p in d.parameters())
    objective.generator_loss(d, fake, real).backward()
    assert fake.grad is not None and "d_real" in stats
