"""The service's one-row imputation path (issue 15): numpy instead of pandas, same answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gankit.errors import DataError
from gankit.serve.stream import load_imputer
from gankit.tabular import GANImputer


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    rng = np.random.default_rng(0)
    x0 = rng.normal(size=200)
    df = pd.DataFrame(
        {
            "a": x0,
            "b": 3 * x0 + 0.1 * rng.normal(size=200),
            "count": rng.integers(0, 9, size=200).astype("int64"),
        }
    )
    holed = df.astype({"count": "Int64"}).mask(rng.random(df.shape) < 0.2)
    imp = GANImputer(n_steps=0, random_state=0).fit(holed)
    directory = tmp_path_factory.mktemp("imputer")
    imp.save(directory)
    return load_imputer(directory), imp


def test_fast_path_matches_the_pandas_transform(served):
    model, imp = served
    rows = [{"a": 0.5, "b": None, "count": None}, {"a": None, "b": -3.0, "count": 4}]
    check = model.check_rows(rows)
    fast = model.impute(check.frame)
    slow = imp.transform(check.frame)
    assert np.allclose(fast.to_numpy(np.float64), slow.to_numpy(np.float64))
    assert fast["b"][0] == pytest.approx(1.5, abs=0.5)  # b = 3 a
    assert fast["count"].dtype.kind == "i"  # integers stay integers in the JSON
    out = model.rows_out(fast)
    assert isinstance(out[0]["count"], int) and out[1]["count"] == 4


def test_transform_numeric_checks_its_input(served):
    _, imp = served
    with pytest.raises(DataError, match=r"expected an \(n, 3\) array"):
        imp.transform_numeric(np.zeros((1, 2)))
    with pytest.raises(DataError, match="inf"):
        imp.transform_numeric(np.array([[np.inf, 0.0, 1.0]]))
