"""Tables for `gankit bench impute`: the real ones, and tables a Gaussian mixture cannot fit.

Real (scikit-learn): breast_cancer (569 x 30), wine (178 x 13), iris (150 x 4) and diabetes
(442 x 11: the ten features plus the disease-progression target as the last column).

Nonlinear (issue 15: where a mixture of a few Gaussians is misspecified), each 1,000 rows,
seeded by `seed` so every benchmark seed gets a fresh sample:

* `sine`: x1 ~ U(-pi, pi); x2 = sin(2 x1) + N(0, 0.1^2); x3 = cos(x1) + N(0, 0.1^2): a curve.
* `spiral`: t ~ U(pi/2, 3 pi); (t cos t, t sin t) / 3 + N(0, 0.05^2), and t itself with noise:
  a one-dimensional manifold in three columns, folded so that any single column leaves the
  others multimodal.
* `products`: x1..x4 ~ N(0, 1); x5 = x1 x2 + N(0, 0.1^2); x6 = x3 x4 + N(0, 0.1^2). The best
  linear predictor of x5 from the others is 0; the product is trivial for a network.
* `interact`: 12 columns from a random 2-layer tanh network of 3 latent N(0, 1) factors plus
  N(0, 0.05^2) noise: many columns interacting through a shared nonlinear latent.
* `breast-nl` (from real data): breast_cancer's mean radius and mean texture, standardised, and
  four derived columns r^2, sin(2 r), r * t, exp(t / 2) with N(0, 0.05^2) noise each: real
  marginals, known nonlinear relations.
* `digits` (real, nonlinear): scikit-learn's 8x8 digits, 1,797 x 61 (the 3 always-zero pixel
  columns dropped): pixel intensities on a curved image manifold, not a few Gaussians.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_iris, load_wine

NONLINEAR_ROWS = 1000


def _diabetes(seed: int) -> np.ndarray:
    data = load_diabetes()
    return np.column_stack([data.data, data.target])


def _sine(seed: int) -> np.ndarray:
    rng = np.random.default_rng(1000 + seed)
    x1 = rng.uniform(-np.pi, np.pi, NONLINEAR_ROWS)
    noise = rng.normal(0.0, 0.1, (NONLINEAR_ROWS, 2))
    return np.column_stack([x1, np.sin(2 * x1) + noise[:, 0], np.cos(x1) + noise[:, 1]])


def _spiral(seed: int) -> np.ndarray:
    rng = np.random.default_rng(2000 + seed)
    t = rng.uniform(np.pi / 2, 3 * np.pi, NONLINEAR_ROWS)
    noise = rng.normal(0.0, 0.05, (NONLINEAR_ROWS, 3))
    return np.column_stack([t * np.cos(t) / 3, t * np.sin(t) / 3, t / 3]) + noise


def _products(seed: int) -> np.ndarray:
    rng = np.random.default_rng(3000 + seed)
    x = rng.normal(size=(NONLINEAR_ROWS, 4))
    noise = rng.normal(0.0, 0.1, (NONLINEAR_ROWS, 2))
    return np.column_stack([x, x[:, 0] * x[:, 1] + noise[:, 0], x[:, 2] * x[:, 3] + noise[:, 1]])


def _interact(seed: int) -> np.ndarray:
    weights = np.random.default_rng(4000)  # the same network for every seed
    w1, b1 = weights.normal(size=(3, 16)), weights.normal(size=16)
    w2 = weights.normal(size=(16, 12)) / 2
    rng = np.random.default_rng(4001 + seed)
    z = rng.normal(size=(NONLINEAR_ROWS, 3))
    return np.tanh(np.tanh(z @ w1 + b1) @ w2) + rng.normal(0.0, 0.05, (NONLINEAR_ROWS, 12))


def _breast_nl(seed: int) -> np.ndarray:
    data = load_breast_cancer().data
    rng = np.random.default_rng(5000 + seed)
    r, t = ((data[:, :2] - data[:, :2].mean(0)) / data[:, :2].std(0)).T
    derived = np.column_stack([r**2, np.sin(2 * r), r * t, np.exp(t / 2)])
    return np.column_stack([r, t, derived + rng.normal(0.0, 0.05, derived.shape)])


def _digits(seed: int) -> np.ndarray:
    data = load_digits().data
    return data[:, data.std(0) > 0]


REAL: dict[str, Callable[[int], np.ndarray]] = {
    "breast": lambda seed: load_breast_cancer().data,
    "wine": lambda seed: load_wine().data,
    "iris": lambda seed: load_iris().data,
    "diabetes": _diabetes,
}
NONLINEAR: dict[str, Callable[[int], np.ndarray]] = {
    "sine": _sine,
    "spiral": _spiral,
    "products": _products,
    "interact": _interact,
    "breast-nl": _breast_nl,
    "digits": _digits,
}
TABLES = {**REAL, **NONLINEAR}


def load_table(name: str, seed: int = 0) -> np.ndarray:
    """The complete float64 table `name` (synthetic ones drawn for `seed`)."""
    return np.asarray(TABLES[name](seed), dtype=np.float64)
