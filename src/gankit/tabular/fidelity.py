"""Fidelity of a synthetic table to a real one: column shapes and pair correlations."""

from __future__ import annotations

import numpy as np
import pandas as pd

from gankit.tabular.transform import TableSchema


def column_shape_score(real: pd.DataFrame, synth: pd.DataFrame, schema: TableSchema) -> float:
    """Mean over columns of 1 - KS statistic (numbers) or 1 - total variation (categories)."""
    from scipy.stats import ks_2samp

    scores = []
    for col in schema.columns:
        if col.kind == "categorical":
            p = real[col.name].astype(str).value_counts(normalize=True)
            q = synth[col.name].astype(str).value_counts(normalize=True)
            idx = p.index.union(q.index)
            tv = 0.5 * np.abs(p.reindex(idx, fill_value=0) - q.reindex(idx, fill_value=0)).sum()
            scores.append(1.0 - tv)
        else:
            a = real[col.name].to_numpy(np.float64)
            b = synth[col.name].to_numpy(np.float64)
            scores.append(1.0 - ks_2samp(a, b).statistic)
    return float(np.mean(scores))


def correlation_score(real: pd.DataFrame, synth: pd.DataFrame, schema: TableSchema) -> float:
    """Mean over pairs of numeric columns of 1 - |rho_real - rho_synth| / 2 (Pearson)."""
    names = [c.name for c in schema.columns if c.kind != "categorical"]
    if len(names) < 2:
        return 1.0
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.nan_to_num(np.corrcoef(real[names].to_numpy(np.float64), rowvar=False))
        s = np.nan_to_num(np.corrcoef(synth[names].to_numpy(np.float64), rowvar=False))
    upper = np.triu_indices(len(names), 1)
    return float(np.mean(1.0 - np.abs(r[upper] - s[upper]) / 2.0))


def fidelity_score(real: pd.DataFrame, synth: pd.DataFrame, schema: TableSchema) -> float:
    """Average of column-shape and pair-correlation similarity (both in [0, 1])."""
    return 0.5 * (column_shape_score(real, synth, schema) + correlation_score(real, synth, schema))
