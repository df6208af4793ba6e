"""MIWAE: the bound against closed forms, recovery on a Gaussian, multiple imputation, bad
input, reproducibility, save/load and the scikit-learn contract."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.utils.estimator_checks import check_estimator

from gankit import registry
from gankit.engine.checkpoint import load_state
from gankit.errors import CheckpointError, ConfigError, DataError
from gankit.models.tabular.miwae import decoder_log_prob, iwae_bound
from gankit.tabular import MIWAEImputer
from gankit.tabular.miwae import HeldOutStopping

SMALL = {"n_steps": 300, "hidden": 32, "n_samples": 200, "batch_size": 32}

# A linear-Gaussian model: z ~ N(0, 1), x_j = W_j z + B_j + N(0, S^2).
W = torch.tensor([1.5, -0.7, 0.4], dtype=torch.float64)
B = torch.tensor([0.2, -0.1, 0.5], dtype=torch.float64)
S = 0.6


class LinearGaussian(torch.nn.Module):
    """Decoder of the model above; encoder either the exact posterior p(z | x_o) (observed
    entries recognised as non-zero) or a fixed, deliberately wrong q = N(0.3, 0.5^2)."""

    def __init__(self, exact: bool) -> None:
        super().__init__()
        self.exact = exact

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.exact:
            return torch.full((len(x), 1), 0.3, dtype=x.dtype), torch.full(
                (len(x), 1), 0.5, dtype=x.dtype
            )
        seen = (x != 0).to(x.dtype)
        precision = 1.0 + (seen * W**2).sum(1, keepdim=True) / S**2
        mean = (seen * W * (x - B)).sum(1, keepdim=True) / S**2 / precision
        return mean, precision.rsqrt()

    def decode(self, z: torch.Tensor):
        loc = z * W + B
        return loc, torch.full_like(loc, S), None


def marginal_log_lik(x: torch.Tensor, seen: torch.Tensor) -> float:
    """log p(x_o) = log N(x_o; B_o, W_o W_o' + S^2 I), in closed form."""
    idx = seen.bool()
    w, d = W[idx], x[idx] - B[idx]
    cov = torch.outer(w, w) + S**2 * torch.eye(len(w), dtype=torch.float64)
    dist = torch.distributions.MultivariateNormal(torch.zeros(len(w), dtype=torch.float64), cov)
    return float(dist.log_prob(d))


X1 = torch.tensor([[1.1, 0.0, 0.9]], dtype=torch.float64)  # column 1 missing
M1 = torch.tensor([[1.0, 0.0, 1.0]], dtype=torch.float64)


def test_bound_with_the_exact_posterior_is_the_marginal_likelihood_for_any_k():
    # q = p(z | x_o): every weight equals p(x_o), so L_K = log p(x_o) exactly for all K
    torch.manual_seed(0)
    truth = marginal_log_lik(X1[0], M1[0])
    for k in (1, 7):
        bound = iwae_bound(LinearGaussian(exact=True), X1, M1, k)
        assert bound.item() == pytest.approx(truth, abs=1e-9)


def test_k1_is_the_elbo_and_the_bound_tightens_with_k():
    torch.manual_seed(0)
    model = LinearGaussian(exact=False)
    x, m = X1.repeat(20000, 1), M1.repeat(20000, 1)
    m_q, v_q = 0.3, 0.25
    seen = M1[0].bool()
    d = X1[0, seen] - B[seen]
    w = W[seen]
    expected_log_lik = -0.5 * math.log(2 * math.pi * S**2) * float(seen.sum()) - float(
        ((d - w * m_q) ** 2 + w**2 * v_q).sum()
    ) / (2 * S**2)
    kl = 0.5 * (v_q + m_q**2 - 1.0 - math.log(v_q))
    elbo = expected_log_lik - kl
    k1 = iwae_bound(model, x, m, 1)
    se = float(k1.std()) / math.sqrt(len(k1))
    assert abs(float(k1.mean()) - elbo) < 4 * se
    k50 = float(iwae_bound(model, x[:2000], m[:2000], 50).mean())
    truth = marginal_log_lik(X1[0], M1[0])
    assert elbo < k50 < truth + 1e-3
    assert truth - k50 < 0.2 * (truth - elbo)


def test_decoder_log_prob_matches_torch_distributions():
    loc, scale, df = torch.tensor([0.5, -1.0]), torch.tensor([0.7, 2.0]), torch.tensor([3.5, 9.0])
    x = torch.tensor([1.3, 0.4])
    normal = torch.distributions.Normal(loc, scale).log_prob(x)
    student = torch.distributions.StudentT(df, loc, scale).log_prob(x)
    assert torch.allclose(decoder_log_prob((loc, scale, None), x), normal, atol=1e-6)
    assert torch.allclose(decoder_log_prob((loc, scale, df), x), student, atol=1e-5)


def correlated(n: int = 400, seed: int = 0, rate: float = 0.2):
    """Four columns driven by one factor (correlations ~0.9), 20% MCAR."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 1))
    full = z @ np.array([[1.0, 2.0, -1.0, 0.5]]) + 0.3 * rng.normal(size=(n, 4))
    holed = full.copy()
    holed[rng.random(full.shape) < rate] = np.nan
    empty = np.isnan(holed).all(1)
    holed[empty, 0] = full[empty, 0]
    return full, holed


@pytest.fixture(scope="module")
def fitted():
    full, holed = correlated()
    return full, holed, MIWAEImputer(random_state=0, **SMALL).fit(holed)


def test_recovers_a_correlated_gaussian_far_better_than_the_mean(fitted):
    full, holed, imp = fitted
    out = imp.transform(holed)
    miss = np.isnan(holed)
    assert np.array_equal(out[~miss], holed[~miss])
    span = full.max(0) - full.min(0)
    err = np.sqrt(np.mean(((out - full) / span)[miss] ** 2))
    mean_fill = np.where(miss, np.nanmean(holed, 0), holed)
    err_mean = np.sqrt(np.mean(((mean_fill - full) / span)[miss] ** 2))
    # one factor explains ~90% of each column's variance: the mean's error is ~3x larger
    assert err < 0.6 * err_mean


def test_transform_multiple_shapes_variability_and_seeding(fitted):
    full, holed, imp = fitted
    tables = imp.transform_multiple(holed, 4)
    assert len(tables) == 4 and all(t.shape == holed.shape for t in tables)
    miss = np.isnan(holed)
    stack = np.stack(tables)
    assert np.all(stack[:, ~miss] == holed[~miss])
    assert np.all(stack[:, miss].std(0) > 0)  # every missing entry varies across tables
    assert np.array_equal(stack, np.stack(imp.transform_multiple(holed, 4)))
    imp.set_params(sample_posterior=True)
    try:
        assert np.array_equal(imp.transform(holed), tables[0])
    finally:
        imp.set_params(sample_posterior=False)
    # draws centre on the point estimate: their mean is as close to the truth as it is
    span = full.max(0) - full.min(0)
    err_draws = np.sqrt(np.mean(((stack.mean(0) - full) / span)[miss] ** 2))
    err_point = np.sqrt(np.mean(((imp.transform(holed) - full) / span)[miss] ** 2))
    assert err_draws < 1.3 * err_point
    with pytest.raises(ConfigError, match="whole number"):
        imp.transform_multiple(holed, 0)


def test_same_random_state_same_model_different_state_different_fill():
    _, holed = correlated(120)
    quick = {**SMALL, "n_steps": 40}
    a = MIWAEImputer(random_state=3, **quick).fit_transform(holed)
    b = MIWAEImputer(random_state=3, **quick).fit_transform(holed)
    c = MIWAEImputer(random_state=4, **quick).fit_transform(holed)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("n_steps", -1),
        ("n_importance", 0),
        ("likelihood", "poisson"),
        ("validation_fraction", 1.0),
        ("latent_dim", 0),
        ("lr", 0.0),
    ],
)
def test_bad_hyper_parameters(param, value):
    with pytest.raises(ConfigError, match=param):
        MIWAEImputer(**{param: value}).fit(correlated(40)[1])


def test_bad_input_at_fit_and_transform(fitted):
    imp = fitted[2]
    with pytest.raises(DataError, match="column '1' has no observed value"):
        MIWAEImputer().fit(np.array([[1.0, np.nan], [2.0, np.nan], [3.0, np.nan]]))
    with pytest.raises(DataError, match="inf"):
        MIWAEImputer().fit(np.array([[1.0, np.inf], [2.0, 1.0], [3.0, 0.0]]))
    with pytest.raises(DataError, match="numeric columns only"):
        MIWAEImputer().fit(pd.DataFrame({"a": [1.0, 2, 3, 4], "k": ["x", "y", "x", None]}))
    with pytest.raises(DataError, match="inf"):
        imp.transform(np.array([[1.0, np.inf, 0.0, 1.0]]))
    with pytest.raises(DataError, match="3 features"):
        imp.transform(np.ones((2, 3)))
    frame = MIWAEImputer(random_state=0, n_steps=5).fit(
        pd.DataFrame({"a": [1.0, 2, 3, 4], "b": [1.0, np.nan, 2, 3]})
    )
    with pytest.raises(DataError, match="missing \\['b'\\], unexpected \\['c'\\]"):
        frame.transform(pd.DataFrame({"a": [1.0], "c": [2.0]}))


def test_save_load_roundtrip_and_tamper(tmp_path):
    _, holed = correlated(80)
    df = pd.DataFrame(holed, columns=["u", "v", "w", "y"])
    df["n"] = np.arange(80)  # an integer column keeps its dtype
    imp = MIWAEImputer(random_state=0, **{**SMALL, "n_steps": 50}).fit(df)
    imp.save(tmp_path / "m")
    loaded = MIWAEImputer.load(tmp_path / "m")
    pd.testing.assert_frame_equal(loaded.transform(df), imp.transform(df))
    assert str(loaded.transform(df)["n"].dtype) == "int64"
    assert registry.kind(json.loads((tmp_path / "m" / "model.json").read_text())["kind"])
    assert isinstance(registry.load(tmp_path / "m"), MIWAEImputer)  # the registry's loader
    weights = tmp_path / "m" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="SHA-256"):
        MIWAEImputer.load(tmp_path / "m")


def test_scikit_learn_check_estimator():
    waived = {
        "check_dtype_object": "a dict inside a numeric column is reported as non-numeric text "
        "(DataError, a ValueError) instead of the TypeError numpy raises",
    }
    tiny = MIWAEImputer(n_steps=3, hidden=8, n_samples=8, validation_fraction=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(tiny, expected_failed_checks=waived, on_fail=None)
    failed = [r["check_name"] for r in results if r["status"] == "failed"]
    assert failed == []


def test_draws_are_calibrated_against_the_exact_gaussian_conditional():
    """90% intervals from 39 SIR draws on a 3-D Gaussian: coverage near 0.90 and widths near
    those of the exact conditional N(mu_m|o, S_m|o) (measured: 0.90 / 1.12x on seed 0)."""
    from gankit.bench.impute_calibration import central_interval

    rng = np.random.default_rng(0)
    cov = np.array([[1.0, 0.8, 0.5], [0.8, 1.0, 0.4], [0.5, 0.4, 1.0]])
    full = rng.multivariate_normal(np.zeros(3), cov, size=500)
    holed = full.copy()
    holed[rng.random(full.shape) < 0.2] = np.nan
    empty = np.isnan(holed).all(1)
    holed[empty, 0] = full[empty, 0]
    imp = MIWAEImputer(random_state=0, **SMALL).fit(holed)
    lo, hi = central_interval(np.stack(imp.transform_multiple(holed, 39)))
    miss = np.isnan(holed)
    covered = ((full >= lo) & (full <= hi))[miss].mean()
    exact = []
    for i, j in zip(*np.nonzero(miss), strict=True):
        o, m = ~miss[i], miss[i]
        s = cov[np.ix_(m, m)] - cov[np.ix_(m, o)] @ np.linalg.solve(
            cov[np.ix_(o, o)], cov[np.ix_(o, m)]
        )
        k = int(np.flatnonzero(m).tolist().index(j))
        exact.append(2 * 1.6449 * math.sqrt(s[k, k]))
    ratio = (hi - lo)[miss].mean() / np.mean(exact)
    assert 0.84 <= covered <= 0.96  # ~320 entries: binomial s.d. ~0.017
    assert 0.9 <= ratio <= 1.4


class FakeTrainer:
    """What the early-stopping callback reads from the engine's trainer."""

    def __init__(self, net: torch.nn.Module) -> None:
        self.step, self.should_stop = 0, False
        self.model = type("M", (), {"sampling_network": staticmethod(lambda name: net)})()


def test_held_out_stopping_keeps_the_best_check_and_stops_after_patience_checks():
    net = torch.nn.Linear(1, 1)
    errors = iter([3.0, 2.0, 2.5, 2.1, 1.0])
    stopping = HeldOutStopping(lambda: -next(errors), every=2, patience=2)
    trainer = FakeTrainer(net)
    while not trainer.should_stop:
        trainer.step += 1
        with torch.no_grad():
            net.weight.fill_(float(trainer.step))
        stopping.on_step(trainer, {"bound": float(trainer.step)})
    # checks at steps 2, 4, 6, 8: the best is step 4 (2.0); 6 and 8 do not beat it -> stop at 8
    assert trainer.step == 8 and stopping.best_step == 4
    stopping.on_end(trainer)
    assert net.weight.item() == 4.0  # the best check's weights are restored
    assert stopping.records() == [
        {"step": 2, "bound": 1.5, "val_mse": 3.0},
        {"step": 4, "bound": 3.5, "val_mse": 2.0},
        {"step": 6, "bound": 5.5, "val_mse": 2.5},
        {"step": 8, "bound": 7.5, "val_mse": 2.1},
    ]
    # a fit that ends between checks is scored at its last step too, and keeps it if best
    net, errors = torch.nn.Linear(1, 1), iter([3.0, 2.0, 1.0])
    stopping = HeldOutStopping(lambda: -next(errors), every=2, patience=5)
    trainer = FakeTrainer(net)
    for step in range(1, 6):
        trainer.step = step
        with torch.no_grad():
            net.weight.fill_(float(step))
        stopping.on_step(trainer, {"bound": float(step)})
    stopping.on_end(trainer)
    assert stopping.best_step == 5 and net.weight.item() == 5.0
    assert stopping.records()[-1] == {"step": 5, "bound": 5.0, "val_mse": 1.0}


def test_trains_on_the_engine_and_resumes_bit_identically(tmp_path, monkeypatch):
    monkeypatch.setattr("gankit.tabular.miwae.EVAL_EVERY", 10)  # held-out checks every 10 steps
    _, holed = correlated(120, seed=1)
    params = {"n_steps": 30, "hidden": 16, "n_samples": 50, "batch_size": 16, "patience": 50}
    params["random_state"] = 2
    full = MIWAEImputer(run_dir=str(tmp_path / "full"), **params).fit(holed)
    # the part fit ends between two checks (25): its last-step check must not change the resume
    part = MIWAEImputer(run_dir=str(tmp_path / "part"), **{**params, "n_steps": 25}).fit(holed)
    assert load_state(tmp_path / "part")["step"] == 25
    assert [h["step"] for h in part.history_] == [10, 20, 25]
    part.set_params(n_steps=30).fit(holed, resume=True)
    assert part.steps_done_ == full.steps_done_ == 30
    sa, sb = full.net_.state_dict(), part.net_.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert [h["step"] for h in full.history_] == [10, 20, 30]
    assert full.history_ == part.history_ and full.best_step_ == part.best_step_
    np.testing.assert_array_equal(full.transform(holed), part.transform(holed))
    records = [json.loads(line) for line in (tmp_path / "part/metrics.jsonl").open()]
    assert records[-1]["step"] == 30 and {"loss_miwae", "bound"} <= records[-1].keys()
    assert MIWAEImputer.load(full.save(tmp_path / "model")).run_dir is None  # not saved
    with pytest.raises(ConfigError, match="resume=True"):
        MIWAEImputer(run_dir=str(tmp_path / "full"), **params).fit(holed)
    with pytest.raises(ConfigError, match="run_dir"):
        MIWAEImputer(**params).fit(holed, resume=True)
