"""ProGAN (Karras et al. 2018): schedule, equalised LR, pixel norm, losses by hand, fade-in,
resume in the middle of a fade, loading and errors."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gankit import registry
from gankit.config import load_config
from gankit.engine import resume, train
from gankit.engine.checkpoint import load_state
from gankit.errors import ConfigError
from gankit.models.progan import (
    _AtStage,
    build,
    critic_loss,
    fade_real,
    load_progan,
    schedule,
    schedule_length,
)
from gankit.nets.progan import EqualizedConv2d, EqualizedLinear, build_networks, pixel_norm
from gankit.objectives import GradientPenalty

RECIPE = "configs/digits-progan.yaml"
TINY = [
    "model.latent_dim=8",
    "model.widths=[8,8]",
    "model.phase_steps=2",
    "model.fade_steps=4",
    "train.batch_size=8",
    "train.steps=8",
    "train.ema=0.9",
    "train.progress=false",
    "train.log_every=1",
    "train.checkpoint_every=100",
    "train.sample_every=100",
]


def tiny(*extra):
    return load_config(RECIPE, [*TINY, *extra])


def test_schedule_grows_with_fades():
    # 3 resolutions, 2 stable steps per phase, 4 fade steps
    got = [schedule(t, 3, 2, 4) for t in range(16)]
    assert got[:2] == [(0, 1.0)] * 2
    assert got[2:6] == [(1, 0.0), (1, 0.25), (1, 0.5), (1, 0.75)]
    assert got[6:8] == [(1, 1.0)] * 2
    assert got[8:12] == [(2, 0.0), (2, 0.25), (2, 0.5), (2, 0.75)]
    assert got[12:] == [(2, 1.0)] * 4  # the last resolution stays
    assert schedule_length(3, 2, 4) == 14
    assert schedule(3, 3, 2, 0) == (1, 1.0) and schedule(4, 3, 2, 0) == (2, 1.0)  # no fade


def test_equalized_layers_scale_weights_at_run_time():
    conv = EqualizedConv2d(3, 2, 3, padding=1)
    assert conv.scale == pytest.approx(math.sqrt(2 / 27))  # He's constant, fan_in = 3·3·3
    x = torch.randn(1, 3, 4, 4)
    assert torch.allclose(conv(x), F.conv2d(x, conv.weight * conv.scale, conv.bias, padding=1))
    lin = EqualizedLinear(16, 4, gain=1.0)
    assert lin.scale == pytest.approx(0.25)
    with torch.no_grad():
        lin.weight.fill_(2.0)
    assert torch.allclose(lin(torch.ones(1, 16)), torch.full((1, 4), 16 * 2.0 * 0.25))


def test_pixel_norm_divides_by_the_rms_over_channels():
    x = torch.tensor([[3.0, 4.0]])
    expected = torch.tensor([[3.0, 4.0]]) / math.sqrt(12.5 + 1e-8)
    assert torch.allclose(pixel_norm(x), expected)
    img = torch.tensor([[[[1.0]], [[-1.0]], [[2.0]]]])  # [1, 3, 1, 1]: one pixel, 3 channels
    assert torch.allclose(pixel_norm(img).view(-1), torch.tensor([1.0, -1.0, 2.0]) / math.sqrt(2))


def test_critic_loss_and_gradient_penalty_match_hand_values():
    real, fake = torch.tensor([1.0, 3.0]), torch.tensor([0.0, -2.0])
    # E[D(G(z))] - E[D(x)] + 0.001 E[D(x)²] = -1 - 2 + 0.001 · 5
    assert critic_loss(real, fake, 0.001).item() == pytest.approx(-2.995)

    class Linear(nn.Module):  # D(x) = 3 x1 + 4 x2: ‖∇D‖ = 5 everywhere
        def forward(self, x, stage, alpha):
            return x.view(len(x), -1) @ torch.tensor([3.0, 4.0])

    x = torch.randn(4, 2)
    penalty = GradientPenalty(10.0)(_AtStage(Linear(), 1, 0.5), x, x + 1)
    assert penalty.item() == pytest.approx(10.0 * (5 - 1) ** 2, rel=1e-5)


def test_fade_in_starts_from_the_previous_resolution():
    arch = {
        "latent_dim": 8,
        "resolutions": [4, 8, 16],
        "widths": [8, 8, 4],
        "channels": 1,
        "minibatch_std_group": 4,
    }
    g, d = build_networks(arch)
    z = torch.randn(4, 8)
    up = F.interpolate(g(z, 1, 1.0), scale_factor=2, mode="nearest")
    assert torch.allclose(g(z, 2, 0.0), up, atol=1e-6)  # alpha 0: the old image, upsampled
    assert g(z, 2, 0.5).shape == (4, 1, 16, 16)
    x = torch.randn(4, 1, 16, 16)
    assert torch.allclose(d(x, 2, 0.0), d(F.avg_pool2d(x, 2), 1, 1.0), atol=1e-5)
    low = F.interpolate(F.avg_pool2d(x, 2), scale_factor=2, mode="nearest")
    assert torch.allclose(fade_real(x, 0.0), low) and torch.equal(fade_real(x, 1.0), x)


def test_resume_in_the_middle_of_a_fade_is_bit_identical(tmp_path):
    full = train(tiny(), tmp_path / "full")
    part = train(tiny("train.steps=4"), tmp_path / "part")  # stops inside the 4 -> 8 px fade
    assert part.history[-1]["alpha"] == 0.25 and part.history[-1]["resolution"] == 8
    resumed = resume(part.path, ["train.steps=8"])
    assert full.step == resumed.step == 8
    a, b = load_state(full.path), load_state(resumed.path)
    for net in ("g", "d"):
        sa, sb = a["networks"][net], b["networks"][net]
        assert all(torch.equal(sa[k], sb[k]) for k in sa), net
    ema_a, ema_b = a["callbacks"], b["callbacks"]
    for key in ema_a:
        for name, value in ema_a[key].items():
            if torch.is_tensor(value):
                assert torch.equal(value, ema_b[key][name])
    assert [h["alpha"] for h in full.history] == [1.0, 1.0, 0.0, 0.25, 0.5, 0.75, 1.0, 1.0]
    assert [h["loss_d"] for h in full.history[4:]] == [h["loss_d"] for h in resumed.history[4:]]

    # the model directory samples at the last resolution through the generator API
    gen = load_progan(full.path)
    images = gen.sample(5, seed=0)
    assert images.shape == (5, 1, 8, 8) and images.abs().max() <= 1
    assert torch.equal(images, registry.load_sampler(full.path).sample(5, seed=0))
    assert gen.spec["stage"] == 1 and gen.spec["alpha"] == 1.0
    from gankit.serve.models import LoadOptions

    served = registry.kind(gen.spec["kind"]).serving()(full.path, gen.spec, LoadOptions())
    z = served.latent(3, seed=0, truncation=None)
    assert served.decode(z, None).shape[0] == 3  # the generate/latent/decode routes' model


def test_32_px_data_is_resized_and_grown():
    cfg = load_config("configs/digits32-progan.yaml", ["model.widths=[8,8,4,4]"])
    model, provider = build(cfg)
    assert provider.batch(0).x.shape[-1] == 32 and model.dataset.shape == [1, 32, 32]
    g = model.networks["g"]
    assert g(torch.randn(2, cfg.model.latent_dim), 3, 0.5).shape == (2, 1, 32, 32)


def test_config_errors():
    with pytest.raises(ConfigError, match=r"must double from 4"):
        build(tiny("model.resolutions=[4,16]", "model.widths=[8,8]"))
    with pytest.raises(ConfigError, match=r"one channel count.*per resolution"):
        build(tiny("model.widths=[8]"))
    with pytest.raises(ConfigError, match=r"minibatch_std_group"):
        build(tiny("model.minibatch_std_group=9"))
    with pytest.raises(ConfigError, match=r"needs square images"):
        build(tiny("data.name=ring"))


def test_cpu_budget_stops_a_run():
    from gankit.bench.progan import CPUBudget

    class Trainer:
        should_stop = False

    budget, trainer = CPUBudget(0.0), Trainer()
    budget.on_start(trainer)
    budget.on_step(trainer, {})
    assert trainer.should_stop
    patient = CPUBudget(1e6)
    patient.on_start(trainer := Trainer())
    patient.on_step(trainer, {})
    assert not trainer.should_stop
