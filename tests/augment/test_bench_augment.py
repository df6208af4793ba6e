"""The `gankit bench augment` protocol pieces: the minority share of the split, the same rows for
every method, shifted digits, and the goal checks on hand-made scores."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("imblearn")

from gankit.bench import augment


@pytest.mark.parametrize(("name", "share", "n_min"), [("breast", 0.10, 28), ("wine", 0.05, 4)])
def test_split_subsamples_the_training_minority_only(name, share, n_min):
    X, y = augment.load_binary(name)
    X_tr, y_tr, X_te, y_te = augment.split(X, y, seed=3, share=share)
    assert int(y_tr.sum()) == n_min  # round(share * majority / (1 - share))
    assert abs(len(y_te) - 0.3 * len(y)) < 1
    assert abs(y_te.mean() - y.mean()) < 0.02  # the test part keeps the real balance
    again = augment.split(X, y, seed=3, share=share)
    np.testing.assert_array_equal(again[0], X_tr)  # every method gets exactly these rows
    assert not {tuple(r) for r in X_te} & {tuple(r) for r in X_tr}


def test_shifted_digits_keep_shape_labels_and_ink():
    x, y = augment.few_digits(2, seed=0)
    xs, ys = augment.shifted(x, y, copies=3, seed=0)
    assert xs.shape == (60, 1, 8, 8) and (ys == y.repeat(3)).all()
    assert float(xs.min()) >= -1.0 - 1e-6 and float(xs.max()) <= 1.0 + 1e-6
    assert not np.allclose(xs[:20].numpy(), x.numpy())  # moved
    assert abs(float((xs + 1).sum()) / float((x.repeat(3, 1, 1, 1) + 1).sum()) - 1) < 0.2


def test_goal_checks_on_known_scores():
    def rows(f1):
        return [{"minority_f1": f1, "balanced_accuracy": 0.5, "roc_auc": 0.5, "seconds": 0.0}]

    per = {
        "none": dict.fromkeys(augment.DOWNSTREAM, rows(0.80)),
        "SMOTE": dict.fromkeys(augment.DOWNSTREAM, rows(0.85)),
        "gankit": {"LR": rows(0.90), "RF": rows(0.79), "GB": rows(0.88)},
    }
    goals = augment.summarise_tables({"t": per})["goals"]
    assert goals["average_minority_f1"]["gankit"] == pytest.approx((0.90 + 0.79 + 0.88) / 3)
    assert goals["gankit_at_least_smote_on_average"] is True
    assert goals["gankit_below_none_in"] == ["t RF"]
    assert goals["gankit_below_smote_in"] == ["t RF"]
