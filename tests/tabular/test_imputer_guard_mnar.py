"""GANImputer issue 15: the cross-fit guard of the network stage and self-masking (MNAR)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import gankit.tabular.imputer as imputer_module
from gankit.bench.impute_calibration import interval_scores
from gankit.errors import ConfigError
from gankit.tabular import GANImputer
from gankit.tabular.gaussian import fit_logistic_columns, tilted_conditional_mean
from gankit.tabular.imputer import cross_fit_guard


def test_guard_by_hand_when_every_row_gains():
    # one checkpoint gains [3, 1, 2, 2] on the 4 held-out rows: both halves choose it, so the
    # crossed gains are those; mean 2, sample sd sqrt(2/3), z = 2 / (sqrt(2/3) / 2)
    gains = [torch.zeros(4, dtype=torch.float64), torch.tensor([3.0, 1.0, 2.0, 2.0]).double()]
    out = cross_fit_guard(gains, count=8.0, seed=0)
    assert out["z"] == pytest.approx(2.0 / (math.sqrt(2.0 / 3.0) / 2.0))
    assert out["gain"] == pytest.approx(8.0 / 8.0)
    assert out["rows"] == 4


def test_guard_sees_through_selection_on_the_same_rows():
    # checkpoint i gains 10 on row i and loses 1 on every other row: the best checkpoint on all
    # rows "gains" 10 - 3 = 7, but a checkpoint chosen by one half only loses on the other half
    rows = 4
    gains = [torch.zeros(rows, dtype=torch.float64)]
    for i in range(rows):
        g = -torch.ones(rows, dtype=torch.float64)
        g[i] = 10.0
        gains.append(g)
    assert max(float(g.sum()) for g in gains) == 7.0
    out = cross_fit_guard(gains, count=4.0, seed=0)
    assert out["gain"] == pytest.approx(-1.0) and out["z"] == -math.inf


def test_guard_rejects_a_network_on_a_pure_gaussian(monkeypatch):
    # a Gaussian table: the mixture's conditional mean is optimal, nothing is left for the
    # network. The early stopping is made to adopt any step that is not 50% worse than the best
    # (MIN_GAIN -0.5), so a step > 0 is chosen; the guard must send the model back to the
    # mixture (best_step_ 0).
    monkeypatch.setattr(imputer_module, "MIN_GAIN", -0.5)
    for seed in range(2):
        rng = np.random.default_rng(seed)
        cov = np.array([[1.0, 0.8, 0.3], [0.8, 1.0, 0.5], [0.3, 0.5, 1.0]])
        x = rng.multivariate_normal(np.zeros(3), cov, size=150)
        x[rng.random(x.shape) < 0.2] = np.nan
        x[np.isnan(x).all(1), 0] = 0.0
        imp = GANImputer(
            n_steps=100, patience=100, n_components=1, ridge=1e-3, random_state=seed
        ).fit(x)
        assert imp.guard_["step"] > 0, "the early stopping was meant to choose a step"
        assert imp.best_step_ == 0 and imp.guard_["z"] < 2.0, imp.guard_


def self_masked_gaussian(n: int, seed: int, slope: float = 2.0):
    """4 correlated N(mu, cov) columns; P(missing) = sigmoid(slope * z - 1.5), z = the entry's
    own standardised value (~28% missing, large values hidden)."""
    rng = np.random.default_rng(seed)
    cov = np.array(
        [[1.0, 0.6, 0.3, 0.0], [0.6, 1.0, 0.5, 0.2], [0.3, 0.5, 1.0, 0.4], [0.0, 0.2, 0.4, 1.0]]
    )
    mu = np.array([1.0, -1.0, 0.5, 0.0])
    x = rng.multivariate_normal(mu, cov, size=n)
    observed = rng.random(x.shape) >= 1.0 / (1.0 + np.exp(-(slope * (x - mu) - 1.5)))
    observed[~observed.any(1), 0] = True
    return x, observed, mu


def fitted_means(imp: GANImputer, holed: np.ndarray) -> np.ndarray:
    lo = np.nanmin(holed, 0)
    return imp.mus_[0].numpy() * (np.nanmax(holed, 0) - lo) + lo


def test_self_masking_recovers_means_and_coverage():
    x, observed, mu = self_masked_gaussian(800, seed=0)
    holed = np.where(observed, x, np.nan)
    scores = {}
    for mechanism in ("mar", "self-masking"):
        imp = GANImputer(
            n_steps=0, n_components=1, missing_mechanism=mechanism, random_state=0
        ).fit(holed)
        bias = np.abs(fitted_means(imp, holed) - mu).mean()
        draws = np.stack(imp.set_params(random_state=1).transform_multiple(holed, 19))
        scores[mechanism] = (bias, interval_scores(x, draws, ~observed)["coverage"])
    (mar_bias, mar_cover), (mnar_bias, mnar_cover) = scores["mar"], scores["self-masking"]
    # measured on seeds 0-4 at this size: MAR bias 0.26-0.31, coverage 0.65-0.70; self-masking
    # bias 0.05-0.07 (at most 0.26x MAR's), coverage 0.89-0.93 (before the mode-centred
    # proposal, the per-sd slope penalty, the one-sided clip and the bootstrap refits behind
    # the draws: 0.05-0.11 and 0.83-0.89)
    assert mar_bias > 0.2 and mar_cover < 0.75
    assert mnar_bias < 0.12 and mnar_bias < 0.4 * mar_bias
    assert 0.85 <= mnar_cover <= 0.95


def test_self_masking_save_load_keeps_the_mechanism(tmp_path):
    x, observed, _ = self_masked_gaussian(300, seed=1)
    holed = np.where(observed, x, np.nan)
    imp = GANImputer(n_steps=0, missing_mechanism="self-masking", random_state=0).fit(holed)
    assert imp.mechanism_.shape == (2, 4) and (imp.mechanism_[0] > 0).all()
    imp.save(tmp_path / "m")
    back = GANImputer.load(tmp_path / "m")
    assert back.missing_mechanism == "self-masking"
    assert torch.equal(back.mechanism_, imp.mechanism_)
    assert np.array_equal(back.transform(holed), imp.transform(holed))
    # the bootstrap refits behind the draws travel with the model
    assert imp.boot_["mechanism"].shape == (imputer_module.MNAR_BOOTSTRAP, 2, 4)
    assert all(torch.equal(back.boot_[k], v) for k, v in imp.boot_.items())
    again = zip(back.transform_multiple(holed, 2), imp.transform_multiple(holed, 2), strict=True)
    assert all(np.array_equal(a, b) for a, b in again)
    mar = GANImputer(n_steps=0, random_state=0).fit(holed)
    assert mar.mechanism_ is None
    assert (imp.transform(holed) - mar.transform(holed))[~observed].mean() > 0.1


def test_self_masking_bad_settings():
    x, observed, _ = self_masked_gaussian(50, seed=2)
    holed = np.where(observed, x, np.nan)
    with pytest.raises(ConfigError, match="missing_mechanism must be"):
        GANImputer(missing_mechanism="mnar").fit(holed)
    with pytest.raises(ConfigError, match="stages='full' or 'mixture'"):
        GANImputer(missing_mechanism="self-masking", stages="network").fit(holed)


def test_tilt_and_logistic_by_hand():
    # a 1-D standard normal, missing with sigmoid(a x + b): for b << 0 the tilt is exp(a x), the
    # tilted mean is a (here 0.5); the logistic fit recovers known coefficients
    x = torch.zeros((1, 1), dtype=torch.float64)
    m = torch.zeros((1, 1), dtype=torch.float64)
    mixture = (torch.ones(1).double(), torch.zeros(1, 1).double(), torch.eye(1).double()[None])
    mech = torch.tensor([[0.5], [-12.0]], dtype=torch.float64)
    gen = torch.Generator().manual_seed(0)
    mean = tilted_conditional_mean(x, m, mixture, mech, 20000, gen)
    assert float(mean) == pytest.approx(0.5, abs=0.02)
    v = torch.linspace(-3, 3, 4001, dtype=torch.float64).unsqueeze(1)
    labels = torch.sigmoid(1.5 * v - 0.5)  # soft labels: the exact optimum is (1.5, -0.5)
    fit = fit_logistic_columns(v, labels, torch.zeros(2, 1, dtype=torch.float64), l2=0.0)
    assert fit[:, 0].tolist() == pytest.approx([1.5, -0.5], abs=1e-6)


def test_few_row_numpy_path_equals_the_batched_path():
    # `NumpyMixture` (<= FAST_ROWS rows) must give a row the same fill as the torch path does
    # in a batch, with one component and with several, and the fitted means to an empty row
    rng = np.random.default_rng(0)
    x = np.vstack([rng.normal(0, 1, (150, 5)), rng.normal(4, 0.5, (150, 5))])
    x[:, 4] = np.round(x[:, 4] * 10)  # an integer column: rounded the same way
    x[rng.random(x.shape) < 0.3] = np.nan
    x[np.isnan(x).all(1), 0] = 0.0
    for k in (1, 3):
        imp = GANImputer(n_steps=0, n_components=k, ridge=1e-3, random_state=0).fit(x)
        assert imp._fast_fill(x[:1]) is not None and imp._fast_fill(x[:40]) is None
        batch = imp.transform(x[:40])
        rows = np.vstack([imp.transform_numeric(x[i : i + 1]) for i in range(40)])
        assert np.array_equal(rows, batch)
    empty = np.full((1, 5), np.nan)
    with pytest.warns(UserWarning, match="no observed value"):
        assert np.array_equal(imp.transform(empty), imp.transform(np.vstack([empty] * 9))[:1])


def test_few_row_path_with_a_network_step_equals_the_torch_path(monkeypatch):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(120, 4))
    x[:, 3] = x[:, 0] * x[:, 1]
    x[rng.random(x.shape) < 0.25] = np.nan
    x[np.isnan(x).all(1), 0] = 0.0
    imp = GANImputer(n_steps=60, patience=50, n_components=1, ridge=1e-3, random_state=0).fit(x)
    imp.best_step_ = 60  # use the trained network whatever the guard said
    fast = [imp.transform(x[i : i + 1]) for i in range(10)]
    monkeypatch.setattr(imputer_module, "FAST_ROWS", 0)
    slow = [imp.transform(x[i : i + 1]) for i in range(10)]
    assert all(np.array_equal(a, b) for a, b in zip(fast, slow, strict=True))
    assert not np.array_equal(np.vstack(slow), imp.set_params(n_draws=1).transform(x[:10]))
