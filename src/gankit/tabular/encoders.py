"""Encodings of table rows for CTGAN (Xu et al. 2019, from the paper).

* `ModeEncoder` — mode-specific normalisation: each continuous column gets a variational
  Gaussian mixture (scikit-learn's BayesianGaussianMixture); a value becomes a one-hot mode and
  a scalar alpha = (x - mu_k) / (4 sigma_k) in [-1, 1]. Discrete columns are one-hot.
* `CondSampler` — training-by-sampling: a discrete column is picked uniformly, a category with
  probability proportional to log(1 + frequency), then a real row with that category. Row
  indices per category are precomputed, so a batch is a few vectorised draws.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import BayesianGaussianMixture

from gankit.nets.tabular import Span
from gankit.tabular.transform import TableSchema


class ModeEncoder:
    """Mode-specific normalisation for continuous columns, one-hot for discrete ones."""

    def __init__(self, schema: TableSchema, modes: dict[str, dict[str, list[float]]]) -> None:
        self.schema = schema
        self.modes = modes  # column -> {"means": [...], "stds": [...]}
        self.spans: list[Span] = []
        self.discrete_spans: list[tuple[int, int, str]] = []  # (start, width, column)
        start = 0
        for col in schema.columns:
            if col.kind == "categorical":
                self.spans.append(Span(len(col.categories), "softmax"))
                self.discrete_spans.append((start, len(col.categories), col.name))
                start += len(col.categories)
            else:
                k = len(modes[col.name]["means"])
                self.spans += [Span(1, "tanh"), Span(k, "softmax")]
                start += 1 + k
        self.width = start

    @classmethod
    def fit(cls, df: pd.DataFrame, schema: TableSchema, seed: int, max_modes: int = 10):
        """Fit one variational GMM per continuous column; keep modes with weight > 0.005."""
        modes = {}
        for col in schema.columns:
            if col.kind == "categorical":
                continue
            values = df[col.name].to_numpy(dtype=np.float64).reshape(-1, 1)
            n_comp = int(min(max_modes, len(np.unique(values))))
            gmm = BayesianGaussianMixture(
                n_components=max(n_comp, 1),
                weight_concentration_prior_type="dirichlet_process",
                weight_concentration_prior=1e-3,
                max_iter=100,
                random_state=seed,
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                gmm.fit(values)
            keep = gmm.weights_ > 0.005
            means = gmm.means_.ravel()[keep]
            stds = np.sqrt(gmm.covariances_.ravel()[keep]).clip(1e-3 * (values.std() + 1e-12))
            modes[col.name] = {"means": means.tolist(), "stds": stds.tolist()}
        return cls(schema, modes)

    def encode(self, df: pd.DataFrame, rng: np.random.Generator) -> np.ndarray:
        """Rows -> encoded matrix; the mode of each value is sampled from its posterior."""
        blocks = []
        for col in self.schema.columns:
            if col.kind == "categorical":
                lookup = {v: i for i, v in enumerate(col.categories)}
                idx = np.array([lookup[v] for v in df[col.name].to_numpy(dtype=object)])
                blocks.append(np.eye(len(col.categories))[idx])
                continue
            x = df[col.name].to_numpy(dtype=np.float64)
            means = np.array(self.modes[col.name]["means"])
            stds = np.array(self.modes[col.name]["stds"])
            logp = -0.5 * ((x[:, None] - means) / stds) ** 2 - np.log(stds)
            prob = np.exp(logp - logp.max(1, keepdims=True))
            prob /= prob.sum(1, keepdims=True)
            pick = (prob.cumsum(1) > rng.random((len(x), 1))).argmax(1)
            alpha = np.clip((x - means[pick]) / (4 * stds[pick]), -0.99, 0.99)
            blocks += [alpha[:, None], np.eye(len(means))[pick]]
        return np.concatenate(blocks, axis=1).astype(np.float32)

    def decode(self, enc: np.ndarray) -> pd.DataFrame:
        """Encoded rows -> table (argmax of one-hots, clipped to the observed range, rounded)."""
        out: dict[str, Any] = {}
        pos = 0
        for col in self.schema.columns:
            if col.kind == "categorical":
                k = len(col.categories)
                cats = np.array(col.categories, dtype=object)
                out[col.name] = cats[enc[:, pos : pos + k].argmax(1)]
                pos += k
                continue
            means = np.array(self.modes[col.name]["means"])
            stds = np.array(self.modes[col.name]["stds"])
            k = len(means)
            alpha = np.clip(enc[:, pos], -1, 1)
            mode = enc[:, pos + 1 : pos + 1 + k].argmax(1)
            x = np.clip(alpha * 4 * stds[mode] + means[mode], col.min, col.max)
            out[col.name] = np.round(x) if col.kind == "integer" else x
            pos += 1 + k
        return pd.DataFrame(out)


class CondSampler:
    """Training-by-sampling: column uniform, category ~ log(1 + count), a real row with it."""

    def __init__(self, data: np.ndarray, discrete_spans: list[tuple[int, int, str]]) -> None:
        self.spans = discrete_spans
        self.offsets = np.cumsum([0] + [w for _, w, _ in discrete_spans])
        self.cond_dim = int(self.offsets[-1])
        self.rows: list[list[np.ndarray]] = []
        self.log_p: list[np.ndarray] = []
        self.freq_p: list[np.ndarray] = []
        for start, width, _ in discrete_spans:
            labels = data[:, start : start + width].argmax(1)
            counts = np.bincount(labels, minlength=width).astype(np.float64)
            self.rows.append([np.flatnonzero(labels == c) for c in range(width)])
            self.log_p.append(np.log1p(counts) / np.log1p(counts).sum())
            self.freq_p.append(counts / counts.sum())

    def train_batch(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
        """Condition vectors, the column picked per row, and matching real row indices."""
        cond = np.zeros((n, self.cond_dim), dtype=np.float32)
        cols = rng.integers(len(self.spans), size=n)
        rows = np.empty(n, dtype=np.int64)
        for j in np.unique(cols):
            sel = np.flatnonzero(cols == j)
            cats = rng.choice(len(self.log_p[j]), size=len(sel), p=self.log_p[j])
            cond[sel, self.offsets[j] + cats] = 1.0
            for c in np.unique(cats):
                which = sel[cats == c]
                pool = self.rows[j][c]
                rows[which] = pool[rng.integers(len(pool), size=len(which))]
        return cond, cols, rows

    def sample_cond(self, n: int, rng: np.random.Generator, fixed: tuple[int, int] | None):
        """Condition vectors for sampling: by original frequency, or one fixed (column, cat)."""
        cond = np.zeros((n, self.cond_dim), dtype=np.float32)
        if not self.spans:
            return cond
        if fixed is not None:
            cond[:, self.offsets[fixed[0]] + fixed[1]] = 1.0
            return cond
        cols = rng.integers(len(self.spans), size=n)
        for j in np.unique(cols):
            sel = np.flatnonzero(cols == j)
            cats = rng.choice(len(self.freq_p[j]), size=len(sel), p=self.freq_p[j])
            cond[sel, self.offsets[j] + cats] = 1.0
        return cond

    def to_dict(self) -> dict[str, Any]:
        """The sampling probabilities, for model.json."""
        return {
            "log_p": [p.tolist() for p in self.log_p],
            "freq_p": [p.tolist() for p in self.freq_p],
        }

    @classmethod
    def from_dict(cls, spans: list[tuple[int, int, str]], state: dict[str, Any]) -> CondSampler:
        """A sampler for sampling only (no training rows), from `to_dict`'s output."""
        sampler = cls.__new__(cls)
        sampler.spans = spans
        sampler.offsets = np.cumsum([0, *(w for _, w, _ in spans)])
        sampler.cond_dim = int(sampler.offsets[-1])
        sampler.rows = []
        sampler.log_p = [np.array(p) for p in state["log_p"]]
        sampler.freq_p = [np.array(p) for p in state["freq_p"]]
        return sampler
