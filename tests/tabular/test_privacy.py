"""Privacy attacks: a memorising "model" must be caught, an independent sample must not."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gankit.errors import DataError
from gankit.tabular.privacy import (
    attribute_inference,
    closest_records,
    exact_copy_rate,
    membership_inference,
    privacy_metrics,
)

N = 300


def population(n: int, seed: int) -> pd.DataFrame:
    """Four correlated numbers and a category that depends on them (noisily)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 4)) @ np.array(
        [[1, 0.5, 0, 0], [0, 1, 0.3, 0], [0, 0, 1, 0.6], [0, 0, 0, 1]]
    )
    label = np.where(z[:, 0] + rng.normal(0, 1.0, n) > 0, "high", "low")
    frame = pd.DataFrame(z, columns=["a", "b", "c", "d"])
    frame["label"] = label
    return frame


TRAIN, HOLDOUT = population(N, 1), population(N, 2)


def memorised(seed: int = 3) -> pd.DataFrame:
    """A "model" that memorised: its rows are the training rows plus tiny noise."""
    rng = np.random.default_rng(seed)
    out = TRAIN.copy()
    out[["a", "b", "c", "d"]] += rng.normal(0, 1e-3, (N, 4))
    return out


INDEPENDENT = population(N, 4)  # a perfect generator: fresh rows of the same distribution


def test_membership_inference_catches_memorisation_not_a_fresh_sample():
    leak = membership_inference(memorised(), TRAIN, HOLDOUT, ["label"])
    assert leak["auc"] > 0.9 and leak["members"] == leak["non_members"] == 150
    # a fresh sample: 0.5 within 0.1 (the AUC's std over 150 + 150 candidates is ~0.033)
    for seed in (0, 1):
        fresh = membership_inference(INDEPENDENT, TRAIN, HOLDOUT, ["label"], seed=seed)
        assert abs(fresh["auc"] - 0.5) < 0.1


def test_closest_records_and_copies():
    leak = closest_records(memorised(), TRAIN, HOLDOUT, ["label"])
    fresh = closest_records(INDEPENDENT, TRAIN, HOLDOUT, ["label"])
    assert leak["dcr_train_median"] < 0.01 < fresh["dcr_train_median"]
    assert leak["share_closer_to_train"] > 0.95
    assert 0.4 < fresh["share_closer_to_train"] < 0.6
    assert leak["nndr_train_median"] < 0.1 < fresh["nndr_train_median"]
    assert abs(fresh["nndr_train_median"] - fresh["nndr_holdout_median"]) < 0.1
    assert leak["exact_copy_rate"] == 0.0  # noise of 1e-3 is no exact copy ...
    copies = pd.concat([TRAIN.iloc[:75], INDEPENDENT.iloc[:225]], ignore_index=True)
    assert exact_copy_rate(copies, TRAIN, ["label"]) == 0.25  # ... but 75 of 300 copies are
    assert closest_records(copies, TRAIN, HOLDOUT, ["label"])["holdout_copy_rate"] == 0.0


def test_closest_records_by_hand():
    """1-D: train {0, 10}, holdout {4, 10}; synthetic 1 and 9 (numbers scaled by train's
    range 10): DCR to train 0.1, 0.1; to holdout 0.3, 0.1; NNDR to train 1/9 for both."""
    train = pd.DataFrame({"x": [0.0, 10.0]})
    holdout = pd.DataFrame({"x": [4.0, 10.0]})
    out = closest_records(pd.DataFrame({"x": [1.0, 9.0]}), train, holdout)
    assert out["dcr_train_median"] == pytest.approx(0.1)
    assert out["dcr_holdout_median"] == pytest.approx(0.2)
    assert out["share_closer_to_train"] == pytest.approx(0.75)  # one nearer, one tie
    assert out["nndr_train_median"] == pytest.approx(1 / 9)


def test_attribute_inference_risk():
    leak = attribute_inference(memorised(), TRAIN, HOLDOUT, "label", discrete_columns=["label"])
    fresh = attribute_inference(INDEPENDENT, TRAIN, HOLDOUT, "label", discrete_columns=["label"])
    assert leak["member_score"] == 1.0 and leak["risk"] > 0.2
    assert abs(fresh["risk"]) < 0.12  # 1-NN accuracies over 300 + 300 rows: std ~0.04
    number = attribute_inference(memorised(), TRAIN, HOLDOUT, "d", ["a", "b"], ["label"])
    assert number["score"] == "1 - MAE / range" and number["risk"] > 0.1
    with pytest.raises(DataError, match="not in the table"):
        attribute_inference(INDEPENDENT, TRAIN, HOLDOUT, "nope")


def test_privacy_metrics_bundle_and_small_holdout():
    out = privacy_metrics(INDEPENDENT, TRAIN, HOLDOUT, ["label"], sensitive=["label"])
    assert set(out) == {"closest_records", "membership_inference", "attribute_inference"}
    assert out["attribute_inference"][0]["sensitive"] == "label"
    with pytest.raises(DataError, match="at least 10 rows"):
        membership_inference(INDEPENDENT, TRAIN, HOLDOUT.iloc[:6], ["label"])


def test_bench_privacy_scores_flag_a_copying_synthesizer():
    """The bench's scoring on wine: the training rows themselves as "synthetic" data are all
    exact copies and give the membership attack a perfect AUC; the holdout is not copied."""
    from types import SimpleNamespace

    from sklearn.model_selection import train_test_split

    from gankit.bench import BENCHMARKS
    from gankit.bench.privacy import _scored
    from gankit.bench.synth import load_table
    from gankit.tabular.transform import infer_schema

    assert BENCHMARKS["privacy"] == "gankit.bench.privacy"
    frame = load_table("wine")
    train, test = train_test_split(frame, test_size=0.3, stratify=frame["target"], random_state=0)
    train, test = train.reset_index(drop=True), test.reset_index(drop=True)
    ref = SimpleNamespace(schema_=infer_schema(train.copy(), True, categorical=["target"]))
    row = _scored("wine", train, ref, train, test, 0, 0.0)
    assert row["copies"] == 1.0 and row["mia_auc"] == 1.0
    # train is subsampled to the holdout's 54 rows: those 54 of the 124 copies are at distance
    # 0, the other 70 are compared with a subsample they are not in, yet most are still closer
    assert row["closer"] > 0.65
    assert row["shape"] == 1.0  # the training table against itself
