"""Identifier-like columns are detected at fit and never reproduced in synthetic rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gankit.errors import DataError
from gankit.tabular import TabularGAN
from gankit.tabular.synthetic import numeric_identifier

TINY = {"n_steps": 2, "hidden": (8,), "z_dim": 4, "batch_size": 20, "random_state": 0}


def table(n: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "customer_id": rng.permutation(np.arange(5001, 5001 + n)),
            "visits": rng.integers(0, 5, n),
            "spend": rng.gamma(2.0, 10.0, n),
        }
    )


@pytest.mark.parametrize(
    ("name", "values", "expected"),
    [
        ("customer_id", np.random.default_rng(1).choice(10**6, 40, replace=False), True),
        ("customerId", np.arange(40) * 7, True),
        ("visit", np.arange(100, 140), True),  # numbers the rows
        ("paid", np.arange(40) * 7, False),  # not a run, not id-like
        ("customer_id", np.arange(19), False),  # under ID_MIN_ROWS rows
        ("id", np.r_[np.arange(39), 0], False),  # a repeat: not unique per row
    ],
)
def test_numeric_identifier_rule(name, values, expected):
    assert numeric_identifier(pd.Series(values), name) is expected


def test_integer_key_is_refused_then_never_reproduced():
    with pytest.raises(DataError, match=r"'customer_id' looks like a numeric identifier"):
        TabularGAN(**TINY).fit(table())
    df = table()
    model = TabularGAN(**TINY).fit(df, identifier_columns=["customer_id"])
    rows = model.sample(200, seed=0)
    assert list(rows.columns) == list(df.columns)
    assert not set(rows["customer_id"]) & set(df["customer_id"])  # surrogates only
    assert rows["customer_id"].is_unique


def test_free_text_is_refused_and_floats_are_not_identifiers():
    df = table().drop(columns="customer_id")
    df["note"] = [f"called on day {i}, asked about order {i * 13}" for i in range(len(df))]
    with pytest.raises(DataError, match="'note' looks like an identifier or free text"):
        TabularGAN(**TINY).fit(df)
    model = TabularGAN(**TINY).fit(df.drop(columns="note"))  # 'spend' is unique but a number
    assert [c.kind for c in model.schema_.columns] == ["integer", "continuous"]
