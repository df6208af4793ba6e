"""`GANOverSampler`: imbalanced-learn over-sampling with rows drawn from a tabular generator.

`fit_resample(X, y)` fits a `TabularGAN` (or `TabularVAE`) on X with y as one more discrete
column, then draws `sample(k, conditions={target: class})` for each class the
`sampling_strategy` asks rows for (imbalanced-learn's own `check_sampling_strategy` decides the
counts, so "auto", "minority", "not majority", "not minority", "all", a float, a dict and a
callable mean exactly what they mean for `RandomOverSampler` or `SMOTE`). The original rows come
first, unchanged, then the generated rows class by class. TabularGAN is fitted with the label as
its `class_column` (an auxiliary classifier makes the whole row follow the requested class).

Filters (`filter`, one name or a list, applied in this order) check generated rows before they
enter the training set: "schema" (no missing cell, categories seen in X, numbers finite and
within X's range per column, and the `constraints` of `gankit.tabular.constraints` over X's
column names), "classifier" (a random forest trained on the real rows gives the requested class
probability >= `confidence`), "discriminator" (TabularGAN's critic: keep the `keep_top` share of
each draw it rates highest — discriminator rejection, Azadi et al. 2019). More rows are drawn
(at most `max_rounds` times) until the count is met, else a `DataError` says which filter
rejected how many.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from gankit.errors import ConfigError, DataError, require

require("imblearn", "augment")

from imblearn.over_sampling.base import BaseOverSampler  # noqa: E402
from sklearn.utils import check_random_state  # noqa: E402
from sklearn.utils._param_validation import Interval, StrOptions  # noqa: E402
from sklearn.utils.validation import validate_data  # noqa: E402

__all__ = ["GANOverSampler"]

TARGET = "__gankit_target__"
MIN_CLASS_ROWS = 2  # a class is learned from at least this many real rows
FILTERS = ("schema", "classifier", "discriminator")  # the order they are applied in


class GANOverSampler(BaseOverSampler):
    """Over-sample the classes `sampling_strategy` names with a conditional tabular generator.

    Parameters: `sampling_strategy` (as in imbalanced-learn), `random_state`,
    `generator` ("gan": `TabularGAN`, "vae": `TabularVAE`), `n_steps` (training steps of the
    generator), `generator_params` (other keyword arguments of the generator),
    `filter` (None, or one or a list of "schema", "classifier", "discriminator"; see the module
    docstring), `confidence` (the classifier's minimum probability of the requested class),
    `keep_top` (the share of each draw the discriminator filter keeps), `constraints` (rules of
    `gankit.tabular.constraints` over X's column names, or x0, x1, ... for arrays; checked by
    the "schema" filter), `max_rounds` (draws per class before giving up).

    Columns: numeric columns are continuous; object, string, category and bool columns (of a
    DataFrame, or of an object array) are discrete. After `fit_resample`: `generator_` (the fitted
    model), `sampling_strategy_` (class -> rows added), `n_generated_` (class -> rows added),
    `acceptance_` (class -> share of drawn rows the filters kept; 1.0 without a filter),
    `rejected_` (class -> {filter: rows it rejected}).
    """

    _parameter_constraints: ClassVar[dict] = {
        **BaseOverSampler._parameter_constraints,
        "generator": [StrOptions({"gan", "vae"})],
        "n_steps": [Interval(numbers.Integral, 1, None, closed="left")],
        "generator_params": [dict, None],
        "filter": [StrOptions(set(FILTERS)), list, tuple, None],
        "confidence": [Interval(numbers.Real, 0, 1, closed="both")],
        "keep_top": [Interval(numbers.Real, 0, 1, closed="right")],
        "constraints": [list, tuple, None],
        "max_rounds": [Interval(numbers.Integral, 1, None, closed="left")],
    }

    def __init__(
        self,
        *,
        sampling_strategy: Any = "auto",
        random_state: Any = None,
        generator: str = "gan",
        n_steps: int = 300,
        generator_params: dict | None = None,
        filter: str | list[str] | None = None,
        confidence: float = 0.5,
        keep_top: float = 0.5,
        constraints: list | None = None,
        max_rounds: int = 10,
    ) -> None:
        super().__init__(sampling_strategy=sampling_strategy)
        self.random_state = random_state
        self.generator = generator
        self.n_steps = n_steps
        self.generator_params = generator_params
        self.filter = filter
        self.confidence = confidence
        self.keep_top = keep_top
        self.constraints = constraints
        self.max_rounds = max_rounds

    # ------------------------------------------------------------------------- input checks
    def fit_resample(self, X: Any, y: Any, **params: Any) -> Any:
        """Resample: (X with generated rows appended, y with their classes); X and y keep the
        type they were given (DataFrame / Series, ndarray, list)."""
        from sklearn.utils._param_validation import InvalidParameterError

        try:
            self._validate_params()
        except InvalidParameterError as exc:
            raise ConfigError(f"GANOverSampler: {exc}") from None
        self._filters()
        self._check_input(X, y)
        return super().fit_resample(X, y, **params)

    def _filters(self) -> list[str]:
        """The filters asked for, in the order they run; a ConfigError for an unknown one."""
        asked = [self.filter] if isinstance(self.filter, str) else list(self.filter or [])
        unknown = [f for f in asked if f not in FILTERS]
        if unknown:
            raise ConfigError(f"GANOverSampler: unknown filter(s) {unknown}; choose from {FILTERS}")
        if "discriminator" in asked and self.generator != "gan":
            raise ConfigError(
                "GANOverSampler: filter 'discriminator' needs the GAN's critic; use "
                "generator='gan' or drop that filter"
            )
        return [f for f in FILTERS if f in asked]

    def _check_input(self, X: Any, y: Any) -> None:
        if X is None or y is None:
            raise DataError("GANOverSampler.fit_resample needs X and y, got None")
        n_x, n_y = _length(X), _length(y)
        if n_x != n_y:
            raise DataError(f"GANOverSampler: X has {n_x} rows but y has {n_y} labels")
        labels = np.asarray(y, dtype=object).ravel()
        missing = pd.isna(labels)
        if missing.any():
            raise DataError(
                f"GANOverSampler: y has {int(missing.sum())} missing label(s) (NaN/None), "
                f"first at row {int(np.flatnonzero(missing)[0])}; drop or label those rows"
            )
        known = set(pd.unique(labels).tolist())
        if np.ndim(np.asarray(y)) == 1 and len(known) < 2:
            raise DataError(
                f"GANOverSampler: y has one class ({next(iter(known), None)!r}); "
                "over-sampling needs at least 2 classes"
            )
        if isinstance(self.sampling_strategy, Mapping) and np.ndim(np.asarray(y)) == 1:
            unknown = [c for c in self.sampling_strategy if c not in known]
            if unknown:
                raise ConfigError(
                    f"GANOverSampler: sampling_strategy names class(es) {unknown} that y does "
                    f"not contain; y's classes are {sorted(known, key=str)}"
                )

    def _check_X_y(self, X: Any, y: Any, accept_sparse: Any = None) -> Any:
        """Like SMOTENC's: strings pass (discrete columns); sparse input is made dense."""
        from imblearn.utils import check_target_type
        from scipy import sparse

        self._sparse = None
        if isinstance(X, pd.DataFrame) and any(
            isinstance(t, pd.SparseDtype) for t in X.dtypes
        ):  # pandas sparse columns: dense for the model, sparse again on the way out
            X = X.sparse.to_dense() if all(isinstance(t, pd.SparseDtype) for t in X.dtypes) else X
            X = X.astype(
                {c: t.subtype for c, t in X.dtypes.items() if isinstance(t, pd.SparseDtype)}
            )
        elif sparse.issparse(X):  # the model needs dense rows; the result is sparse again
            self._sparse = X.format
            X = X.toarray()
        self._dtypes = list(X.dtypes) if isinstance(X, pd.DataFrame) else None
        y, binarize_y = check_target_type(y, indicate_one_vs_all=True)
        X, y = validate_data(self, X=X, y=y, reset=True, dtype=None, accept_sparse=False)
        return X, y, binarize_y

    # ---------------------------------------------------------------------------- resampling
    def _fit_resample(self, X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        wanted = {c: int(k) for c, k in self.sampling_strategy_.items() if int(k) > 0}
        self.n_generated_ = dict.fromkeys(pd.unique(y), 0)  # every class, 0 if not asked for
        self.acceptance_ = dict.fromkeys(wanted, 1.0)
        self.rejected_ = {c: {} for c in wanted}
        if not wanted:
            X_res = X.copy()
            if self._sparse is not None:
                from scipy import sparse

                X_res = sparse.csr_matrix(X_res).asformat(self._sparse)
            return X_res, y.copy()
        classes = list(pd.unique(y))
        counts = {c: int(np.sum(y == c)) for c in classes}
        few = {c: counts[c] for c in wanted if counts[c] < MIN_CLASS_ROWS}
        if few:
            raise DataError(
                f"GANOverSampler: class(es) {few} have fewer than {MIN_CLASS_ROWS} rows to "
                "learn from; collect more rows or leave them out of sampling_strategy"
            )
        labels = {c: f"class-{i}" for i, c in enumerate(classes)}
        frame, discrete = self._frame(X)
        table = frame.assign(**{TARGET: [labels[c] for c in y]})
        rng = np.random.default_rng(check_random_state(self.random_state).randint(2**31))
        model_seed = int(rng.integers(2**31))
        checks = self._checks(frame, y, model_seed)  # the constraints are checked on X first
        self.generator_ = self._model(model_seed).fit(table, discrete_columns=[*discrete, TARGET])
        parts_x, parts_y = [X], [y]
        for cls, k in wanted.items():
            rows = self._draw(cls, labels[cls], k, rng, checks)
            parts_x.append(self._to_array(rows, X.dtype))
            parts_y.append(np.full(k, cls, dtype=y.dtype))
            self.n_generated_[cls] = k
        X_res = np.concatenate(parts_x)
        if self._sparse is not None:
            from scipy import sparse

            X_res = sparse.csr_matrix(X_res).asformat(self._sparse)
        return X_res, np.concatenate(parts_y)

    def _model(self, seed: int) -> Any:
        params = {"n_steps": self.n_steps, "random_state": seed, **(self.generator_params or {})}
        if self.generator == "gan":
            from gankit.tabular import TabularGAN

            return TabularGAN(**{"class_column": TARGET, **params})
        from gankit.tabular.tvae import TabularVAE

        return TabularVAE(**params)

    def _frame(self, X: np.ndarray) -> tuple[pd.DataFrame, list[str]]:
        """X as a DataFrame with columns x0, x1, ...; the names of its discrete columns."""
        names = [f"x{j}" for j in range(X.shape[1])]
        columns, discrete = {}, []
        self._originals: dict[int, dict[str, Any]] = {}
        for j, name in enumerate(names):
            dtype = self._dtypes[j] if self._dtypes is not None else X.dtype
            col = X[:, j]
            if pd.api.types.is_bool_dtype(dtype) or not pd.api.types.is_numeric_dtype(dtype):
                as_number = pd.to_numeric(pd.Series(col), errors="coerce")
                if self._dtypes is None and as_number.notna().all():
                    columns[name] = as_number.to_numpy(dtype=float)
                    continue
                columns[name] = pd.Series(col, dtype=object).astype(str)
                self._originals[j] = {str(v): v for v in col}
                discrete.append(name)
            else:
                columns[name] = col.astype(float)
        self._discrete = discrete
        return pd.DataFrame(columns), discrete

    def _judge(self, frame: pd.DataFrame, y: np.ndarray, seed: int) -> Any:
        """A random forest on the real rows (discrete columns ordinal-encoded)."""
        from sklearn.compose import make_column_transformer
        from sklearn.ensemble import RandomForestClassifier
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import OrdinalEncoder

        encode = make_column_transformer(
            (
                OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1),
                self._discrete,
            ),
            remainder="passthrough",
        )
        forest = RandomForestClassifier(n_estimators=100, random_state=seed, n_jobs=1)
        return make_pipeline(encode, forest).fit(frame, y)

    def _checks(self, frame: pd.DataFrame, y: np.ndarray, seed: int) -> dict[str, Callable]:
        """filter name -> keep(rows, cls, label, seed) -> boolean mask, for the asked filters."""
        checks: dict[str, Callable] = {}
        for name in self._filters():
            if name == "schema":
                checks[name] = self._schema_check(frame)
            elif name == "classifier":
                checks[name] = self._classifier_check(self._judge(frame, y, seed))
            else:
                checks[name] = self._critic_check
        return checks

    def _classifier_check(self, judge: Any) -> Callable:
        """Rows the forest trained on the real rows gives their class >= `confidence`."""

        def keep(rows: pd.DataFrame, cls: Any, label: str, seed: int) -> np.ndarray:
            proba = judge.predict_proba(rows.drop(columns=[TARGET]))
            return proba[:, list(judge.classes_).index(cls)] >= self.confidence

        return keep

    def _schema_check(self, frame: pd.DataFrame) -> Callable:
        """Rows valid against X's schema (complete, seen categories, finite numbers in X's
        range) and the fitted `constraints` (over the user's column names)."""
        from gankit.tabular.constraints import check_fitted, fit_constraints
        from gankit.tabular.transform import infer_schema, validate_rows

        schema = infer_schema(frame, True, categorical=self._discrete)
        names = [str(c) for c in getattr(self, "feature_names_in_", frame.columns)]
        rules = fit_constraints(self.constraints, frame.set_axis(names, axis=1))

        def keep(rows: pd.DataFrame, cls: Any, label: str, seed: int) -> np.ndarray:
            rows = rows.drop(columns=[TARGET])
            ok = ~rows.isna().any(axis=1).to_numpy()
            for error in validate_rows(rows, schema, max_errors=len(rows) * rows.shape[1] + 1):
                ok[error.row] = False
            for col in schema.columns:
                if col.kind != "categorical":
                    values = pd.to_numeric(rows[col.name], errors="coerce").to_numpy(float)
                    ok &= (values >= col.min) & (values <= col.max)
            if rules:
                ok &= check_fitted(rows.set_axis(names, axis=1), rules)
            return ok

        return keep

    def _critic_check(self, rows: pd.DataFrame, cls: Any, label: str, seed: int) -> np.ndarray:
        """The `keep_top` share of the draw that TabularGAN's critic rates highest."""
        scores = self.generator_.critic_scores(rows, {TARGET: label}, seed=seed)
        if len(scores) == 0:
            return np.zeros(0, dtype=bool)
        return scores >= np.quantile(scores, 1.0 - self.keep_top)

    def _draw(
        self, cls: Any, label: str, k: int, rng: np.random.Generator, checks: dict[str, Callable]
    ) -> pd.DataFrame:
        """k generated rows of class `cls` that pass every check."""
        kept: list[pd.DataFrame] = []
        rejected = dict.fromkeys(checks, 0)
        have = drawn = 0
        rate = 1.0
        for _ in range(self.max_rounds):
            ask = k - have if not checks else max(math.ceil(1.2 * (k - have) / rate), 32)
            seed = int(rng.integers(2**31))
            rows = self.generator_.sample(ask, conditions={TARGET: label}, seed=seed)
            drawn += len(rows)
            for name, keep in checks.items():
                mask = np.asarray(keep(rows, cls, label, seed), dtype=bool)
                rejected[name] += int((~mask).sum())
                rows = rows[mask]
            kept.append(rows.drop(columns=[TARGET]))
            have += len(rows)
            rate = max(have / drawn, 0.02) if drawn else 1.0
            if have >= k:
                break
        self.rejected_[cls] = rejected
        if have < k and not checks:
            raise DataError(
                f"GANOverSampler: the generator gave {have} new rows of class {cls!r}, {k} were "
                "needed: it never returns copies of training rows, and this table has too few "
                "distinct rows of that class (e.g. only a few discrete columns); ask for fewer "
                "rows or add columns"
            )
        if have < k:
            raise DataError(
                f"GANOverSampler: the filters kept {have} of {drawn} rows generated for class "
                f"{cls!r} in {self.max_rounds} rounds (rejected: {rejected}), {k} were needed; "
                f"loosen them (confidence now {self.confidence}, keep_top {self.keep_top}, "
                "constraints), raise max_rounds or train longer (n_steps)"
            )
        self.acceptance_[cls] = have / drawn if drawn else 1.0
        return pd.concat(kept, ignore_index=True).iloc[:k]

    def _to_array(self, rows: pd.DataFrame, dtype: np.dtype) -> np.ndarray:
        """Generated rows as an array of X's dtype (discrete values back to X's values)."""
        if dtype.kind == "O":
            out = rows.to_numpy(dtype=object)
            for j, name in enumerate(rows.columns):
                if name in self._discrete:
                    out[:, j] = [self._originals[j].get(v, v) for v in rows[name]]
            return out
        out = rows.to_numpy(dtype=float)
        for j in range(out.shape[1]):  # integer columns get whole numbers
            kind = self._dtypes[j] if self._dtypes is not None else dtype
            if pd.api.types.is_integer_dtype(kind):
                out[:, j] = np.round(out[:, j])
        return out.astype(dtype)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True  # densified for the model
        tags.input_tags.allow_nan = False
        tags.input_tags.string = True
        tags.input_tags.dataframe = True
        tags.non_deterministic = False
        return tags


def _length(a: Any) -> int:
    shape = getattr(a, "shape", None)
    if shape is not None and len(shape) > 0:
        return int(shape[0])
    try:
        return len(a)
    except TypeError as exc:
        raise DataError(f"GANOverSampler: X and y must be array-like, got {type(a)}") from exc


def parse_strategy(text: str) -> Any:
    """A `--strategy` value: a keyword ("auto", "minority", "not majority", "not minority",
    "all"), a float in (0, 1] (binary targets), or CLASS=COUNT pairs ("yes=300,maybe=200")."""
    text = text.strip()
    if text in ("auto", "minority", "not majority", "not minority", "all"):
        return text
    if "=" in text:
        counts: dict[str, int] = {}
        for pair in text.split(","):
            name, _, count = pair.partition("=")
            try:
                counts[name.strip()] = int(count)
            except ValueError:
                raise ConfigError(f"--strategy: {pair!r} is not CLASS=COUNT") from None
        return counts
    try:
        ratio = float(text)
    except ValueError:
        raise ConfigError(
            f"--strategy: expected auto, minority, 'not majority', 'not minority', all, a "
            f"ratio in (0, 1] or CLASS=COUNT pairs; got {text!r}"
        ) from None
    if not 0 < ratio <= 1:
        raise ConfigError(f"--strategy: a ratio must be in (0, 1], got {ratio}")
    return ratio


def augment_csv(
    path: str,
    target: str,
    out: str,
    strategy: str = "auto",
    generator: str = "gan",
    steps: int = 300,
    seed: int = 0,
    filter: str | list[str] | None = None,
    confidence: float = 0.5,
    delimiter: str | None = None,
    progress: bool = False,
    keep_top: float = 0.5,
) -> list[dict[str, Any]]:
    """`gankit augment`: read a CSV, over-sample by `target`, write the augmented CSV (the
    original rows first) and the generator beside it (`OUT.model/`: a TabularGAN/TabularVAE
    directory whose label column is `__gankit_target__`, valued class-0, class-1, ... in the
    order the classes first appear); one {class, before, added, after} dict per class."""
    from gankit.augment.images import model_dir
    from gankit.tabular.files import read_csv, write_csv

    table = read_csv(path, delimiter)
    if target not in table.columns:
        raise DataError(f"{path}: no target column {target!r}; columns are {list(table.columns)}")
    X, y = table.drop(columns=[target]), table[target]
    sampling = parse_strategy(strategy)
    if isinstance(sampling, dict):  # CLASS=COUNT names classes as text: match them to y's
        by_text = {str(c): c for c in pd.unique(y.dropna())}
        unknown = [c for c in sampling if c not in by_text]
        if unknown:
            raise ConfigError(
                f"--strategy names class(es) {unknown} that column {target!r} does not "
                f"contain; its classes are {sorted(by_text)}"
            )
        sampling = {by_text[c]: k for c, k in sampling.items()}
    sampler = GANOverSampler(
        sampling_strategy=sampling,
        random_state=seed,
        generator=generator,
        n_steps=steps,
        filter=filter,
        confidence=confidence,
        keep_top=keep_top,
        generator_params={"verbose": progress},
    )
    X_res, y_res = sampler.fit_resample(X, y)
    sampler.generator_.save(model_dir(out))
    result = X_res.assign(**{target: y_res.to_numpy()})[list(table.columns)]
    write_csv(result, out, table.attrs.get("delimiter", ","))
    before, after = y.value_counts(), y_res.value_counts()
    return [
        {
            "class": c.item() if hasattr(c, "item") else c,
            "before": int(before[c]),
            "added": int(after[c] - before[c]),
            "after": int(after[c]),
        }
        for c in sorted(before.index, key=str)
    ]
