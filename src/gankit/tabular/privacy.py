"""How much synthetic rows give away about the rows a model learned from.

`NearestRecords` is the DCR guard the synthesizers use at fit and sampling time. The public
attack functions (`closest_records`, `exact_copy_rate`, `membership_inference`,
`attribute_inference`, `privacy_metrics`) take plain tables (synthetic, train, holdout) and
work for any generator, gankit's or not; docs/privacy.md says how to read each.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from gankit.errors import DataError
from gankit.tabular.transform import TableSchema, infer_schema

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
        out = []
        for chunk in np.array_split(rows, max(1, len(rows) // 1000 + 1)):
            d = _cdist(chunk, self.reference)  # exact: an exact copy is at distance 0
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


# ------------------------------------------------------------------ privacy attacks
# Public functions of the attacks, on plain tables: `train` (the rows the model saw), `holdout`
# (rows of the same population it did not see), `synthetic` (what it generated). Every table is
# put in `distance_space` of a schema inferred from `train` (numbers scaled by train's ranges).

COPY_TOLERANCE = 1e-9


def table_space(
    train: pd.DataFrame, discrete_columns: Sequence[str] = ()
) -> Callable[[pd.DataFrame], np.ndarray]:
    """A function mapping a table with train's columns to `distance_space` of train's schema."""
    schema = infer_schema(train.copy(), True, categorical=list(discrete_columns))
    return lambda frame: distance_space(schema, frame[schema.names].copy())


def _balanced(rows: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """`n` rows drawn without replacement (all rows if there are no more than n)."""
    return rows if len(rows) <= n else rows[rng.choice(len(rows), n, replace=False)]


def closest_records(
    synthetic: pd.DataFrame,
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    discrete_columns: Sequence[str] = (),
    seed: int = 0,
) -> dict[str, float]:
    """Distance to closest record (DCR) and nearest-neighbour distance ratio (NNDR) of the
    synthetic rows against train and against a holdout of the same size (train is subsampled
    to the holdout's size: a larger set is closer by its size alone).

    `share_closer_to_train`: share of synthetic rows nearer to train than to the holdout
    (0.5 = no sign of memorisation; ties count half). `dcr_*_median`: median DCR; `nndr_*`:
    median ratio of the nearest to the second-nearest distance (near 0 = a synthetic row sits
    on one real row rather than between several); `exact_copy_rate`: share of synthetic rows
    equal to a training row, `holdout_copy_rate` the same for holdout rows (the rate that
    chance alone gives, e.g. on all-category tables)."""
    space = table_space(train, discrete_columns)
    rng = np.random.default_rng(seed)
    s, h = space(synthetic), space(holdout)
    t_all = space(train)
    t = _balanced(t_all, len(h), rng)
    d_train, d_hold = _two_nearest(s, t), _two_nearest(s, h)
    closer = (d_train[:, 0] < d_hold[:, 0]).mean() + 0.5 * (d_train[:, 0] == d_hold[:, 0]).mean()
    return {
        "dcr_train_median": float(np.median(d_train[:, 0])),
        "dcr_holdout_median": float(np.median(d_hold[:, 0])),
        "share_closer_to_train": float(closer),
        "nndr_train_median": float(np.median(_ratio(d_train))),
        "nndr_holdout_median": float(np.median(_ratio(d_hold))),
        "exact_copy_rate": exact_copy_rate_space(s, t_all),
        "holdout_copy_rate": exact_copy_rate_space(s, h),
    }


def _two_nearest(rows: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """(rows, 2): distances of each row to its nearest and second-nearest reference row."""
    out = []
    for chunk in np.array_split(rows, max(1, len(rows) // 1000 + 1)):
        d = _cdist(chunk, reference)
        out.append(d.topk(min(2, d.shape[1]), dim=1, largest=False).values.numpy())
    two = np.concatenate(out)
    return two if two.shape[1] == 2 else np.repeat(two, 2, axis=1)


def _ratio(two: np.ndarray) -> np.ndarray:
    return np.where(two[:, 1] > 0, two[:, 0] / np.maximum(two[:, 1], 1e-300), 1.0)


def exact_copy_rate_space(rows: np.ndarray, reference: np.ndarray) -> float:
    """Share of `rows` (in distance space) within `COPY_TOLERANCE` of a reference row."""
    if not len(rows):
        return 0.0
    return float((NearestRecords(reference).nearest(rows) <= COPY_TOLERANCE).mean())


def exact_copy_rate(
    synthetic: pd.DataFrame, train: pd.DataFrame, discrete_columns: Sequence[str] = ()
) -> float:
    """Share of synthetic rows equal to some training row (every modelled column)."""
    space = table_space(train, discrete_columns)
    return exact_copy_rate_space(space(synthetic), space(train))


def membership_inference(
    synthetic: pd.DataFrame,
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    discrete_columns: Sequence[str] = (),
    seed: int = 0,
    k: int = 1,
) -> dict[str, float]:
    """A density-ratio membership-inference attack in the spirit of DOMIAS (van Breugel et al.
    2023): a candidate row is called a member when the synthetic data are denser around it
    than the population is, score = log p_synthetic(x) - log p_reference(x).

    The holdout is split in two halves: one is the attacker's reference sample of the
    population, the other the non-member candidates; as many training rows are the member
    candidates. Both densities are k-nearest-neighbour estimates in distance space
    (p(x) ~ k / (n r_k(x)^dim), Loftsgaarden and Quesenberry 1965), so candidates rank by
    log r_k,reference(x) - log r_k,synthetic(x): no bandwidth to choose. Returns the attack's
    ROC AUC over members vs non-members (0.5 = no leak; 1 = every member found) and the
    candidate counts."""
    from sklearn.metrics import roc_auc_score

    space = table_space(train, discrete_columns)
    rng = np.random.default_rng(seed)
    hold = space(holdout)[rng.permutation(len(holdout))]
    half = len(hold) // 2
    if half < 5:
        raise DataError(
            f"membership_inference needs a holdout of at least 10 rows, got {len(hold)}"
        )
    reference, outsiders = hold[:half], hold[half:]
    members = _balanced(space(train), len(outsiders), rng)
    candidates = np.concatenate([members, outsiders])
    r_synth = _kth_nearest(candidates, space(synthetic), k)
    r_ref = _kth_nearest(candidates, reference, k)
    score = np.log(r_ref + 1e-12) - np.log(r_synth + 1e-12)
    labels = np.r_[np.ones(len(members)), np.zeros(len(outsiders))]
    return {
        "auc": float(roc_auc_score(labels, score)),
        "members": len(members),
        "non_members": len(outsiders),
        "k": k,
    }


def _kth_nearest(rows: np.ndarray, sample: np.ndarray, k: int) -> np.ndarray:
    """Distance of each row to its k-th nearest row of `sample`."""
    d = _cdist(rows, sample)
    return d.topk(min(k, d.shape[1]), dim=1, largest=False).values[:, -1].numpy()


def _cdist(rows: np.ndarray, reference: np.ndarray) -> torch.Tensor:
    """Exact Euclidean distances (no matrix-product shortcut: its rounding, ~1e-8, would hide
    exact copies)."""
    return torch.cdist(
        torch.from_numpy(np.ascontiguousarray(rows, np.float64)),
        torch.from_numpy(np.ascontiguousarray(reference, np.float64)),
        compute_mode="donot_use_mm_for_euclid_dist",
    )


def attribute_inference(
    synthetic: pd.DataFrame,
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    sensitive: str,
    quasi_identifiers: Sequence[str] | None = None,
    discrete_columns: Sequence[str] = (),
) -> dict[str, Any]:
    """Attribute-inference risk for one sensitive column: an attacker who knows a person's
    quasi-identifiers (default: every other column) links them to the nearest synthetic row
    (1-nearest-neighbour on the synthetic data) and reads its sensitive value.

    Scored on the training rows (members) and on the holdout (non-members): `risk` = member
    score - non-member score. Near 0: the synthetic data tell an attacker no more about the
    people in the training set than about anyone else (what the population's statistics
    tell is not a leak); > 0: members' values leak. Score: accuracy for a discrete column,
    1 - mean absolute error / range for a number."""
    from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor

    qi = [c for c in (quasi_identifiers or train.columns) if c != sensitive]
    missing = [c for c in [*qi, sensitive] if c not in train.columns]
    if missing:
        raise DataError(f"attribute_inference: columns {missing} are not in the table")
    space = table_space(train[qi], [c for c in discrete_columns if c in qi])
    discrete = sensitive in discrete_columns or not pd.api.types.is_numeric_dtype(train[sensitive])
    model = (KNeighborsClassifier if discrete else KNeighborsRegressor)(n_neighbors=1)
    target = synthetic[sensitive].astype(str) if discrete else synthetic[sensitive]
    model.fit(space(synthetic), target)

    def score(frame: pd.DataFrame) -> float:
        guess = model.predict(space(frame))
        if discrete:
            return float((guess == frame[sensitive].astype(str).to_numpy()).mean())
        span = float(train[sensitive].max() - train[sensitive].min()) or 1.0
        return float(1.0 - np.abs(guess - frame[sensitive].to_numpy()).mean() / span)

    members, others = score(train), score(holdout)
    return {
        "sensitive": sensitive,
        "quasi_identifiers": qi,
        "member_score": members,
        "non_member_score": others,
        "risk": members - others,
        "score": "accuracy" if discrete else "1 - MAE / range",
    }


def privacy_metrics(
    synthetic: pd.DataFrame,
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    discrete_columns: Sequence[str] = (),
    sensitive: Sequence[str] = (),
    quasi_identifiers: Sequence[str] | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Every attack above in one dict: `closest_records`, `membership_inference` and one
    `attribute_inference` per sensitive column."""
    return {
        "closest_records": closest_records(synthetic, train, holdout, discrete_columns, seed),
        "membership_inference": membership_inference(
            synthetic, train, holdout, discrete_columns, seed
        ),
        "attribute_inference": [
            attribute_inference(synthetic, train, holdout, s, quasi_identifiers, discrete_columns)
            for s in sensitive
        ],
    }
