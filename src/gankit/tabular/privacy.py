"""Distance to the closest training record (DCR): how near synthetic rows come to real ones."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from gankit.tabular.transform import TableSchema

SPACE = "numbers min-max scaled to [0, 1], categories one-hot, Euclidean"


def distance_space(schema: TableSchema, df: pd.DataFrame) -> np.ndarray:
    """Rows as vectors for nearest-record distances: numbers scaled to [0, 1], one-hots."""
    parts = []
    for col in schema.columns:
        if col.kind == "categorical":
            lookup = {str(v): i for i, v in enumerate(col.categories)}
            idx = np.array([lookup.get(str(v), -1) for v in df[col.name]], dtype=np.int64)
            onehot = np.zeros((len(df), len(col.categories)))
            onehot[idx >= 0, idx[idx >= 0]] = 1.0
            parts.append(onehot)
        else:
            span = (col.max - col.min) or 1.0
            parts.append(((df[col.name].to_numpy(np.float64) - col.min) / span)[:, None])
    return np.concatenate(parts, 1)


class NearestRecords:
    """The training rows in distance space, and distances of other rows to the nearest one."""

    def __init__(self, reference: np.ndarray) -> None:
        self.reference = np.ascontiguousarray(reference, dtype=np.float64)

    def nearest(self, rows: np.ndarray, exclude_self: bool = False) -> np.ndarray:
        """Distance of each row to its nearest training row (its second nearest with
        `exclude_self`, for rows that are training rows)."""
        ref = torch.from_numpy(self.reference)
        out = []
        for chunk in np.array_split(rows, max(1, len(rows) // 1000 + 1)):
            d = torch.cdist(torch.from_numpy(np.ascontiguousarray(chunk, np.float64)), ref)
            d = d.sort(1).values[:, 1] if exclude_self else d.min(1).values
            out.append(d.numpy())
        return np.concatenate(out)

    def report(self, synthetic: np.ndarray, holdout: np.ndarray | None) -> dict:
        """DCR of synthetic rows against holdout rows' DCR (or, without a holdout, each
        training row's distance to its nearest *other* training row)."""
        dcr_synth = self.nearest(synthetic)
        if holdout is not None:
            ref, ref_name = self.nearest(holdout), "holdout->train"
        else:
            ref, ref_name = (
                self.nearest(self.reference, exclude_self=True),
                "train->other train row",
            )
        return {
            "dcr_synthetic_median": float(np.median(dcr_synth)),
            "dcr_reference_median": float(np.median(ref)),
            "reference": ref_name,
            "ratio": float(np.median(dcr_synth) / max(np.median(ref), 1e-12)),
            "exact_copies": int((dcr_synth <= 1e-9).sum()),
            "space": SPACE,
        }
