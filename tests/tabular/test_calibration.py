"""Multiple imputation: calibration against a Gaussian's exact conditional, Rubin's rules."""

from __future__ import annotations

import numpy as np
import pytest

from gankit.bench.impute_calibration import central_interval, interval_scores, rubin_pool
from gankit.errors import ConfigError
from gankit.tabular import GANImputer


def gaussian_table(n: int = 800, seed: int = 0):
    rng = np.random.default_rng(seed)
    cov = np.array([[1.0, 0.7, 0.3], [0.7, 1.0, 0.5], [0.3, 0.5, 1.0]])
    mu = np.array([1.0, -1.0, 0.5])
    x = rng.multivariate_normal(mu, cov, size=n)
    observed = rng.random(x.shape) >= 0.2
    observed[~observed.any(1), 0] = True
    return x, observed, mu, cov


def exact_conditional(row: np.ndarray, seen: np.ndarray, mu: np.ndarray, cov: np.ndarray):
    """Closed form: mean and sd of x_m | x_o for a Gaussian, on the missing entries."""
    o, m = seen, ~seen
    gain = cov[np.ix_(m, o)] @ np.linalg.inv(cov[np.ix_(o, o)])
    mean = mu[m] + gain @ (row[o] - mu[o])
    var = np.diag(cov[np.ix_(m, m)] - gain @ cov[np.ix_(o, m)])
    return mean, np.sqrt(var)


def test_intervals_match_the_exact_gaussian_conditional():
    x, observed, mu, cov = gaussian_table()
    holed = np.where(observed, x, np.nan)
    imp = GANImputer(n_steps=0, n_components=1, random_state=0).fit(holed)
    draws = np.stack(imp.transform_multiple(holed, 39))
    scores = interval_scores(x, draws, ~observed)
    assert scores["nominal"] == pytest.approx(0.9)
    assert scores["coverage"] == pytest.approx(0.90, abs=0.04)
    lo, hi = central_interval(draws)
    z90 = 1.6449
    rows = np.flatnonzero(~observed.all(1))
    exact = [exact_conditional(x[i], observed[i], mu, cov) for i in rows]
    exact_width = np.concatenate([2 * z90 * sd for _, sd in exact])
    exact_mid = np.concatenate([mean for mean, _ in exact])
    width = np.concatenate([(hi - lo)[i, ~observed[i]] for i in rows])
    mid = np.concatenate([((hi + lo) / 2)[i, ~observed[i]] for i in rows])
    # the average width within 10% of the exact interval's; centres within 0.1 of its width
    assert width.mean() == pytest.approx(exact_width.mean(), rel=0.1)
    assert np.abs(mid - exact_mid).mean() < 0.1 * exact_width.mean()


def test_transform_multiple_is_seeded_and_starts_with_the_posterior_draw():
    x, observed, *_ = gaussian_table(n=200, seed=1)
    holed = np.where(observed, x, np.nan)
    imp = GANImputer(n_steps=0, random_state=3).fit(holed)
    tables = imp.transform_multiple(holed, 3)
    assert len(tables) == 3 and all(t.shape == x.shape for t in tables)
    assert all(np.array_equal(t[observed], x[observed]) for t in tables)
    assert not np.allclose(tables[0], tables[1])
    again = imp.transform_multiple(holed, 3)
    assert all(np.array_equal(a, b) for a, b in zip(tables, again, strict=True))
    single = imp.set_params(sample_posterior=True).transform(holed)
    assert np.array_equal(single, tables[0])
    for bad in (0, 2.5, True):
        with pytest.raises(ConfigError, match="m must be"):
            imp.transform_multiple(holed, bad)


def test_rubin_rules_by_hand():
    pooled = rubin_pool([np.array([1.0]), np.array([3.0])], [np.array([1.0]), np.array([1.0])])
    # Q = 2, U = 1, B = 2, T = U + (1 + 1/2) B = 4, dof = (m-1)(1 + U/((1+1/m)B))^2 = 16/9
    assert pooled["estimate"][0] == 2.0
    assert pooled["variance"][0] == pytest.approx(4.0)
    assert pooled["dof"][0] == pytest.approx(16 / 9)
    from scipy.stats import t

    half = t.ppf(0.975, 16 / 9) * 2.0
    assert pooled["upper"][0] == pytest.approx(2.0 + half)


def test_central_interval_uses_order_statistics():
    draws = np.arange(19.0)[:, None] + np.zeros((19, 2))
    lo, hi = central_interval(draws)  # 19 draws at 90%: k = 1, the minimum and the maximum
    assert lo.tolist() == [0.0, 0.0] and hi.tolist() == [18.0, 18.0]
    lo, hi = central_interval(np.arange(39.0)[:, None])  # k = 2
    assert (lo[0], hi[0]) == (1.0, 37.0)
