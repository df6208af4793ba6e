"""VAE-GAN (Larsen et al. 2016): the losses and the gamma-weighted gradients by hand, the recipe,
resume, and the saved model as a VAE directory."""

import json
import math

import pytest
import torch

from gankit import registry
from gankit.config import load_config
from gankit.data.images import load_digits
from gankit.engine import resume, train
from gankit.engine.checkpoint import load_state
from gankit.errors import ConfigError
from gankit.models.vae import LoadedVAE, build_networks, gaussian_kl, load_vae
from gankit.models.vaegan import (
    FeatureDiscriminator,
    discriminator_loss,
    feature_nll,
    scale_grad,
    vae_losses,
)
from gankit.objectives import LOSSES

RECIPE = "configs/digits-vaegan.yaml"
TINY = [
    "model.latent_dim=3",
    "model.widths=[8]",
    "model.d_widths=[8, 8]",
    "train.batch_size=16",
    "train.steps=6",
    "train.progress=false",
    "train.log_every=2",
    "train.checkpoint_every=3",
    "train.sample_every=3",
]


def vaegan_config(*extra: str):
    return load_config(RECIPE, [*TINY, *extra])


def softplus(v: float) -> float:
    return math.log1p(math.exp(v))


def tiny_d() -> FeatureDiscriminator:
    """data [2], one hidden unit (its leaky ReLU is the feature), then a head."""
    d = FeatureDiscriminator([2], [1], 0.0, 1)
    with torch.no_grad():
        d.blocks[0][0].weight.copy_(torch.tensor([[1.0, -2.0]]))
        d.blocks[0][0].bias.copy_(torch.tensor([0.5]))
        d.head.weight.copy_(torch.tensor([[3.0]]))
        d.head.bias.copy_(torch.tensor([-1.0]))
    return d


def leaky(v: float) -> float:
    return v if v > 0 else 0.2 * v


def test_discriminator_and_feature_losses_by_hand():
    d = tiny_d()
    x, x_rec, x_p = (
        torch.tensor([[1.0, 0.0]]),
        torch.tensor([[0.0, 1.0]]),
        torch.tensor([[2.0, 0.5]]),
    )
    f = [leaky(1.0 + 0.5), leaky(-2.0 + 0.5), leaky(2.0 - 1.0 + 0.5)]  # x, x~, x_p
    s = [3.0 * v - 1.0 for v in f]
    loss_d, real, fake = discriminator_loss(LOSSES["non-saturating"], d, x, x_rec, x_p)
    assert real.item() == pytest.approx(s[0]) and fake.flatten().tolist() == pytest.approx(s[1:])
    want = softplus(-s[0]) + (softplus(s[1]) + softplus(s[2])) / 2
    assert loss_d.item() == pytest.approx(want, abs=1e-6)
    # Gaussian observation model in D's feature space, sigma = 2
    assert feature_nll(d, x, x_rec, 2.0).item() == pytest.approx(0.5 * ((f[0] - f[1]) / 2) ** 2)


def test_scale_grad_keeps_values_and_scales_gradients():
    t = torch.tensor([1.5, -2.0], requires_grad=True)
    out = scale_grad(t, 0.25)
    assert torch.equal(out, t)
    (out * torch.tensor([2.0, 3.0])).sum().backward()
    assert t.grad.tolist() == pytest.approx([0.5, 0.75])


def test_encoder_and_decoder_get_the_papers_gradients():
    """grad_enc = d(L_prior + L_llike), grad_dec = d(gamma L_llike + L_GAN), from one loss."""
    torch.manual_seed(0)
    arch = {
        "latent_dim": 2,
        "widths": [4],
        "activation": "tanh",
        "likelihood": "gaussian",
        "decoder_std": 1.0,
        "shape": [3],
    }
    enc, dec = build_networks(arch)
    d = FeatureDiscriminator([3], [5, 4], 0.0, 1)
    x, eps, z_p = torch.randn(4, 3), torch.randn(4, 2), torch.randn(4, 2)
    gamma, std, loss = 0.3, 1.5, LOSSES["non-saturating"]
    total, terms = vae_losses(loss, enc, dec, d, x, eps, dec(z_p), gamma, std)
    got = torch.autograd.grad(total, [*enc.parameters(), *dec.parameters()])
    # the reference: each term differentiated by itself
    mu, logvar = enc(x)
    z = mu + torch.exp(0.5 * logvar) * eps
    kl = gaussian_kl(mu, logvar).mean()
    llike = feature_nll(d, x, dec(z), std).mean()
    gan = loss.g(d(torch.cat([dec(z), dec(z_p)]))[0])
    assert terms["kl"].item() == pytest.approx(kl.item(), abs=1e-6)
    assert terms["feature_nll"].item() == pytest.approx(llike.item(), abs=1e-6)
    assert terms["gan"].item() == pytest.approx(gan.item(), abs=1e-6)
    enc_want = torch.autograd.grad(kl + llike, list(enc.parameters()), retain_graph=True)
    dec_want = torch.autograd.grad(gamma * llike + gan, list(dec.parameters()))
    for a, b in zip(got, [*enc_want, *dec_want], strict=True):
        assert torch.allclose(a, b, atol=1e-5)


def test_recipe_trains_resumes_and_saves_a_vae_directory(tmp_path):
    full = train(vaegan_config(), tmp_path / "full")
    part = train(vaegan_config("train.steps=3"), tmp_path / "part")
    resumed = resume(part.path, ["train.steps=6"])
    assert full.step == resumed.step == 6
    a, b = load_state(full.path), load_state(resumed.path)
    for net in ("enc", "dec", "d"):
        sa, sb = a["networks"][net], b["networks"][net]
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert torch.equal(a["model"]["noise"], b["model"]["noise"])
    assert {"loss_d", "loss_vae", "kl", "feature_nll", "gan"} <= set(full.history[-1])
    loaded = load_vae(full.path)  # a VAE directory: loads, samples, encodes like the VAE
    assert isinstance(registry.load_encoder(full.path), LoadedVAE)
    x = load_digits("test")[0][:5]
    assert loaded.encode(x).shape == (5, 3) and loaded.reconstruct(x).shape == x.shape
    assert loaded.sample(4, seed=0).abs().max() <= 1.0
    spec = json.loads((full.path / "model.json").read_text())
    assert spec["vaegan"]["gamma"] == 0.5 and spec["config"]["model"]["family"] == "vaegan"


def test_config_errors_name_the_key(tmp_path):
    with pytest.raises(ConfigError, match=r"model\.feature_layer"):
        train(vaegan_config("model.feature_layer=3"), tmp_path / "a")
    with pytest.raises(ConfigError, match=r"model\.gamma"):
        train(vaegan_config("model.gamma=0"), tmp_path / "b")
    with pytest.raises(ConfigError, match=r"objective\.r1"):
        train(vaegan_config("objective.r1=1"), tmp_path / "c")
