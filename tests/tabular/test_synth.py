"""TabularGAN: encoding round trip, conditional sampling, privacy report, save/load, errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from gankit.errors import CheckpointError, ConfigError, DataError
from gankit.nets.tabular import ResidualGenerator as Generator
from gankit.nets.tabular import SpanActivation as Activation
from gankit.tabular import TabularGAN
from gankit.tabular.encoders import CondSampler, ModeEncoder
from gankit.tabular.fidelity import column_shape_score, correlation_score
from gankit.tabular.transform import infer_schema

TINY = {"n_steps": 15, "hidden": (32, 32), "z_dim": 16, "batch_size": 40}


def table(n: int = 120, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    label = rng.choice(["yes", "no"], size=n, p=[0.3, 0.7])
    bimodal = np.where(rng.random(n) < 0.5, rng.normal(-5, 0.3, n), rng.normal(5, 0.3, n))
    return pd.DataFrame(
        {"label": label, "x": bimodal, "k": rng.integers(0, 10, n), "y": rng.normal(size=n)}
    )


def test_mode_encoder_round_trip_is_exact_inside_modes():
    df = table()
    schema = infer_schema(df.copy(), True, categorical=["label"])
    enc = ModeEncoder.fit(df, schema, seed=0)
    assert len(enc.modes["x"]["means"]) >= 2  # the bimodal column gets two modes
    back = enc.decode(enc.encode(df, np.random.default_rng(0)))
    assert (back["label"] == df["label"]).all()
    assert np.allclose(back["x"], df["x"], atol=1e-6)
    assert (back["k"] == df["k"]).all()  # integer column decoded to whole numbers


def test_activation_gives_distributions_on_spans():
    df = table()
    enc = ModeEncoder.fit(df, infer_schema(df.copy(), True, ["label"]), seed=0)
    act = Activation(enc.spans)
    out = act(torch.randn(7, enc.width, generator=torch.Generator().manual_seed(0)))
    pos = 0
    for span in enc.spans:
        block = out[:, pos : pos + span.width]
        if span.activation == "softmax":
            assert np.allclose(block.sum(1).numpy(), 1.0, atol=1e-5)
        else:
            assert (block.abs() <= 1).all()
        pos += span.width


def test_training_by_sampling_uses_log_frequencies():
    data = np.zeros((110, 2), dtype=np.float32)
    data[:100, 0] = 1.0
    data[100:, 1] = 1.0
    sampler = CondSampler(data, [(0, 2, "c")])
    cond, _, rows = sampler.train_batch(20000, np.random.default_rng(0))
    share = cond[:, 1].mean()
    expected = np.log1p(10) / (np.log1p(100) + np.log1p(10))  # 0.342, not 10/110
    assert share == pytest.approx(expected, abs=0.015)
    assert (data[rows].argmax(1) == cond.argmax(1)).all()  # real rows match the condition


def test_fit_sample_conditions_privacy_and_save_load(tmp_path):
    df = table()
    model = TabularGAN(random_state=0, **TINY).fit(df, discrete_columns=["label"])
    out = model.sample(50, seed=1)
    assert list(out.columns) == list(df.columns) and len(out) == 50
    assert out["x"].between(df["x"].min(), df["x"].max()).all()
    assert (out["k"] == out["k"].round()).all()
    assert out.equals(model.sample(50, seed=1))  # seeded
    cond = model.sample(30, conditions={"label": "yes"}, seed=2)
    assert (cond["label"] == "yes").all() and len(cond) == 30
    report = model.privacy_
    assert report["exact_copies"] == 0 and report["dcr_synthetic_median"] > 0
    model.save(tmp_path / "m")
    spec = json.loads((tmp_path / "m" / "model.json").read_text())
    assert spec["kind"] == "tabular-synth" and spec["schema"]["columns"][0]["kind"] == "categorical"
    loaded = TabularGAN.load(tmp_path / "m")
    pd.testing.assert_frame_equal(loaded.sample(20, seed=3), model.sample(20, seed=3))


def test_errors():
    df = table(40)
    with pytest.raises(DataError, match="missing values"):
        TabularGAN(**TINY).fit(df.assign(y=np.nan), ["label"])
    with pytest.raises(DataError, match="no column named 'nope'"):
        TabularGAN(**TINY).fit(df, ["nope"])
    model = TabularGAN(random_state=0, **TINY).fit(df, ["label"])
    with pytest.raises(DataError, match="unseen category 'maybe'"):
        model.sample(5, conditions={"label": "maybe"})
    with pytest.raises(ConfigError, match="not a discrete column"):
        model.sample(5, conditions={"x": 1.0})
    with pytest.raises(CheckpointError):
        TabularGAN.load("/nonexistent/model")


def test_fidelity_scores_on_known_inputs():
    df = table(400)
    schema = infer_schema(df.copy(), True, ["label"])
    assert column_shape_score(df, df, schema) == pytest.approx(1.0)
    assert correlation_score(df, df, schema) == pytest.approx(1.0)
    shuffled = df.apply(lambda c: c.sample(frac=1, random_state=1).to_numpy())
    assert column_shape_score(df, shuffled, schema) == pytest.approx(1.0)  # same marginals
    shifted = df.assign(y=df["y"] + 10)
    assert column_shape_score(df, shifted, schema) == pytest.approx(0.75)  # one column: KS = 1


def test_activation_matches_per_span_softmax_and_tanh():
    df = table()
    enc = ModeEncoder.fit(df, infer_schema(df.copy(), True, ["label"]), seed=0)
    raw = torch.randn(5, enc.width, generator=torch.Generator().manual_seed(1))
    out = Activation(enc.spans)(raw, gumbel=False)
    pos = 0
    for span in enc.spans:
        block = raw[:, pos : pos + span.width]
        ref = torch.tanh(block) if span.activation == "tanh" else torch.softmax(block, 1)
        assert torch.allclose(out[:, pos : pos + span.width], ref, atol=1e-6)
        pos += span.width


def test_ema_update_is_a_lerp_and_copies_batchnorm_stats():
    from gankit.engine.ema import EMA

    gen = Generator(2, 0, (4,), 3)
    with torch.no_grad():
        for p in gen.parameters():
            p.zero_()
    ema = EMA(gen, 0.9)
    with torch.no_grad():
        for p in gen.parameters():
            p.fill_(1.0)
        gen.net[0].bn.running_mean.fill_(3.0)
    ema.update(gen)
    for p in ema.shadow.parameters():
        assert torch.allclose(p, torch.full_like(p, 0.1))
    assert torch.allclose(ema.shadow.net[0].bn.running_mean, torch.full((4,), 3.0))
    with pytest.raises(ConfigError, match="ema"):
        TabularGAN(ema=1.0).fit(pd.DataFrame({"x": np.arange(40.0)}))
