"""Constraints: the mask on hand-made rows, 100 % of samples, refused training data, save/load."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from gankit.errors import CheckpointError, ConfigError, ConstraintError
from gankit.tabular import TabularGAN
from gankit.tabular.constraints import Inequality, Range, check, fit_constraints
from gankit.tabular.tvae import TabularVAE

RULES = [
    {"type": "range", "column": "age", "low": 18, "high": 90},
    {"type": "positive", "column": "amount"},
    {"type": "inequality", "low": "start", "high": "end"},
    {"type": "integer", "column": "age"},
    {"type": "rounding", "column": "amount", "digits": 2},
    {"type": "fixed_combinations", "columns": ["city", "country"]},
]
PLACES = [("Paris", "FR"), ("Lyon", "FR"), ("Berlin", "DE")]


def table(n: int = 150, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    start = rng.uniform(0, 10, n)
    place = rng.integers(len(PLACES), size=n)
    return pd.DataFrame(
        {
            "age": rng.integers(18, 91, n),
            "amount": np.round(rng.gamma(2.0, 20.0, n), 2),
            "start": start,
            "end": start + rng.exponential(2.0, n),
            "city": [PLACES[i][0] for i in place],
            "country": [PLACES[i][1] for i in place],
        }
    )


def test_check_masks_hand_made_rows():
    rows = pd.DataFrame(
        {
            "age": [18, 17, 30.5, 90],
            "amount": [0.0, 1.234, -1.0, 5.1],
            "start": [1.0, 2.0, 3.0, 4.0],
            "end": [1.0, 1.0, 4.0, 5.0],
            "city": ["Paris", "Paris", "Berlin", "Berlin"],
            "country": ["FR", "FR", "FR", "DE"],
        }
    )
    rules = fit_constraints(RULES[:5], table())  # the learned combinations need a table ...
    assert check(rows, rules).tolist() == [True, False, False, True]
    combos = [{"type": "fixed_combinations", "columns": ["city", "country"],
               "combinations": [["Paris", "FR"], ["Berlin", "DE"]]}]  # fmt: skip
    assert check(rows, combos).tolist() == [True, True, False, True]  # ... or a declared list
    assert check(rows, [Inequality("start", "end", strict=True)]).tolist() == [
        False, False, True, True,
    ]  # fmt: skip
    assert check(rows, [Range("amount", high=5.0)]).tolist() == [True, True, True, False]
    assert check(rows, [{"type": "positive", "column": "amount", "strict": True}]).tolist() == [
        False, True, False, True,
    ]  # fmt: skip


@pytest.mark.parametrize("cls", [TabularVAE, TabularGAN])
def test_samples_satisfy_every_constraint_and_survive_save_load(cls, tmp_path):
    tiny = {"n_steps": 20, "hidden": (32,), "random_state": 0}
    tiny |= {"latent_dim": 8} if cls is TabularVAE else {"z_dim": 8, "batch_size": 50}
    model = cls(**tiny, constraints=RULES).fit(table(), discrete_columns=["city", "country"])
    rows = model.sample(400, seed=1)
    assert len(rows) == 400 and check(rows, model.constraints_).all()
    assert rows["age"].dtype.kind == "i" and rows["age"].between(18, 90).all()
    assert (rows["start"] <= rows["end"]).all() and (rows["amount"] >= 0).all()
    assert np.allclose(rows["amount"], rows["amount"].round(2))
    assert set(zip(rows["city"], rows["country"], strict=True)) <= set(PLACES)
    assert 0.0 < model.constraint_acceptance_ < 1.0  # an untrained model breaks a few
    path = model.save(tmp_path / "m")
    spec = json.loads((path / "model.json").read_text())
    combos = spec["constraints"][-1]["combinations"]
    assert sorted(map(tuple, combos)) == sorted(PLACES)  # learned at fit, stored
    loaded = cls.load(path)
    again = loaded.sample(400, seed=1)
    assert again.equals(rows) and check(again, loaded.constraints_).all()
    spec["constraints"][0] = {"type": "range", "column": "age", "low": 90, "high": 18}
    (path / "model.json").write_text(json.dumps(spec))
    with pytest.raises(CheckpointError):  # edited constraints fail the integrity check
        cls.load(path)


def test_violating_training_rows_are_refused_with_their_count():
    bad = table()
    bad.loc[[2, 5, 9], "end"] = bad.loc[[2, 5, 9], "start"] - 1.0
    bad.loc[5, "age"] = 12  # row 5 breaks two constraints: counted once
    with pytest.raises(ConstraintError, match=r"3 training row\(s\)") as info:
        TabularVAE(n_steps=1, constraints=RULES).fit(bad, discrete_columns=["city", "country"])
    assert info.value.count == 3 and "first rows [2, 5, 9]" in str(info.value)


@pytest.mark.parametrize(
    ("rules", "match"),
    [
        ([{"type": "between", "column": "age"}], "'type' one of"),
        ([{"type": "range", "column": "age"}], "finite low <= high"),
        ([{"type": "range", "column": "age", "low": 5, "high": 1}], "finite low <= high"),
        ([{"type": "rounding", "column": "amount", "digits": -1}], "digits"),
        ([{"type": "inequality", "low": "start"}], "inequality"),
        ([{"type": "positive", "column": "nope"}], "no column"),
        ([{"type": "fixed_combinations", "columns": ["city"]}], "at least 2"),
    ],
)
def test_bad_constraints_are_config_errors(rules, match):
    with pytest.raises(ConfigError, match=match):
        fit_constraints(rules, table(30))


def test_dp_refuses_combinations_learned_from_the_data():
    dp = {"epsilon": 1.0, "public": ["ranges"], "categories": {"city": ["Paris", "Lyon",
          "Berlin"], "country": ["FR", "DE"]}}  # fmt: skip
    with pytest.raises(ConfigError, match="would be learned from the data"):
        TabularGAN(n_steps=1, dp=dp, constraints=RULES).fit(table(), ["city", "country"])
