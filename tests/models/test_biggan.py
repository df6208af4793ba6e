"""BigGAN (small): orthogonal regularisation and hinge loss by hand, hierarchical z, truncation,
a recipe trains and resumes bit-identically, bad configs are refused."""

from pathlib import Path

import pytest
import torch
from torch import nn

import gankit
from gankit.config import load_config
from gankit.engine import resume, train
from gankit.engine.checkpoint import load_state
from gankit.errors import ConfigError
from gankit.generator import normal_latent
from gankit.models.biggan import OrthogonalRegularised
from gankit.nets.biggan import (
    BigGANGenerator,
    LinearConditionalBatchNorm,
    SelfAttention,
    build_biggan_discriminator,
    orthogonal_penalty,
    split_sizes,
)
from gankit.objectives import LOSSES

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
TINY = [
    "model.latent_dim=8",
    "model.g_width=8",
    "model.d_width=8",
    "model.embed_dim=4",
    "train.batch_size=16",
    "train.steps=6",
    "train.progress=false",
    "train.log_every=2",
    "train.checkpoint_every=3",
    "train.sample_every=3",
]


def _tiny(*extra: str):
    return load_config(CONFIGS / "digits-biggan.yaml", [*TINY, *extra])


# --- the pieces, against values computed by hand -----------------------------------------------
def test_orthogonal_penalty_by_hand():
    square = nn.Linear(2, 2, bias=False)  # W Wᵀ = [[5, 11], [11, 25]]: off-diagonal 2 × 11²
    tall = nn.Conv2d(1, 3, (1, 2), bias=False)  # rows [1,0], [0,1], [1,1]: WWᵀ off-diag 0, 1, 1
    with torch.no_grad():
        square.weight.copy_(torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
        tall.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]).view(3, 1, 1, 2))
    assert orthogonal_penalty(square).item() == pytest.approx(242.0)
    assert orthogonal_penalty(tall).item() == pytest.approx(4.0)
    both = nn.ModuleList([square, tall])
    assert orthogonal_penalty(both).item() == pytest.approx(246.0)
    assert orthogonal_penalty(both, skip=(square.weight,)).item() == pytest.approx(4.0)
    with torch.no_grad():  # orthogonal rows of any norm cost nothing
        square.weight.copy_(torch.tensor([[3.0, 0.0], [0.0, -0.5]]))
    assert orthogonal_penalty(square).item() == 0.0


def test_hinge_loss_by_hand():
    hinge = LOSSES["hinge"]
    real, fake = torch.tensor([0.5, 2.0]), torch.tensor([-2.0, 0.5])
    # D: mean(relu(1 - real)) + mean(relu(1 + fake)) = (0.5 + 0)/2 + (0 + 1.5)/2
    assert hinge.d(real, fake).item() == pytest.approx(1.0)
    assert hinge.g(fake).item() == pytest.approx(0.75)  # G: -mean D(G(z))


def test_generator_loss_adds_beta_times_the_penalty():
    class Inner:
        def generator_loss(self, d, fake, labels):
            return torch.tensor(0.75)

    g = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        g.weight.copy_(torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
    loss = OrthogonalRegularised(Inner(), g, 0.5).generator_loss(None, None, None)
    assert loss.item() == pytest.approx(0.75 + 0.5 * 242.0)
    assert OrthogonalRegularised(Inner(), g, 0.0).generator_loss(None, None, None).item() == 0.75


def test_linear_conditional_batch_norm_by_hand():
    cbn = LinearConditionalBatchNorm(1, 2)
    with torch.no_grad():
        cbn.gain.weight.copy_(torch.tensor([[1.0, 0.0]]))  # γ(c) = c₀
        cbn.bias.weight.copy_(torch.tensor([[0.0, 2.0]]))  # β(c) = 2 c₁
    x = torch.tensor([1.0, 3.0]).view(2, 1, 1, 1)  # x̂ = [-1, 1]
    cond = torch.tensor([[1.0, 0.5], [0.0, -1.0]])
    out = cbn(x, cond).flatten()  # x̂ (1 + γ) + β
    assert torch.allclose(out, torch.tensor([-2.0 + 1.0, 1.0 - 2.0]), atol=1e-4)


# --- hierarchical latent, attention, truncation ------------------------------------------------
def test_hierarchical_latent_split():
    assert split_sizes(64, 2) == [32, 32]
    assert split_sizes(10, 4) == [4, 2, 2, 2]
    g = BigGANGenerator(20, 3, 32, 5, width=4, embed_dim=6, attention=16)
    assert g.splits == [5, 5, 5, 5]  # 4×4 map + three up-blocks
    assert g.project.in_features == 5
    assert [b.bn1.gain.in_features for b in g.blocks] == [5 + 6] * 3  # zᵢ ⊕ shared embedding
    assert isinstance(g.attention, SelfAttention) and g.attention_after == 1  # after 8 → 16 px
    z, y = torch.randn(3, 20), torch.tensor([0, 4, 2])
    out = g.eval()(z, y)
    assert out.shape == (3, 3, 32, 32)
    changed = z.clone()
    changed[:, 15:] += 1.0  # only the last block's chunk
    assert not torch.allclose(g(changed, y), out)
    with pytest.raises(ConfigError, match="latent_dim"):
        split_sizes(3, 4)


def test_discriminator_has_attention_and_projection():
    spec = {
        "family": "biggan",
        "data_shape": [3, 32, 32],
        "d_width": 4,
        "num_classes": 5,
        "attention": 16,
    }
    d = build_biggan_discriminator(spec)
    assert any(isinstance(m, SelfAttention) for m in d.modules())
    assert hasattr(d.embed, "weight") and any("parametrizations" in n for n, _ in d.named_modules())
    scores, logits = d(torch.randn(2, 3, 32, 32), torch.tensor([1, 2]))
    assert scores.shape == (2,) and logits is None


def test_truncation_bounds():
    z = normal_latent(2000, 16, seed=0, truncation=0.5)
    assert z.abs().max() <= 0.5 and z.std() > 0.2  # redrawn, not clipped to the bound
    assert torch.equal(z, normal_latent(2000, 16, seed=0, truncation=0.5))


# --- the recipe on the engine --------------------------------------------------------------------
def test_recipe_trains_and_samples_by_label(tmp_path):
    cfg = load_config(CONFIGS / "digits-biggan.yaml")
    assert (cfg.model.family, cfg.objective.loss, cfg.model.spectral_norm) == (
        "biggan",
        "hinge",
        True,
    )
    assert cfg.train.ema > 0 and cfg.model.ortho_reg > 0
    run = train(_tiny("train.steps=3"), tmp_path / "run")
    gen = gankit.load_generator(run.path)
    assert gen.num_classes == 10 and gen.spec["architecture"]["family"] == "biggan"
    assert gen.spec["ema"]
    x = gen.sample(5, seed=1, labels=3, truncation=1.0)
    assert x.shape == (5, 1, 8, 8) and x.abs().max() <= 1
    z = gen.sample_latent(5, 1, 1.0)
    assert torch.equal(x, gen.decode(z, 3))
    assert gen.class_grid(per_class=2, seed=0).shape == (20, 1, 8, 8)
    pytest.importorskip("onnxruntime")
    from gankit.export import export_model, ort_session

    # spectral norm is baked into plain weights for ONNX (no operator for its power iteration)
    report = export_model(run.path, tmp_path / "onnx", exporter="torchscript")
    assert report["parity_max_abs"] <= 1e-4
    labels = torch.tensor([0, 3, 3, 9, 1])
    got = ort_session(tmp_path / "onnx" / "model.onnx").run(
        None, {"z": z.numpy(), "labels": labels.numpy()}
    )[0]
    assert torch.allclose(torch.from_numpy(got), gen.decode(z, labels), atol=1e-4)


def test_resume_is_bit_identical(tmp_path):
    full = train(_tiny(), tmp_path / "full")
    part = train(_tiny("train.steps=3"), tmp_path / "part")
    resumed = resume(part.path, ["train.steps=6"])
    a, b = load_state(full.path), load_state(resumed.path)
    for net in ("g", "d"):
        na, nb = a["networks"][net], b["networks"][net]
        assert all(torch.equal(na[k], nb[k]) for k in na)
    sample = [gankit.load_generator(r.path).sample(4, seed=1, labels=2) for r in (full, resumed)]
    assert sample[0].equal(sample[1])


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["model.attention=16"], "model.attention"),
        (["model.latent_dim=1"], "model.latent_dim"),
        (["model.ortho_reg=-1.0"], "model.ortho_reg"),
        (["model.conditioning=both"], "model.conditioning"),
        (["model.num_classes=5"], "set model.num_classes = 10"),
    ],
)
def test_config_errors(tmp_path, extra, message):
    with pytest.raises(ConfigError, match=message):
        train(_tiny(*extra), tmp_path / "run")
