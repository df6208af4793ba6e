"""Packing, unrolling, DiffAugment/ADA and the stacked-digits data: shapes and oracles."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gankit.augment import DiffAugment, color, cutout, translation
from gankit.config import load_config
from gankit.data.stacked import stacked_code, stacked_digits
from gankit.errors import ConfigError, DataError
from gankit.nets import PackedDiscriminator, architecture_spec, build_discriminator
from gankit.objectives import LOSSES, Objective, build_objective
from gankit.unrolled import UnrolledObjective


def _spec(**model) -> dict:
    cfg = load_config(None, [f"model.{k}={v}" for k, v in model.items()] + ["train.batch_size=48"])
    from gankit.config import to_dict

    return to_dict(cfg)["model"]


def test_packed_mlp_concatenates_consecutive_samples() -> None:
    d = build_discriminator(architecture_spec(_spec(family="mlp", pack=3, d_width=8), [2]))
    assert isinstance(d, PackedDiscriminator)
    assert d.inner.net[0].in_features == 6
    x = torch.randn(12, 2)
    scores = d(x)
    assert scores.shape == (4,)
    # the second pack is samples 3, 4, 5 side by side
    expected = d.inner(torch.cat([x[3], x[4], x[5]])[None])
    torch.testing.assert_close(scores[1:2], expected)


def test_packed_dcgan_stacks_channels() -> None:
    spec = architecture_spec(_spec(family="dcgan", pack=2, d_width=8), [3, 8, 8])
    d = build_discriminator(spec)
    assert d.inner.body[0].in_channels == 6
    assert d(torch.randn(8, 3, 8, 8)).shape == (4,)
    with pytest.raises(DataError, match="not divisible by pack=2"):
        d(torch.randn(5, 3, 8, 8))


def test_pack_must_divide_batch() -> None:
    with pytest.raises(ConfigError, match=r"divisible by model\.pack = 3"):
        load_config(None, ["model.pack=3", "train.batch_size=64"])
    with pytest.raises(ConfigError, match=r"model\.pack"):
        load_config(None, ["model.pack=0"])


def test_unrolled_k0_equals_plain_loss() -> None:
    torch.manual_seed(0)
    d = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1), nn.Flatten(0))
    fake, real = torch.randn(16, 2, requires_grad=True), torch.randn(16, 2)
    plain = Objective(LOSSES["non-saturating"]).generator_loss(d, fake, real)
    unrolled = UnrolledObjective(LOSSES["non-saturating"], steps=0).generator_loss(d, fake, real)
    torch.testing.assert_close(plain, unrolled)


def test_unrolled_matches_a_hand_made_sgd_step_and_leaves_d_alone() -> None:
    torch.manual_seed(0)
    d = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1), nn.Flatten(0))
    before = [p.detach().clone() for p in d.parameters()]
    fake, real = torch.randn(16, 2), torch.randn(16, 2)
    loss = LOSSES["non-saturating"]
    obj = UnrolledObjective(loss, steps=1, lr=0.5, backprop=False)
    got = obj.generator_loss(d, fake, real)
    # oracle: a deep copy of D after one manual SGD step on the D loss
    import copy

    twin = copy.deepcopy(d)
    opt = torch.optim.SGD(twin.parameters(), lr=0.5)
    loss.d(twin(real), twin(fake)).backward()
    opt.step()
    torch.testing.assert_close(got, loss.g(twin(fake)), rtol=1e-5, atol=1e-6)
    for p, q in zip(d.parameters(), before, strict=True):
        assert torch.equal(p.detach(), q)


def test_unrolled_backprop_gives_generator_a_second_order_gradient() -> None:
    torch.manual_seed(0)
    d = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1), nn.Flatten(0))
    real = torch.randn(16, 2)
    grads = []
    for backprop in (False, True):
        fake = torch.randn(16, 2, generator=torch.Generator().manual_seed(1)).requires_grad_()
        obj = UnrolledObjective(LOSSES["non-saturating"], steps=3, lr=1.0, backprop=backprop)
        obj.generator_loss(d, fake, real).backward()
        grads.append(fake.grad)
    assert not torch.allclose(grads[0], grads[1])


def test_build_objective_wires_unroll_and_augment() -> None:
    cfg = load_config(None, ["objective.unroll_steps=2", "objective.augment=color,cutout"])
    obj = build_objective(cfg.objective)
    assert isinstance(obj, UnrolledObjective) and obj.steps == 2
    assert isinstance(obj.augment, DiffAugment) and obj.augment.ops == ["color", "cutout"]
    with pytest.raises(ConfigError, match="unknown policy 'blur'"):
        load_config(None, ["objective.augment=blur"])


@pytest.mark.parametrize("op", [color, translation, cutout])
def test_diffaugment_ops_are_differentiable(op) -> None:
    x = torch.randn(4, 3, 8, 8, requires_grad=True)
    op(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_translation_moves_whole_pixels_and_cutout_zeroes_a_square() -> None:
    torch.manual_seed(0)
    x = torch.arange(64.0).view(1, 1, 8, 8).repeat(200, 1, 1, 1) + 1
    moved = translation(x)
    for img in moved[:20, 0]:
        nz = img[img != 0]
        assert set(nz.tolist()) <= set(range(1, 65))
    holes = (cutout(x) == 0).flatten(1).sum(1)
    assert torch.all(holes == 16)  # a 4×4 square of an 8×8 image


def test_diffaugment_is_identically_distributed_for_real_and_fake() -> None:
    aug = DiffAugment("color,translation,cutout")
    x = torch.zeros(4000, 1, 8, 8)
    torch.manual_seed(1)
    a = aug(x.clone())
    torch.manual_seed(2)
    b = aug(x.clone())
    # same input, independent draws: matching moments (tolerance ≈ 5 s.e.)
    assert abs(a.mean() - b.mean()) < 0.02
    assert abs(a.std() - b.std()) < 0.02


def test_ada_p_moves_the_right_way_and_round_trips() -> None:
    aug = DiffAugment("color", p=0.5, target=0.6, speed=1000)
    aug.observe(torch.ones(100))  # D says "real" to every real image: overfitting → more aug
    assert aug.p == pytest.approx(0.6)
    aug.observe(-torch.ones(100))
    aug.observe(-torch.ones(100))
    assert aug.p == pytest.approx(0.4)
    state = aug.state_dict()
    other = DiffAugment("color", p=0.0, target=0.6, speed=1000)
    other.load_state_dict(state)
    assert other.p == pytest.approx(0.4)
    torch.manual_seed(0)
    x = torch.zeros(1000, 1, 8, 8)
    changed = (DiffAugment("color", p=0.3)(x) != 0).flatten(1).any(1).float().mean()
    assert 0.25 < changed < 0.35


def test_objective_feeds_real_scores_to_ada() -> None:
    aug = DiffAugment("translation", p=0.5, target=0.6, speed=100)
    obj = Objective(LOSSES["non-saturating"], augment=aug)

    def d(x):
        return torch.full((x.shape[0],), 5.0)

    obj.discriminator_loss(d, torch.zeros(10, 1, 8, 8), torch.zeros(10, 1, 8, 8))
    assert aug.p == pytest.approx(0.6)


def test_stacked_digits_are_three_independent_digits() -> None:
    x, y = stacked_digits(3000, seed=0)
    assert x.shape == (3000, 3, 8, 8) and y.shape == (3000, 3)
    assert x.min() >= -1 and x.max() <= 1
    codes = stacked_code(y)
    # 3,000 draws of 1,000 equally likely triples: E[distinct] = 1000 (1 − 0.999^3000) = 950.2,
    # s.d. ≈ 6.3 (occupancy closed form); wrong codes or dependent channels move it
    assert abs(len(torch.unique(codes)) - 1000 * (1 - 0.999**3000)) < 30
    assert torch.equal(stacked_code(torch.tensor([[1, 2, 3], [9, 0, 9]])), torch.tensor([123, 909]))
    # independent channels: the labels of channel 0 and 1 are uncorrelated
    corr = torch.corrcoef(y.T.float())
    assert corr[0, 1].abs() < 0.08
    cfg = load_config(None, ["data.name=stacked-digits", "data.n_samples=100"])
    from gankit.data.source import load_dataset

    ds = load_dataset(cfg.data)
    assert ds.shape == [3, 8, 8] and ds.labels is not None


def test_categorical_latent_feeds_a_uniform_one_hot_code() -> None:
    from gankit.nets import CategoricalLatent, build_generator

    spec = architecture_spec(_spec(family="mlp", latent_dim=6, latent_categories=4, g_width=8), [2])
    g = build_generator(spec)
    assert isinstance(g, CategoricalLatent)
    seen = []
    g.inner.register_forward_pre_hook(lambda _m, args: seen.append(args[0]))
    z = torch.randn(4000, 6)
    assert g(z).shape == (4000, 2)
    code = seen[0][:, :4]
    assert torch.equal(code.sum(1), torch.ones(4000))
    assert torch.equal(seen[0][:, 4:], z[:, 4:])
    share = code.mean(0)  # argmax of iid Gaussians is uniform: 0.25 ± 0.007 each
    assert torch.all((share - 0.25).abs() < 0.03)
    with pytest.raises(ConfigError, match="latent_categories"):
        build_generator({**spec, "latent_categories": 7})


def test_train_with_every_option_then_reload_the_generator(tmp_path) -> None:
    from gankit.engine import train
    from gankit.generator import load_generator
    from tests.conftest import TINY_DIGITS

    cfg = load_config(
        None,
        [
            *TINY_DIGITS,
            "model.pack=2",
            "model.latent_categories=4",
            "objective.unroll_steps=1",
            "objective.augment=color,translation,cutout",
            "objective.ada_target=0.6",
            "train.ema=0.9",
        ],
    )
    run = train(cfg, tmp_path / "run")
    gen = load_generator(run.path)
    assert gen.sample(4, seed=0).shape == (4, 1, 8, 8)
