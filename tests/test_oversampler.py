"""GANOverSampler: imbalanced-learn semantics, only the requested classes, original rows first,
Pipeline use, imbalanced-learn's own sampler checks, `gankit augment`, and bad input."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("imblearn")

from imblearn.over_sampling import RandomOverSampler
from imblearn.pipeline import Pipeline
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

from gankit.augment import GANOverSampler
from gankit.errors import ConfigError, DataError

TINY = {"hidden": (16,), "z_dim": 8, "batch_size": 40, "pac": 4}


def tiny(**kw):
    return GANOverSampler(random_state=0, n_steps=2, generator_params=TINY, **kw)


@pytest.fixture(autouse=True)
def _quick_modes(monkeypatch):
    """Speed only: the mode-specific normaliser's mixture runs 5 EM iterations instead of 100
    (it dominates these tiny fits)."""
    from gankit.tabular import encoders

    mixture = encoders.BayesianGaussianMixture
    monkeypatch.setattr(
        encoders, "BayesianGaussianMixture", lambda **kw: mixture(**{**kw, "max_iter": 5})
    )


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(
        n_samples=120,
        n_features=4,
        n_informative=3,
        n_redundant=0,
        n_classes=3,
        weights=[0.15, 0.3, 0.55],
        random_state=0,
    )
    return X, y


@pytest.mark.parametrize(
    "strategy",
    ["auto", "minority", "not majority", "not minority", "all", {0: 40, 1: 50}, "callable"],
)
def test_counts_match_random_oversampler(data, strategy):
    X, y = data
    if strategy == "callable":
        strategy = lambda y: {0: int(np.sum(y == 0)) + 7}  # noqa: E731
    X_res, y_res = tiny(sampling_strategy=strategy).fit_resample(X, y)
    _, y_ref = RandomOverSampler(sampling_strategy=strategy, random_state=0).fit_resample(X, y)
    assert Counter(y_res) == Counter(y_ref)
    assert X_res.shape == (len(y_res), X.shape[1]) and X_res.dtype == X.dtype
    np.testing.assert_array_equal(X_res[: len(X)], X)  # original rows first, unchanged
    np.testing.assert_array_equal(y_res[: len(y)], y)


def test_float_strategy_binary_and_only_requested_classes(data):
    X, y = data
    keep = y != 2
    Xb, yb = X[keep], y[keep]
    _, y_res = tiny(sampling_strategy=0.8).fit_resample(Xb, yb)
    _, y_ref = RandomOverSampler(sampling_strategy=0.8).fit_resample(Xb, yb)
    assert Counter(y_res) == Counter(y_ref)
    # a dict that asks for class 0 only: every added row is class 0
    sampler = tiny(sampling_strategy={0: 30})
    _, y_res = sampler.fit_resample(X, y)
    assert set(y_res[len(y) :]) == {0} and len(y_res) - len(y) == 30 - np.sum(y == 0)
    assert sampler.n_generated_[0] == 30 - np.sum(y == 0) and sampler.n_generated_[1] == 0


def test_dataframe_with_discrete_and_integer_columns_keeps_types():
    rng = np.random.default_rng(0)
    X = pd.DataFrame(
        {
            "a": rng.normal(size=80),
            "n": rng.integers(0, 5, 80),
            "c": rng.choice(["u", "v", "w"], 80),
        },
        index=np.arange(100, 180),
    )
    y = pd.Series(np.r_[np.zeros(60, int), np.ones(20, int)], name="t", index=X.index)
    vae = GANOverSampler(
        random_state=0, n_steps=2, generator="vae", generator_params={"hidden": (16,)}
    )
    X_res, y_res = vae.fit_resample(X, y)
    assert isinstance(X_res, pd.DataFrame) and isinstance(y_res, pd.Series)
    assert list(X_res.columns) == ["a", "n", "c"] and y_res.name == "t"
    assert X_res.dtypes["n"] == X.dtypes["n"] and X_res.dtypes["a"] == X.dtypes["a"]
    assert set(X_res["c"]) <= {"u", "v", "w"}
    pd.testing.assert_frame_equal(X_res.iloc[:80].reset_index(drop=True), X.reset_index(drop=True))
    assert Counter(y_res) == {0: 60, 1: 60}


def test_classifier_filter_keeps_confident_rows(data):
    X, y = data
    sampler = tiny(sampling_strategy={0: 30}, filter="classifier", confidence=0.2)
    _, y_res = sampler.fit_resample(X, y)
    assert Counter(y_res)[0] == 30 and 0 < sampler.acceptance_[0] <= 1
    impossible = tiny(sampling_strategy={0: 30}, filter="classifier", confidence=1.0, max_rounds=1)
    with pytest.raises(DataError, match=r"filters kept 0 of 32 .*'classifier': 32"):
        impossible.fit_resample(X, y)


def test_schema_and_discriminator_filters(data):
    """The schema filter drops rows outside X's range and rows that break a constraint; the
    discriminator keeps the top `keep_top` share of each draw by the critic's score."""
    X, y = data
    Xc, yc = pd.DataFrame(X, columns=["a", "b", "c", "d"]), y
    Xc["b"] = Xc["a"] + np.abs(Xc["b"])  # a <= b in every real row
    rule = {"type": "inequality", "low": "a", "high": "b"}
    sampler = tiny(
        sampling_strategy={0: 30},
        filter=["discriminator", "schema"],
        keep_top=0.5,
        constraints=[rule],
    )
    X_res, y_res = sampler.fit_resample(Xc, yc)
    added = X_res.iloc[len(Xc) :]
    assert len(added) == 30 - np.sum(yc == 0) and set(y_res[len(yc) :]) == {0}
    assert ((added >= Xc.min()) & (added <= Xc.max())).all().all()  # within X's range
    assert (added["a"] <= added["b"]).all()  # and the constraint holds
    rejected = sampler.rejected_[0]
    assert list(rejected) == ["schema", "discriminator"]  # applied in this order
    assert rejected["schema"] > 0 and rejected["discriminator"] > 0
    assert sampler.acceptance_[0] <= 0.55  # the critic keeps about half of what passes
    scores = sampler.generator_.critic_scores(sampler.generator_.sample(8, seed=0))
    assert scores.shape == (8,) and np.isfinite(scores).all()


def test_bad_filters_are_config_errors(data):
    X, y = data
    with pytest.raises(ConfigError, match="unknown filter"):
        tiny(filter=["schema", "vibes"]).fit_resample(X, y)
    with pytest.raises(ConfigError, match="needs the GAN's critic"):
        tiny(filter="discriminator", generator="vae").fit_resample(X, y)
    with pytest.raises(ConfigError, match="keep_top"):
        tiny(filter="discriminator", keep_top=0.0).fit_resample(X, y)
    broken = [{"type": "range", "column": "a", "high": 0.0}]  # the real rows break it
    with pytest.raises(DataError, match="violate"):
        tiny(filter="schema", constraints=broken).fit_resample(
            pd.DataFrame(X, columns=list("abcd")).assign(a=1.0), y
        )


def test_in_an_imblearn_pipeline(data):
    from sklearn.model_selection import cross_val_score

    X, y = data
    pipe = Pipeline([("over", tiny()), ("clf", LogisticRegression(max_iter=200))])
    assert pipe.fit(X, y).predict(X).shape == y.shape
    assert len(cross_val_score(pipe, X, y, cv=2, scoring="balanced_accuracy")) == 2


def test_imblearn_sampler_checks():
    """imbalanced-learn's own sampler checks (the ones its tags select for this sampler), with
    one documented exception: check_samplers_string uses a table of one 3-valued column, where
    every possible row is a training row, and TabularGAN never returns copies of training rows
    (a mixed table with strings is tested above)."""
    from imblearn.utils.estimator_checks import _yield_sampler_checks

    sampler = GANOverSampler(random_state=0, n_steps=1, generator_params=TINY)
    ran = []
    for check in _yield_sampler_checks(sampler):
        if check.__name__ == "check_samplers_string":
            continue
        check("GANOverSampler", sampler)
        ran.append(check.__name__)
    assert "check_samplers_fit_resample" in ran and "check_samplers_sparse" in ran
    from imblearn.utils.estimator_checks import check_param_validation

    check_param_validation("GANOverSampler", sampler)  # every parameter's bad values refused


def test_bad_input_is_a_gankit_error(data):
    X, y = data
    with pytest.raises(ConfigError, match=r"class\(es\) \[7\]"):
        tiny(sampling_strategy={7: 100}).fit_resample(X, y)
    y_nan = y.astype(float)
    y_nan[5] = np.nan
    with pytest.raises(DataError, match="missing label"):
        tiny().fit_resample(X, y_nan)
    with pytest.raises(DataError, match="120 rows but y has 119"):
        tiny().fit_resample(X, y[:-1])
    with pytest.raises(DataError, match="one class"):
        tiny().fit_resample(X, np.zeros(len(X)))
    with pytest.raises(ConfigError, match="generator"):
        tiny(generator="diffusion").fit_resample(X, y)
    y_one = y.copy()
    y_one[np.flatnonzero(y == 0)[1:]] = 1  # class 0 has a single row
    with pytest.raises(DataError, match="fewer than 2 rows"):
        tiny().fit_resample(X, y_one)


def test_gankit_augment_command(tmp_path, data, capsys):
    from gankit.cli import main

    X, y = data
    table = pd.DataFrame(X, columns=["a", "b", "c", "d"]).assign(label=np.array(["x", "y", "z"])[y])
    table.to_csv(tmp_path / "t.csv", index=False)
    out = tmp_path / "aug.csv"
    argv = ["augment", str(tmp_path / "t.csv"), "--target", "label", "--out", str(out)]
    assert main([*argv, "--steps", "2", "--strategy", "x=40"]) == 0
    printed = capsys.readouterr().out
    assert "before" in printed and "added" in printed
    assert (tmp_path / "aug.model" / "model.json").is_file()  # the generator, beside the CSV
    result = pd.read_csv(out)
    assert list(result.columns) == list(table.columns)
    pd.testing.assert_frame_equal(result.iloc[: len(table)], table)
    assert Counter(result["label"]) == {"x": 40, **{c: int(np.sum(table.label == c)) for c in "yz"}}
    assert main([*argv, "--steps", "2", "--strategy", "nope=4"]) == 2
    assert "does not contain" in capsys.readouterr().err
