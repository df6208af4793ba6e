"""Identifier and free-text columns: refused unless declared; declared ones never modelled."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gankit.errors import DataError
from gankit.tabular import GANImputer, TabularGAN
from gankit.tabular.transform import ID_DISTINCT_RATIO, ID_MIN_ROWS, infer_schema

FAST = {"n_steps": 20, "patience": 20}
TINY = {"n_steps": 5, "hidden": (16, 16), "z_dim": 8, "batch_size": 20}


def people(n: int = 120, seed: int = 0, prefix: str = "person") -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 90, n).astype(float)
    return pd.DataFrame(
        {
            "name": [f"{prefix}-{i:04d}" for i in range(n)],
            "age": age,
            "income": age * 10 + rng.normal(0, 5, n),
            "city": rng.choice(["a", "b", "c"], n),
        }
    )


def test_undeclared_identifier_is_refused_with_the_column_and_the_fix():
    df = people()
    for fit in (
        lambda: GANImputer(**FAST).fit(df),
        lambda: TabularGAN(**TINY).fit(df, discrete_columns=["city"]),
    ):
        with pytest.raises(DataError) as err:
            fit()
        msg = str(err.value)
        assert "'name'" in msg and "120 distinct values in 120 rows" in msg
        assert "identifier_columns=['name']" in msg and "--id-columns" in msg


def test_threshold_small_tables_and_repeating_text_are_categories():
    few = pd.DataFrame({"c": [f"v{i}" for i in range(ID_MIN_ROWS - 1)], "x": 1.0})
    assert infer_schema(few, True).columns[0].kind == "categorical"
    n = 100
    distinct = round(n * ID_DISTINCT_RATIO) - 1  # just under the ratio: a category
    values = [f"v{i}" for i in range(distinct)] + ["v0"] * (n - distinct)
    table = pd.DataFrame({"c": values, "x": np.arange(n, dtype=float)})
    assert infer_schema(table, True).columns[0].kind == "categorical"  # x: numbers never are
    with pytest.raises(DataError, match="'c' looks like an identifier"):
        infer_schema(pd.DataFrame({"c": [f"v{i}" for i in range(n)], "x": 1.0}), True)
    # an explicit categorical declaration is the user's choice, not a silent one
    decl = infer_schema(pd.DataFrame({"c": [f"v{i}" for i in range(n)]}), True, ["c"])
    assert decl.columns[0].kind == "categorical"


def test_imputer_passes_declared_identifiers_through_untouched(tmp_path):
    df = people()
    holed = df.copy()
    holed.loc[[1, 5, 9], "income"] = np.nan
    holed.loc[3, "name"] = None  # a missing identifier stays missing
    imp = GANImputer(identifier_columns=["name"], random_state=0, **FAST).fit(holed)
    assert imp.schema_.names == ["age", "income", "city"]  # not modelled
    assert imp.encoder_.schema.width == 2 + 3  # no 120-way one-hot
    out = imp.transform(holed)
    assert list(out.columns) == list(df.columns)
    pd.testing.assert_series_equal(out["name"], holed["name"])
    assert out["income"].notna().all()
    # rows without the identifier column are accepted too
    assert list(imp.transform(holed.drop(columns="name")).columns) == ["age", "income", "city"]
    imp.save(tmp_path / "m")
    again = GANImputer.load(tmp_path / "m").transform(holed)
    pd.testing.assert_frame_equal(again, out)
    assert list(imp.get_feature_names_out()) == list(df.columns)


def test_imputer_identifier_in_an_array_by_index():
    df = people(60)
    arr = df[["age", "name", "income"]].to_numpy(dtype=object)
    arr[2, 2] = np.nan
    imp = GANImputer(identifier_columns=[1], random_state=0, **FAST).fit(arr)
    out = imp.transform(arr)
    assert out.shape == arr.shape and list(out[:, 1]) == list(arr[:, 1])
    assert not pd.isna(out[2, 2])


def test_synth_emits_fresh_surrogates_never_a_training_identifier(tmp_path):
    # training names that already look like surrogates: the prefix must move out of their way
    df = people(60, prefix="synthetic")
    df["name"] = [f"synthetic-{i:06d}" for i in range(1, 61)]
    model = TabularGAN(random_state=0, **TINY).fit(
        df, discrete_columns=["city"], identifier_columns=["name"]
    )
    assert model.schema_.names == ["age", "income", "city"]
    out = model.sample(200, seed=1)
    assert list(out.columns) == list(df.columns)
    training = set(df["name"])
    assert not training & set(out["name"])
    assert out["name"].is_unique and out["name"].str.startswith("synthetic2-").all()
    cond = model.sample(30, conditions={"city": "b"}, seed=2)
    assert not training & set(cond["name"])
    model.save(tmp_path / "s")
    loaded = TabularGAN.load(tmp_path / "s")
    pd.testing.assert_frame_equal(loaded.sample(20, seed=3), model.sample(20, seed=3))
    assert not training & set(loaded.sample(100, seed=4)["name"])
    assert "synthetic-000001" not in (tmp_path / "s" / "model.json").read_text()  # not stored


def test_declared_identifier_errors():
    df = people(40)
    with pytest.raises(DataError, match="identifier_columns: no column named 'nope'"):
        GANImputer(identifier_columns=["nope"]).fit(df)
    with pytest.raises(DataError, match="both categorical and identifier"):
        GANImputer(identifier_columns=["city"], categorical_columns=["city"]).fit(df)
    with pytest.raises(DataError, match="nothing is left to model"):
        infer_schema(df[["name"]].copy(), True, identifiers=["name"])
