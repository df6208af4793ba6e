"""One table schema and one row check (issue 10 item 6): `validate_rows` for records (the
service) and DataFrames (the estimators), and `TableSchema.from_dict` accepting only what
gankit writes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gankit.errors import CheckpointError, DataError
from gankit.tabular import GANImputer
from gankit.tabular.transform import (
    ColumnInfo,
    RowError,
    TableSchema,
    category_index,
    infer_schema,
    validate_rows,
)


@pytest.fixture
def schema() -> TableSchema:
    df = pd.DataFrame(
        {"age": [20.0, 30, 40, 50], "flag": [0, 1, 1, 0], "city": ["a", "b", "a", "b"]}
    )
    return infer_schema(df, True, categorical=["flag"])


def test_records_errors_name_row_and_column(schema):
    rows = [
        {"age": 30, "flag": 1, "city": "a"},  # fine
        {"age": "30"},  # text in a number column
        {"city": "zzz", "height": 2},  # unseen category, unknown column
        "not a row",
        {"age": float("nan"), "flag": True},  # NaN is not JSON's null; True is not category 1
        {"age": 10**400},
        {"flag": "1", "city": None},  # category 1 written as text: accepted; null: missing
    ]
    errors = validate_rows(rows, schema)
    assert [(e.row, e.column) for e in errors] == [
        (1, "age"),
        (2, "height"),
        (2, "city"),
        (3, None),
        (4, "age"),
        (4, "flag"),
        (5, "age"),
    ]
    assert "non-numeric value '30'" in errors[0].message
    assert "unseen category 'zzz'" in errors[2].message
    assert "finite" in errors[4].message and "too large" in errors[6].message
    assert str(errors[0]) == "row 1, column 'age': " + errors[0].message
    assert str(RowError(3, None, "x")) == "row 3: x"
    assert len(validate_rows([{"age": "x"}] * 50, schema, max_errors=20)) == 20


def test_frame_errors_and_the_estimator_input_check(schema):
    frame = pd.DataFrame(
        {"age": ["20", "oops", None, "inf"], "flag": [0, 1, 7, None], "city": ["a", "b", "c", "a"]}
    )
    errors = validate_rows(frame, schema)
    assert [(e.row, e.column) for e in errors] == [
        (1, "age"),
        (2, "flag"),
        (2, "city"),
        (3, "age"),
    ]
    holed = pd.DataFrame({"a": np.arange(30.0), "b": np.r_[np.nan, np.arange(29.0)]})
    holed["k"] = ["x", "y"] * 15
    imp = GANImputer(n_steps=0, random_state=0).fit(holed)
    bad = holed.head(3).copy()
    bad.loc[2, "k"] = "zzz"
    with pytest.raises(DataError, match=r"^row 2, column 'k': unseen category 'zzz'"):
        imp.transform(bad)


def test_category_index_rules():
    col = ColumnInfo("c", "categorical", "object", categories=[0, 1, "x", True])
    assert category_index(col, 1) == 1 and category_index(col, "1") == 1
    assert category_index(col, True) == 3 and category_index(col, 1.0) == 1
    assert category_index(col, "x") == 2 and category_index(col, "y") is None
    assert category_index(ColumnInfo("d", "categorical", "int64", categories=[0, 1]), True) is None


def test_schema_round_trip_and_strict_parsing(schema):
    data = schema.to_dict()
    assert TableSchema.from_dict(data) == schema
    broken = [
        None,
        {"columns": data["columns"]},  # no frame
        {**data, "extra": 1},
        {**data, "columns": []},
        {**data, "columns": [{**data["columns"][0], "type": "numeric"}]},
        {**data, "columns": [{**data["columns"][0], "kind": "numeric"}]},
        {**data, "columns": [{**data["columns"][0], "min": None}]},
        {**data, "columns": [{**data["columns"][2], "categories": "ab"}]},
        {**data, "columns": [data["columns"][0], data["columns"][0]]},
        {**data, "identifiers": [{"name": "id"}]},
    ]
    for bad in broken:
        with pytest.raises(CheckpointError, match="schema"):
            TableSchema.from_dict(bad)
