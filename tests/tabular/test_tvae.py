"""TabularVAE (TVAE, Xu et al. 2019): the ELBO by hand, fit/sample, resume, model dirs, serving."""

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from gankit import registry
from gankit.engine.checkpoint import load_state
from gankit.engine.model import Batch, Batches
from gankit.errors import CheckpointError, ConfigError, DataError
from gankit.modeldir import write_spec
from gankit.models.tabular.tvae import TVAE, SpanLikelihood
from gankit.nets.tabular import Span
from gankit.tabular import TabularVAE

PARAMS = {"hidden": (16,), "latent_dim": 4, "batch_size": 32, "random_state": 3}


def table(n: int = 80, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    return pd.DataFrame(
        {
            "x": x,
            "y": 2 * x + rng.normal(scale=0.3, size=n),
            "k": rng.integers(0, 5, size=n),
            "c": rng.choice(["a", "b"], size=n, p=[0.7, 0.3]),
        }
    )


@pytest.fixture(scope="module")
def fitted():
    return TabularVAE(n_steps=30, **PARAMS).fit(table(), discrete_columns=["c"])


def test_span_likelihood_and_loss_match_hand_computed_values():
    spans = [Span(1, "tanh"), Span(2, "softmax"), Span(3, "softmax")]
    model = TVAE(spans, latent_dim=2, hidden=(3,), seed=0, recon_weight=2.0)
    dec = model.networks["dec"]
    with torch.no_grad():
        dec.log_delta.fill_(math.log(0.5))
    out = torch.tensor([[0.3, 1.0, -1.0, 0.0, 2.0, 0.5]])
    row = torch.tensor([[0.2, 0.0, 1.0, 0.0, 1.0, 0.0]])
    alpha = -0.5 * ((0.2 - math.tanh(0.3)) / 0.5) ** 2 - math.log(0.5) - 0.5 * math.log(2 * math.pi)
    mode = -1.0 - math.log(math.exp(1.0) + math.exp(-1.0))
    cat = 2.0 - math.log(math.exp(0.0) + math.exp(2.0) + math.exp(0.5))
    got = SpanLikelihood(spans)(out, row, dec)
    assert got.item() == pytest.approx(alpha + mode + cat, abs=1e-5)

    # one training step: loss = -(2 log p(r|z) - KL) with z from the model's seeded noise
    model.attach(torch.device("cpu"), lambda m: m, lambda: torch.autocast("cpu", enabled=False))
    opts = model.configure_optimizers()
    rows = row.repeat(2, 1)
    eps = torch.randn(2, 2, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        mu, logvar = model.networks["enc"](rows)
        z = mu + torch.exp(0.5 * logvar) * eps
        rec = SpanLikelihood(spans)(dec(z), rows, dec)
        kl = 0.5 * (mu**2 + logvar.exp() - logvar - 1).sum(1)
        expected = -(2 * rec - kl).mean().item()
    stats = model.training_step(Batches(lambda: Batch(rows)), opts)
    assert stats["loss_vae"] == pytest.approx(expected, rel=1e-5)


def test_fit_sample_and_privacy(fitted):
    df = table()
    synth = fitted.sample(50, seed=1)
    assert list(synth.columns) == list(df.columns) and len(synth) == 50
    assert set(synth["c"]) <= {"a", "b"} and synth["k"].dtype == df["k"].dtype
    assert synth["x"].between(df["x"].min(), df["x"].max()).all()
    pd.testing.assert_frame_equal(synth, fitted.sample(50, seed=1))
    assert fitted.privacy_["exact_copies"] == 0 and fitted.privacy_["ratio"] > 0
    cond = fitted.sample(20, conditions={"c": "b"}, seed=2)
    assert len(cond) == 20 and (cond["c"] == "b").all()
    with pytest.raises(DataError, match="unseen category"):
        fitted.sample(5, conditions={"c": "z"})
    with pytest.raises(ConfigError, match="not a discrete column"):
        fitted.sample(5, conditions={"x": 1.0})
    with pytest.raises(ConfigError, match="before fit"):
        TabularVAE().sample(3)
    with pytest.raises(DataError, match="missing values"):
        TabularVAE(n_steps=1).fit(df.assign(x=np.nan))
    with pytest.raises(ConfigError, match="discrete"):
        TabularVAE(discrete="mode").fit(df)
    fitted.discrete = "sample"  # categories drawn from the softmax instead of its argmax
    try:
        drawn = fitted.sample(50, seed=1)
    finally:
        fitted.discrete = "argmax"
    assert set(drawn["c"]) <= {"a", "b"} and not drawn.equals(synth)


def test_resume_is_bit_identical(tmp_path):
    df = table()
    full = TabularVAE(n_steps=12, run_dir=str(tmp_path / "full"), **PARAMS).fit(df, ["c"])
    TabularVAE(n_steps=5, run_dir=str(tmp_path / "part"), **PARAMS).fit(df, ["c"])
    assert load_state(tmp_path / "part")["step"] == 5
    part = TabularVAE(n_steps=12, run_dir=str(tmp_path / "part"), **PARAMS)
    part.fit(df, ["c"], resume=True)
    assert part.steps_done_ == 12
    a, b = load_state(tmp_path / "full"), load_state(tmp_path / "part")
    for net in ("enc", "dec"):
        sa, sb = a["networks"][net], b["networks"][net]
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
    pd.testing.assert_frame_equal(full.sample(30, seed=1), part.sample(30, seed=1))


def test_save_load_round_trip_and_tampering(fitted, tmp_path):
    path = fitted.save(tmp_path / "model")
    loaded = TabularVAE.load(path)
    pd.testing.assert_frame_equal(fitted.sample(40, seed=4), loaded.sample(40, seed=4))
    assert loaded.privacy_ == fitted.privacy_
    assert isinstance(registry.load(path), TabularVAE)
    spec = json.loads((path / "model.json").read_text())
    (path / "model.json").write_text(json.dumps({**spec, "params": {**spec["params"], "lr": 1}}))
    with pytest.raises(CheckpointError, match="spec"):
        TabularVAE.load(path)  # edited without resealing
    write_spec(path, {**spec, "params": {**spec["params"], "latent_dim": 10**7}})
    with pytest.raises(CheckpointError, match="latent_dim"):
        TabularVAE.load(path)
    write_spec(path, {**spec, "params": {**spec["params"], "hidden": [17]}})
    with pytest.raises(CheckpointError, match="shape"):
        TabularVAE.load(path)


def test_served_by_the_synthesis_route(fitted, tmp_path):
    from fastapi.testclient import TestClient

    from gankit.serve import KeyStore, ServeOptions, create_app
    from gankit.serve.auth import make_key

    path = fitted.save(tmp_path / "tvae")
    key, record = make_key("synth", ["synthesize"])
    options = ServeOptions(keys=KeyStore([record]), audit_log=tmp_path / "audit.jsonl")
    with TestClient(create_app([path], options=options)) as client:
        body = {"model": "tvae", "n": 5, "seed": 1, "conditions": {"c": "a"}}
        reply = client.post("/v1/synthesize", json=body, headers={"X-API-Key": key})
        assert reply.status_code == 200, reply.text
        rows = reply.json()["rows"]
        assert len(rows) == 5 and {r["c"] for r in rows} == {"a"}


def test_cli_fits_and_samples_a_tvae(tmp_path, capsys):
    from gankit.cli import main

    table().to_csv(tmp_path / "train.csv", index=False)
    out, rows = tmp_path / "tvae", tmp_path / "rows.csv"
    fit = ["synth", "fit", str(tmp_path / "train.csv"), "--discrete", "c", "--model", "vae"]
    assert main([*fit, "--steps", "3", "--out", str(out)]) == 0
    assert json.loads((out / "model.json").read_text())["kind"] == registry.TABULAR_VAE
    sample = ["synth", "sample", str(out), "--n", "7", "--condition", "c=a", "--out", str(rows)]
    assert main(sample) == 0
    frame = pd.read_csv(rows)
    assert len(frame) == 7 and (frame["c"] == "a").all()
