"""The VAE family (Kingma & Welling 2014): the ELBO by hand, the IWAE bound, resume, model dirs."""

import json
import math

import pytest
import torch

from gankit import registry
from gankit.config import load_config
from gankit.data.images import load_digits
from gankit.engine import resume, train
from gankit.engine.checkpoint import load_state
from gankit.engine.runs import build_trainer
from gankit.errors import CheckpointError, ConfigError
from gankit.modeldir import write_spec
from gankit.models.vae import Parts, build_networks, elbo, iwae_bound, load_vae

TINY_VAE = [
    "data.name=digits",
    "model.family=vae",
    "model.latent_dim=4",
    "model.widths=[16]",
    "model.kl_warmup_steps=5",
    "model.dequantize=0.125",
    "train.batch_size=16",
    "train.steps=12",
    "train.lr_g=0.001",
    "train.progress=false",
    "train.log_every=2",
    "train.checkpoint_every=6",
    "train.sample_every=6",
]


def vae_config(*extra: str):
    return load_config(None, [*TINY_VAE, *extra])


def tiny_parts(likelihood: str) -> Parts:
    """latent 1, data [2], no hidden layer: every weight set by hand."""
    arch = {
        "latent_dim": 1,
        "widths": [],
        "activation": "relu",
        "likelihood": likelihood,
        "decoder_std": 0.0,
        "shape": [2],
    }
    enc, dec = build_networks(arch)
    with torch.no_grad():
        enc.net[0].weight.copy_(torch.tensor([[0.5, -1.0], [0.2, 0.0]]))
        enc.net[0].bias.copy_(torch.tensor([0.1, -0.4]))
        dec.net[0].weight.copy_(torch.tensor([[2.0], [-1.0]]))
        dec.net[0].bias.copy_(torch.tensor([0.0, 0.5]))
        if likelihood == "gaussian":
            dec.log_std.copy_(torch.tensor([0.0, -0.5]))
    return Parts(enc, dec, arch, [-1, 1])


@pytest.mark.parametrize("likelihood", ["gaussian", "bernoulli"])
def test_elbo_matches_a_hand_computed_value(likelihood):
    x1, x2, eps = 1.0, 0.5, 0.3
    mu, logvar = 0.5 * x1 - 1.0 * x2 + 0.1, 0.2 * x1 - 0.4
    z = mu + math.exp(0.5 * logvar) * eps
    out = [2.0 * z, -1.0 * z + 0.5]
    if likelihood == "gaussian":
        log_px = sum(
            -0.5 * ((x - m) / math.exp(s)) ** 2 - s - 0.5 * math.log(2 * math.pi)
            for x, m, s in zip((x1, x2), out, (0.0, -0.5), strict=True)
        )
    else:  # pixels in [-1, 1] read as probabilities (x + 1) / 2
        log_px = 0.0
        for x, logit in zip((x1, x2), out, strict=True):
            t, p = (x + 1) / 2, 1 / (1 + math.exp(-logit))
            log_px += t * math.log(p) + (1 - t) * math.log(1 - p)
    kl = 0.5 * (mu**2 + math.exp(logvar) - logvar - 1)
    x = torch.tensor([[x1, x2]])
    got = elbo(tiny_parts(likelihood), x, torch.tensor([[eps]]))
    assert got.item() == pytest.approx(log_px - kl, abs=1e-5)
    # with the Monte Carlo KL it is log p(x|z) + log p(z) - log q(z|x)
    log_pz = -0.5 * z**2 - 0.5 * math.log(2 * math.pi)
    log_qz = -0.5 * eps**2 - 0.5 * logvar - 0.5 * math.log(2 * math.pi)
    mc = elbo(tiny_parts(likelihood), x, torch.tensor([[eps]]), analytic_kl=False)
    assert mc.item() == pytest.approx(log_px + log_pz - log_qz, abs=1e-5)


def test_iwae_bound_is_the_elbo_at_k1_and_rises_with_k(tmp_path):
    trainer = build_trainer(vae_config("train.steps=60"), tmp_path / "run")
    trainer.fit()
    model = trainer.model
    x = load_digits("test")[0][:64]
    x = x + 0.125 * torch.rand(x.shape, generator=torch.Generator().manual_seed(0))
    eps = torch.randn(1, 64, 4, generator=torch.Generator().manual_seed(1))
    k1 = iwae_bound(model, x, 1, eps=eps)
    assert torch.allclose(k1, elbo(model, x, eps[0], analytic_kl=False), atol=1e-4)
    # in expectation the k = 1 bound is the (analytic-KL) ELBO
    many = iwae_bound(model, x.repeat(50, 1, 1, 1), 1, seed=2).view(50, 64).mean(0)
    assert many.mean().item() == pytest.approx(elbo(model, x).mean().item(), abs=0.5)
    # on average over the noise (repeats of each image), the bound rises with k
    means = [
        iwae_bound(model, x.repeat(r, 1, 1, 1), k, seed=3).mean().item()
        for k, r in ((1, 50), (8, 20), (64, 4))
    ]
    assert means[0] < means[1] < means[2]
    with pytest.raises(Exception, match="k must be a positive integer"):
        iwae_bound(model, x, 0)


def test_resume_is_bit_identical(tmp_path):
    full = train(vae_config(), tmp_path / "full")
    part = train(vae_config("train.steps=6"), tmp_path / "part")
    resumed = resume(part.path, ["train.steps=12"])
    assert full.step == resumed.step == 12
    a, b = load_state(full.path), load_state(resumed.path)
    for net in ("enc", "dec"):
        sa, sb = a["networks"][net], b["networks"][net]
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert a["model"]["steps"] == b["model"]["steps"] == 12
    assert torch.equal(a["model"]["noise"], b["model"]["noise"])
    betas = [h["beta"] for h in full.history]
    assert betas[0] == pytest.approx(2 / 5) and betas[-1] == 1.0  # the KL warm-up


def test_save_load_round_trip_and_registry(tmp_path):
    trainer = build_trainer(vae_config("model.likelihood=bernoulli"), tmp_path / "run")
    trainer.fit()
    model, loaded = trainer.model, load_vae(tmp_path / "run")
    assert torch.equal(model.sample(5, seed=1), loaded.sample(5, seed=1))
    assert loaded.sample(5, seed=1).shape == (5, 1, 8, 8)
    x = load_digits("test")[0][:6]
    assert torch.equal(model.encode(x), loaded.encode(x))
    assert loaded.decode(loaded.encode(x)).shape == x.shape
    assert loaded.sample(3, seed=0).abs().max() <= 1.0  # Bernoulli means lie in the data range
    assert torch.equal(iwae_bound(model, x, 4), loaded.iwae_bound(x, 4))
    assert isinstance(registry.load(tmp_path / "run"), type(loaded))
    spec = json.loads((tmp_path / "run/model.json").read_text())
    assert registry.kind(spec["kind"]).loader == "gankit.models.vae:load_vae"


def test_tampered_spec_is_refused(tmp_path):
    run = train(vae_config("train.steps=2"), tmp_path / "run")
    path = run.path / "model.json"
    spec = json.loads(path.read_text())
    path.write_text(json.dumps({**spec, "latent_dim": 5}))  # an edit without resealing
    with pytest.raises(CheckpointError, match="spec"):
        load_vae(run.path)
    # a forger who reseals: the spec is checked against the weights before anything is built
    wide = {**spec["architecture"], "widths": [10**9]}
    write_spec(run.path, {**spec, "architecture": wide})
    with pytest.raises(CheckpointError, match="widths"):
        load_vae(run.path)
    write_spec(run.path, {**spec, "architecture": {**spec["architecture"], "widths": [17]}})
    with pytest.raises(CheckpointError, match=r"do not fit|shape"):
        load_vae(run.path)
    write_spec(run.path, {**spec, "architecture": {**spec["architecture"], "shape": [1, 8, 9]}})
    with pytest.raises(CheckpointError, match="shape"):
        load_vae(run.path)


def test_config_errors_name_the_key():
    with pytest.raises(ConfigError, match=r"model\.likelihood"):
        vae_config("model.likelihood=poisson")
    with pytest.raises(ConfigError, match="kl_warmup_steps"):
        vae_config("model.kl_warmup_steps=-1")
    with pytest.raises(ConfigError, match=r"train\.ema"):
        build_trainer(vae_config("train.ema=0.9"), None)
    with pytest.raises(ConfigError, match=r"model\.widths"):
        build_trainer(vae_config("model.widths=[]"), None)


def test_served_by_the_generate_routes(tmp_path):
    from fastapi.testclient import TestClient

    from gankit.serve import KeyStore, ServeOptions, create_app
    from gankit.serve.auth import make_key

    run = train(vae_config("train.steps=2"), tmp_path / "vae")
    key, record = make_key("gen", ["generate"])
    options = ServeOptions(keys=KeyStore([record]), audit_log=tmp_path / "audit.jsonl")
    headers = {"X-API-Key": key}
    with TestClient(create_app([run.path], options=options)) as client:
        reply = client.post(
            "/v1/generate", json={"model": "vae", "n": 3, "seed": 1}, headers=headers
        )
        assert reply.status_code == 200, reply.text
        assert reply.json()["shape"] == [1, 8, 8] and reply.json()["n"] == 3
        expected = load_vae(run.path).sample(3, seed=1)
        assert torch.allclose(torch.tensor(reply.json()["data"]), expected)
        png = {"model": "vae", "n": 2, "seed": 1, "format": "png"}
        assert client.post("/v1/generate", json=png, headers=headers).status_code == 200
        z = [[0.0] * 4]
        reply = client.post("/v1/decode", json={"model": "vae", "z": z}, headers=headers)
        assert reply.status_code == 200, reply.text
        bad = {"model": "vae", "n": 2, "rejection": True}
        assert client.post("/v1/generate", json=bad, headers=headers).status_code == 422
        x = load_digits("test")[0][:3]
        body = {"model": "vae", "x": x.reshape(3, -1).tolist()}
        reply = client.post("/v1/encode", json=body, headers=headers)
        assert reply.status_code == 200, reply.text
        mu, logvar = load_vae(run.path).encode(x, variance=True)
        assert torch.allclose(torch.tensor(reply.json()["z"]), mu, atol=1e-6)
        assert torch.allclose(torch.tensor(reply.json()["logvar"]), logvar, atol=1e-6)
        short = {"model": "vae", "x": [[0.0] * 63]}
        reply = client.post("/v1/encode", json=short, headers=headers)
        assert reply.status_code == 422 and reply.json()["detail"][0]["loc"] == ["body", "x", 0]


def test_bench_protocol_pieces():
    from gankit.bench import vae as bench

    # a uniform density on the dequantised range [-1, 1 + 1/8)^64 is log2(17) bits per pixel
    uniform = -64 * math.log(17 / 8)
    assert bench.bits_per_dim(uniform, 64) == pytest.approx(math.log2(17))
    x = load_digits("test")[0][:40]
    deq = bench.dequantize(x, 0)
    assert torch.equal(deq, bench.dequantize(x, 0))
    assert ((deq - x) >= 0).all() and ((deq - x) < 0.125).all()
    scores = bench.linear_scores(x, bench.dequantize(x, 1), 2, seed=0)
    assert set(scores) == {"ppca", "fa"} and all(math.isfinite(v) for v in scores.values())


def test_cli_samples_a_vae(tmp_path, capsys):
    from gankit.cli import main

    run = train(vae_config("train.steps=2"), tmp_path / "vae")
    grid, strip = tmp_path / "grid.png", tmp_path / "strip.png"
    assert main(["sample", str(run.path), "--n", "8", "--out", str(grid)]) == 0 and grid.is_file()
    assert main(["sample", str(run.path), "--n", "10", "--interpolate", "--out", str(strip)]) == 0
    assert main(["sample", str(run.path), "--rejection", "--out", str(grid)]) == 2
    assert "no discriminator" in capsys.readouterr().err


def test_eval_and_report_read_a_vae(tmp_path):
    import gankit
    from gankit.report import write_report

    run = train(vae_config("train.steps=4"), tmp_path / "vae")
    records = gankit.evaluate(run.path, metrics=["fd"], n=50)
    assert math.isfinite(records["fd"]["value"])
    page = write_report(run.path, n=60).read_text()
    assert "Reconstructions" in page and "Interpolation" in page
    with pytest.raises(CheckpointError, match="draws no images"):
        registry.load_sampler(_tvae_dir(tmp_path))


def _tvae_dir(tmp_path):
    import numpy as np
    import pandas as pd

    from gankit.tabular import TabularVAE

    rng = np.random.default_rng(0)
    df = pd.DataFrame({"x": rng.normal(size=40), "c": rng.choice(["a", "b"], size=40)})
    model = TabularVAE(n_steps=2, hidden=(8,), latent_dim=2, random_state=0).fit(df, ["c"])
    return model.save(tmp_path / "tvae")


def test_onnx_export_is_served(tmp_path):
    from fastapi.testclient import TestClient

    from gankit.export import export_model
    from gankit.serve import KeyStore, ServeOptions, create_app
    from gankit.serve.auth import make_key

    run = train(vae_config("train.steps=2"), tmp_path / "vae")
    report = export_model(run.path, tmp_path / "exported", exporter="torchscript")
    assert report["parity_max_abs"] < 1e-4
    spec = json.loads((tmp_path / "exported/model.json").read_text())
    assert spec["onnx"]["inputs"] == ["z"]
    load_vae(tmp_path / "exported")  # still a sealed, loadable VAE directory
    with pytest.raises(ConfigError, match="prune"):
        export_model(run.path, tmp_path / "pruned", prune=0.5)
    key, record = make_key("gen", ["generate"])
    options = ServeOptions(keys=KeyStore([record]), audit_log=tmp_path / "audit.jsonl")
    with TestClient(create_app([tmp_path / "exported"], options=options)) as client:
        info = client.get("/v1/models", headers={"X-API-Key": key}).json()
        assert info["models"][0]["runtime"] == "onnx"
        body = {"model": "exported", "n": 3, "seed": 1}
        reply = client.post("/v1/generate", json=body, headers={"X-API-Key": key})
        assert reply.status_code == 200, reply.text
        expected = load_vae(run.path).sample(3, seed=1)
        assert torch.allclose(torch.tensor(reply.json()["data"]), expected, atol=1e-4)
