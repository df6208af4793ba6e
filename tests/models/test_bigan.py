"""BiGAN / ALI (Donahue et al. 2017; Dumoulin et al. 2017): the losses by hand, the recipe,
resume, the model directory, serving."""

import json
import math

import pytest
import torch

from gankit import registry
from gankit.config import load_config
from gankit.data.images import load_digits
from gankit.engine import resume, train
from gankit.engine.checkpoint import load_state
from gankit.errors import CheckpointError, ConfigError
from gankit.modeldir import write_spec
from gankit.models.bigan import (
    bigan_losses,
    build_networks,
    encode_sample,
    load_bigan,
    reconstruction_loss,
)
from gankit.objectives import LOSSES

RECIPE = "configs/digits-bigan.yaml"
TINY = [
    "model.latent_dim=3",
    "model.g_widths=[8]",
    "model.e_widths=[8]",
    "model.d_widths=[8]",
    "train.batch_size=16",
    "train.steps=6",
    "train.progress=false",
    "train.log_every=2",
    "train.checkpoint_every=3",
    "train.sample_every=3",
]


def bigan_config(*extra: str):
    return load_config(RECIPE, [*TINY, *extra])


def softplus(v: float) -> float:
    return math.log1p(math.exp(v))


def tiny_nets():
    """latent 1, data [2], no hidden layers: D(x, z) = w . [x, z] + b, G(z) = a z + c."""
    arch = {
        "latent_dim": 1,
        "g_widths": [],
        "e_widths": [],
        "d_widths": [],
        "activation": "relu",
        "d_dropout": 0.0,
        "stochastic_encoder": True,
        "output": "none",
        "shape": [2],
    }
    enc, g, d = build_networks(arch)
    with torch.no_grad():
        d.net[0].weight.copy_(torch.tensor([[1.0, -2.0, 0.5]]))
        d.net[0].bias.copy_(torch.tensor([0.25]))
        g.net[0].weight.copy_(torch.tensor([[2.0], [-1.0]]))
        g.net[0].bias.copy_(torch.tensor([0.0, 0.5]))
        enc.net[0].weight.copy_(torch.tensor([[0.5, -1.0], [0.2, 0.0]]))
        enc.net[0].bias.copy_(torch.tensor([0.1, -0.4]))
    return enc, g, d


@pytest.mark.parametrize("name", ["non-saturating", "least-squares"])
def test_losses_match_hand_computed_values(name):
    enc, g, d = tiny_nets()
    x, eps, z = torch.tensor([[1.0, 0.5]]), torch.tensor([[0.3]]), torch.tensor([[-0.6]])
    mu, logvar = 0.5 * 1.0 - 1.0 * 0.5 + 0.1, 0.2 * 1.0 - 0.4
    z_enc = mu + math.exp(0.5 * logvar) * 0.3
    assert encode_sample(enc, x, eps, True).item() == pytest.approx(z_enc, abs=1e-6)
    assert encode_sample(enc, x, eps, False).item() == pytest.approx(mu, abs=1e-6)
    x_gen = [2.0 * -0.6, -1.0 * -0.6 + 0.5]
    s_enc = 1.0 * 1.0 - 2.0 * 0.5 + 0.5 * z_enc + 0.25  # D(x, E(x))
    s_gen = 1.0 * x_gen[0] - 2.0 * x_gen[1] + 0.5 * -0.6 + 0.25  # D(G(z), z)
    if name == "non-saturating":  # -log s(D(x, E x)) - log(1 - s(D(G z, z))) and inverted
        want_d = softplus(-s_enc) + softplus(s_gen)
        want_ge = softplus(-s_gen) + softplus(s_enc)
    else:
        want_d = 0.5 * (s_enc - 1) ** 2 + 0.5 * s_gen**2
        want_ge = 0.5 * (s_gen - 1) ** 2 + 0.5 * s_enc**2
    z_e = encode_sample(enc, x, eps, True)
    loss_d, loss_ge, enc_s, gen_s = bigan_losses(LOSSES[name], d, x, z_e, g(z), z)
    assert enc_s.item() == pytest.approx(s_enc, abs=1e-6)
    assert gen_s.item() == pytest.approx(s_gen, abs=1e-6)
    assert loss_d.item() == pytest.approx(want_d, abs=1e-6)
    assert loss_ge.item() == pytest.approx(want_ge, abs=1e-6)
    # ALICE's term: ||G(E(x)) - x||^2 = (2 z_e - 1)^2 + (-z_e + 0.5 - 0.5)^2
    want_rec = (2 * z_enc - 1.0) ** 2 + (-z_enc + 0.5 - 0.5) ** 2
    assert reconstruction_loss(g, x, z_e).item() == pytest.approx(want_rec, abs=1e-6)


def test_recipe_trains_and_resumes_bit_identically(tmp_path):
    full = train(bigan_config("model.reconstruction_weight=0.1"), tmp_path / "full")
    part = train(bigan_config("model.reconstruction_weight=0.1", "train.steps=3"), tmp_path / "p")
    resumed = resume(part.path, ["train.steps=6"])
    assert full.step == resumed.step == 6
    a, b = load_state(full.path), load_state(resumed.path)
    for net in ("enc", "g", "d"):
        sa, sb = a["networks"][net], b["networks"][net]
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert torch.equal(a["model"]["noise"], b["model"]["noise"])
    assert {"loss_d", "loss_ge", "reconstruction"} <= set(full.history[-1])


def test_model_dir_samples_encodes_and_reconstructs(tmp_path):
    from gankit.report import write_report

    run = train(bigan_config("model.stochastic_encoder=false"), tmp_path / "run")
    loaded = load_bigan(run.path)
    assert isinstance(registry.load_sampler(run.path), type(loaded))
    assert isinstance(registry.load_encoder(run.path), type(loaded))
    assert loaded.sample(5, seed=1).shape == (5, 1, 8, 8)
    assert torch.equal(loaded.sample(5, seed=1), loaded.sample(5, seed=1))
    assert loaded.sample(5, seed=1).abs().max() <= 1.0  # tanh output for images
    x = load_digits("test")[0][:6]
    mu, logvar = loaded.encode(x, variance=True)
    assert mu.shape == (6, 3) and (logvar == -30.0).all()  # deterministic: a point mass
    assert loaded.reconstruct(x).shape == x.shape
    with pytest.raises(Exception, match=r"shape \[n, 1, 8, 8\]"):
        loaded.encode(torch.zeros(2, 64))
    with pytest.raises(ConfigError, match="no likelihood"):
        loaded.iwae_bound(x, 2)
    with pytest.raises(ConfigError, match="without rejection"):
        loaded.sample(2, rejection=True)
    page = write_report(run.path, n=40).read_text()
    assert "Reconstructions" in page


def test_tampered_spec_is_refused(tmp_path):
    run = train(bigan_config("train.steps=1"), tmp_path / "run")
    spec = json.loads((run.path / "model.json").read_text())
    arch = spec["architecture"]
    write_spec(run.path, {**spec, "architecture": {**arch, "g_widths": [10**9]}})
    with pytest.raises(CheckpointError, match="g_widths"):
        load_bigan(run.path)
    write_spec(run.path, {**spec, "architecture": {**arch, "e_widths": [9]}})
    with pytest.raises(CheckpointError, match=r"do not fit|shape"):
        load_bigan(run.path)
    write_spec(run.path, {**spec, "architecture": {**arch, "stochastic_encoder": "yes"}})
    with pytest.raises(CheckpointError, match="stochastic_encoder"):
        load_bigan(run.path)


def test_config_errors_name_the_key(tmp_path):
    with pytest.raises(ConfigError, match=r"objective\.gradient_penalty"):
        train(bigan_config("objective.gradient_penalty=10"), tmp_path / "a")
    with pytest.raises(ConfigError, match=r"model\.d_widths"):
        train(bigan_config("model.d_widths=[]"), tmp_path / "b")
    with pytest.raises(ConfigError, match=r"train\.ema"):
        train(bigan_config("train.ema=0.9"), tmp_path / "c")
    with pytest.raises(ConfigError, match=r"model\.d_dropout"):
        bigan_config("model.d_dropout=1.5")


def test_served_generate_and_encode(tmp_path):
    from fastapi.testclient import TestClient

    from gankit.serve import KeyStore, ServeOptions, create_app
    from gankit.serve.auth import make_key

    run = train(bigan_config("train.steps=1"), tmp_path / "bigan")
    key, record = make_key("gen", ["generate"])
    options = ServeOptions(keys=KeyStore([record]), audit_log=tmp_path / "audit.jsonl")
    headers = {"X-API-Key": key}
    loaded = load_bigan(run.path)
    with TestClient(create_app([run.path], options=options)) as client:
        body = {"model": "bigan", "n": 3, "seed": 1}
        reply = client.post("/v1/generate", json=body, headers=headers)
        assert reply.status_code == 200, reply.text
        assert torch.allclose(torch.tensor(reply.json()["data"]), loaded.sample(3, seed=1))
        x = load_digits("test")[0][:3]
        body = {"model": "bigan", "x": x.reshape(3, -1).tolist()}
        reply = client.post("/v1/encode", json=body, headers=headers)
        assert reply.status_code == 200, reply.text
        mu, logvar = loaded.encode(x, variance=True)
        assert torch.allclose(torch.tensor(reply.json()["z"]), mu, atol=1e-6)
        assert torch.allclose(torch.tensor(reply.json()["logvar"]), logvar, atol=1e-6)


def test_bench_probe_pieces():
    from gankit.bench.bigan import linear_probe, pca_probe

    (x, y), (xt, yt) = load_digits("train"), load_digits("test")
    # the anchor of `gankit bench bigan`: PCA-8 features give 0.897 on the held-out digits
    assert pca_probe(x, y.numpy(), xt, yt.numpy(), 8) == pytest.approx(0.897, abs=0.01)
    onehot = torch.nn.functional.one_hot(y, 10).float().numpy()
    onehot_t = torch.nn.functional.one_hot(yt, 10).float().numpy()
    assert linear_probe(onehot, y.numpy(), onehot_t, yt.numpy()) == 1.0
