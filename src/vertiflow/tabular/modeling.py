"""Build, choose, fit and save the tabular models (Oracle: yield, Classifier: grade).

Both are scikit-learn pipelines (one-hot crop + an estimator). The estimator and its
hyperparameters are chosen on the farm's own training data: every candidate in params
(`selection.candidates`: gradient boosting, random forest, splines with a ridge or
logistic regression, a Gaussian process for small farms) is scored by time-ordered
cross-validation (expanding window: fit on the earlier batches, score the next ones;
batches still growing when a validation window starts are purged from its training
rows), and the best is refitted on all of them. With `selection.blend` the weighted mean
of the best two (`blend`, weight chosen on the same folds) competes as one more
candidate. A single candidate is a fixed choice (no search). They are saved as MLflow
model directories in the skops format, trusting exactly the types the fitted model
contains, with pinned pip requirements.
"""

from __future__ import annotations

import shutil
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.metadata import version
from itertools import pairwise
from pathlib import Path
from typing import Any

import mlflow
import mlflow.sklearn
import numpy as np
import pandas as pd
import polars as pl
from mlflow.models import infer_signature
from scipy.optimize import minimize_scalar
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.compose import ColumnTransformer, TransformedTargetRegressor
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_selection import VarianceThreshold
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, RidgeCV
from sklearn.metrics import log_loss, mean_squared_error
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, SplineTransformer, StandardScaler
from sklearn.utils.validation import check_is_fitted, validate_data

from vertiflow.errors import VertiflowError
from vertiflow.farm.agronomy import GRADES
from vertiflow.lifecycle.model_bytes import pin_model_folder
from vertiflow.tabular import stacking
from vertiflow.tabular.blend import Blend, mix
from vertiflow.tabular.evaluation import proba_in_grade_order
from vertiflow.tabular.ordinal import OrdinalBoosting, OrdinalLogisticRegression
from vertiflow.tabular.stacking import OracleInput
from vertiflow.tabular.subsample import Subsample


def _gaussian_process(
    random_state: int,
    n_inputs: int = 1,
    length_scale: float = 3.0,
    max_rows: int | None = None,
    **kw: Any,
) -> Any:
    """GP regression: scaled ARD Matern 5/2 (one length scale per input; twice
    differentiable, so kinks of a crop's responses are not smoothed away as an RBF would)
    plus noise; the kernel's scales are fitted per farm, so irrelevant inputs fade out.
    With `max_rows`, fitted on a random subset of that many rows (`subsample`)."""
    scales = np.full(n_inputs, float(length_scale))
    kernel = ConstantKernel(1.0, (1e-2, 1e2)) * Matern(scales, (1e-1, 1e3), nu=2.5)
    kernel = kernel + WhiteKernel(0.05, (1e-5, 1.0))
    gp = GaussianProcessRegressor(kernel, normalize_y=True, random_state=random_state, **kw)
    return gp if max_rows is None else Subsample(gp, max_rows, random_state)


def _spline_ridge(random_state: int, n_knots: int = 6) -> Any:
    """Additive splines of every input with a cross-validated ridge (smooth, cheap)."""
    del random_state  # deterministic
    return make_pipeline(
        VarianceThreshold(),  # a constant input (one crop, an empty column) has no spline
        SplineTransformer(n_knots=n_knots, degree=3),
        RidgeCV(alphas=np.logspace(-4, 3, 15)),
    )


def _spline_logistic(random_state: int, n_knots: int = 5, C: float = 1.0) -> Any:
    """Additive splines of every input with a multinomial logistic regression."""
    return make_pipeline(
        VarianceThreshold(),
        SplineTransformer(n_knots=n_knots, degree=3),
        LogisticRegression(C=C, max_iter=2000, random_state=random_state),
    )


def _spline_ordinal(random_state: int, n_knots: int = 5, C: float = 1.0) -> Any:
    """Additive splines of every input with an ordinal (cumulative) logistic regression:
    one quality score cut into the grades in their order (see `ordinal`)."""
    del random_state  # deterministic
    return make_pipeline(
        VarianceThreshold(),
        SplineTransformer(n_knots=n_knots, degree=3),
        OrdinalLogisticRegression(order=tuple(reversed(GRADES)), C=C),
    )


def _ordinal_boosting(random_state: int, **hyperparams: Any) -> Any:
    """Boosted trees on the grade's rank, cut into the grades in their order (`ordinal`)."""
    return OrdinalBoosting(order=tuple(reversed(GRADES)), random_state=random_state, **hyperparams)


ESTIMATORS = {
    "regression": {
        "hist_gradient_boosting": HistGradientBoostingRegressor,
        "random_forest": RandomForestRegressor,
        "gaussian_process": _gaussian_process,
        "spline_ridge": _spline_ridge,
    },
    "classification": {
        "hist_gradient_boosting": HistGradientBoostingClassifier,
        "random_forest": RandomForestClassifier,
        "spline_logistic": _spline_logistic,
        "spline_ordinal": _spline_ordinal,
        "ordinal_boosting": _ordinal_boosting,
    },
}
# Estimators that need complete, scaled inputs (trees take NaN and raw scales as they are).
SMOOTH = {"gaussian_process", "spline_ridge", "spline_logistic", "spline_ordinal"}
BLEND = "blend"  # the search's name for the weighted mean of its best two candidates
BLEND_MIN_GAIN = 1e-6  # CV score a blend must gain over the best candidate (not rounding)
REQUIREMENTS = ("mlflow", "scikit-learn", "skops", "pandas", "numpy", "scipy")


@dataclass(frozen=True)
class FeatureSpec:
    categorical: list[str]
    numeric: list[str]

    @property
    def columns(self) -> list[str]:
        return [*self.categorical, *self.numeric]

    @classmethod
    def from_params(cls, section: dict[str, Any]) -> FeatureSpec:
        return cls(categorical=list(section["categorical"]), numeric=list(section["numeric"]))


def frame(table: pl.DataFrame, spec: FeatureSpec | list[str]) -> pd.DataFrame:
    columns = spec.columns if isinstance(spec, FeatureSpec) else list(spec)
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise VertiflowError(
            f"params.yaml: features {', '.join(missing)} are not columns of the prepared data; "
            f"available: {', '.join(table.columns)}."
        )
    return table.select(columns).to_pandas()


class WithValues(TransformerMixin, BaseEstimator):
    """The columns that hold a value in the fitting rows (trees route missing values).

    A sensor installed partway through the history is empty in the first time-ordered
    CV fold, and HistGradientBoosting cannot bin a column with no value in it ("window
    shape cannot be larger than input array shape")."""

    def fit(self, X, y=None):
        X = validate_data(self, X, dtype=np.float64, ensure_all_finite="allow-nan")
        self.keep_ = ~np.isnan(X).all(axis=0)
        return self

    def transform(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, ensure_all_finite="allow-nan", reset=False)
        return X[:, self.keep_]


def build(
    task: str,
    estimator: str,
    hyperparams: dict[str, Any],
    spec: FeatureSpec,
    seed: int,
    log_target: bool = False,
    categories: dict[str, list[str]] | None = None,
):
    """`categories`: each categorical column's values (fixes the one-hot width across folds)."""
    choices = ESTIMATORS[task]
    if estimator == "gaussian_process":
        widths = [len((categories or {}).get(c, [])) for c in spec.categorical]
        hyperparams = {"n_inputs": sum(widths) + len(spec.numeric), **hyperparams}
    if estimator not in choices:
        raise VertiflowError(
            f"params.yaml: estimator {estimator!r} is not one of {', '.join(choices)}."
        )
    try:
        model = choices[estimator](random_state=seed, **hyperparams)
    except (TypeError, ValueError) as exc:  # an unknown key, or a value of the wrong kind
        raise VertiflowError(f"params.yaml: hyperparams for {estimator}: {exc}.") from None
    numeric: Any = WithValues()
    if estimator in SMOOTH:  # empty columns (a crop without optima) become 0, then scaled
        numeric = make_pipeline(
            SimpleImputer(strategy="median", keep_empty_features=True, fill_value=0.0),
            StandardScaler(),
        )
    encode = ColumnTransformer(
        [
            (
                "categorical",
                OneHotEncoder(
                    categories=[categories[c] for c in spec.categorical] if categories else "auto",
                    handle_unknown="ignore",
                    sparse_output=False,
                ),
                spec.categorical,
            ),
            ("numeric", numeric, spec.numeric),
        ]
    )
    if log_target and task == "regression":
        model = TransformedTargetRegressor(model, func=np.log, inverse_func=np.exp)
    return Pipeline([("encode", encode), ("model", model)])


# A Gaussian process's length scale at its upper bound is an input it found irrelevant:
# the fading out its ARD kernel is for, not a failed fit (each farm with a GP candidate
# printed about 18 of these). A scale at its lower bound, or the noise at its bound, is
# still shown.
IRRELEVANT_INPUT = (
    r"The optimal value found for dimension \d+ of parameter \S*length_scale is close to the "
    r"specified upper bound"
)


def fit(model: Any, x: pd.DataFrame, y: pd.Series) -> float:
    """Fit in place; returns the seconds spent (the part of a stage that is not overhead)."""
    start = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", IRRELEVANT_INPUT, ConvergenceWarning)
            model.fit(x, y)
    except (ValueError, TypeError, ZeroDivisionError) as exc:
        # sklearn's InvalidParameterError (a ValueError) names a bad hyperparameter; other
        # errors may come from a value of the wrong type, or from the rows themselves
        raise VertiflowError(
            f"the model could not be fitted: {exc} (check its hyperparams in params.yaml, and "
            "that the training rows hold what it needs, e.g. two grades or more)."
        ) from None
    return time.perf_counter() - start


def _answers(predicted: np.ndarray) -> Any:
    """Grades (an object array, which MLflow would declare a tensor) as a string column."""
    return [str(v) for v in predicted] if predicted.dtype == object else predicted


def _model_kwargs(model: Any, x_train: pd.DataFrame) -> dict[str, Any]:
    # Imported here, once the stage has set runtime.skip_imports: skops walks every
    # scikit-learn module when imported, and one of them imports torch (seconds, unused).
    import skops.io

    # each label column's training values, in the MLmodel file: an app can tell a crop
    # the model never saw (its answer is a guess from the other crops)
    categories = {
        c: sorted(map(str, x_train[c].dropna().unique()))
        for c in x_train.columns
        if not pd.api.types.is_numeric_dtype(x_train[c])
    }
    x_example = x_train.head(100)
    trusted = skops.io.get_untrusted_types(data=skops.io.dumps(model))
    needs = [
        *REQUIREMENTS,
        *(["vertiflow"] if any(t.startswith("vertiflow.") for t in trusted) else []),
    ]
    return {
        "serialization_format": "skops",
        "skops_trusted_types": trusted,
        "pip_requirements": [f"{name}=={version(name)}" for name in needs],
        # what the served model answers: pyfunc's predict, the grades for a classifier (an
        # output declared from predict_proba told apps of three floats; they got a string)
        "signature": infer_signature(x_example, _answers(model.predict(x_example))),
        "input_example": x_example.head(3),
        "metadata": {"trained_categories": categories},
    }


def save_and_log(model: Any, path: Path, x_train: pd.DataFrame) -> str:
    """Write the MLflow model directory (the DVC out) and log those same files to the run.

    The directory is logged as the run's LoggedModel rather than serialised again with
    `log_model`: skops is slow for large ensembles, and DVC and MLflow then hold
    byte-identical models. Returns the LoggedModel id (`models:/<id>`).
    """
    staging = path.with_name(f".{path.name}.saving")
    shutil.rmtree(staging, ignore_errors=True)
    mlflow.sklearn.save_model(model, str(staging), **_model_kwargs(model, x_train))
    pin_model_folder(staging)
    shutil.rmtree(path, ignore_errors=True)  # only once the new model is complete
    staging.rename(path)
    from vertiflow.lifecycle.tracking import log_model_dir

    return log_model_dir(path, "model", "sklearn")


@dataclass
class Selection:
    """The model search: each candidate's cross-validated score and the one chosen."""

    chosen: str
    scores: dict[str, float]  # candidate -> mean CV score (R2, or minus log loss)
    metric: str
    folds: int
    seconds: float
    skipped: dict[str, str]  # candidate -> why it was not tried
    blend_weights: dict[str, float] = field(default_factory=dict)  # the best two, if tried

    def metrics(self) -> dict[str, Any]:
        """Numbers only (a DVC metrics file): scores and one-hot choice. No search time:
        the file's md5 is in dvc.lock, which must come out the same on every re-run (the
        time is the train run's `fit_seconds` in MLflow)."""
        return {
            f"cv_{self.metric}": {k: round(v, 6) for k, v in self.scores.items()},
            "chosen": {k: int(k == self.chosen) for k in self.scores},
            "folds": self.folds,
            **({"blend_weights": self.blend_weights} if self.blend_weights else {}),
        }


def time_folds(table: pl.DataFrame, folds: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Expanding-window splits in start-date order, purging batches harvested after the
    validation window starts (they overlap it in time).

    Batches that start on the same day fall in the same window (a farm may restock every
    module on one day), and a fold left with no training batch is dropped."""
    starts, harvests = table["start_date"].to_numpy(), table["harvest_date"].to_numpy()
    order = np.argsort(starts, kind="stable")
    ordered = starts[order]
    edges = np.linspace(0, len(order), folds + 2).astype(int)
    edges[1:-1] = np.searchsorted(ordered, ordered[edges[1:-1]], side="left")
    splits = []
    for lo, hi in pairwise(edges[1:]):
        valid, train = order[lo:hi], order[:lo]
        if len(valid):
            train = train[harvests[train] <= starts[valid].min()]
        if len(valid) and len(train):
            splits.append((train, valid))
    if not splits:
        raise VertiflowError(
            f"params.yaml: selection.folds {folds}: no fold has training batches harvested "
            f"before its validation batches start ({table.height} batches, starting on "
            f"{table['start_date'].n_unique()} dates), so the candidates cannot be compared "
            "on later batches. Add batches, or name one estimator (estimator: <name>, no search)."
        )
    return splits


def _predict(task: str, model: Any, x: pd.DataFrame) -> np.ndarray:
    """Yield, or the probability of every grade (columns in GRADES order)."""
    return model.predict(x) if task == "regression" else proba_in_grade_order(model, x)


def _metric(task: str, predicted: np.ndarray, y: pd.Series) -> float:
    """The search's score, higher is better: R2, or minus the mean log loss."""
    if task == "regression":
        return 1.0 - mean_squared_error(y, predicted) / float(np.var(y))
    # Every grade, not the model's: an early fold may not have seen them all. log_loss
    # takes the columns in sorted label order, whatever order `labels` lists.
    order = np.argsort(GRADES)
    return -log_loss(y, predicted[:, order], labels=list(np.asarray(GRADES)[order]))


def _score(task: str, model: Any, x: pd.DataFrame, y: pd.Series) -> float:
    return _metric(task, _predict(task, model, x), y)


def _blend_weight(
    task: str, first: list[np.ndarray], second: list[np.ndarray], ys: list[pd.Series], log: bool
) -> float:
    """The weight of the first candidate in [0, 1] with the best mean score over the given
    folds' held-out predictions."""

    def loss(w: float) -> float:
        pairs = zip(first, second, ys, strict=True)
        return -float(np.mean([_metric(task, mix(a, b, w, log), y) for a, b, y in pairs]))

    found = minimize_scalar(loss, bounds=(0.0, 1.0), method="bounded", options={"xatol": 1e-3})
    return float(min((found.x, 1.0, 0.0), key=loss))  # the bounded search never tries an end


def _blend(
    task: str, first: list[np.ndarray], second: list[np.ndarray], ys: list[pd.Series], log: bool
) -> tuple[float, float]:
    """(weight of `first` on all folds, cross-fitted score): each fold is scored with the
    weight the other folds chose, never with one tuned on its own rows. (Not forward in
    time as a candidate's score is: an early fold's weight comes from later folds.)"""
    scores = []
    for k in range(len(ys)):
        rest = [i for i in range(len(ys)) if i != k]
        w = _blend_weight(
            task, [first[i] for i in rest], [second[i] for i in rest], [ys[i] for i in rest], log
        )
        scores.append(_metric(task, mix(first[k], second[k], w, log), ys[k]))
    return _blend_weight(task, first, second, ys, log), float(np.mean(scores))


def _candidates(section: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """params: selection.candidates, or one fixed estimator (`estimator` + `hyperparams`)."""
    if section["estimator"] != "auto":
        return {section["estimator"]: {"estimator": section["estimator"], **section}}
    return dict(section["selection"]["candidates"])


def _where(section: dict[str, Any], candidate: str, key: str = "") -> str:
    """The params key of a candidate: the section's fixed estimator, or its search entry
    (and its `key` there, e.g. `.estimator`)."""
    fixed = section["estimator"] != "auto"
    return "estimator" if fixed else f"selection.candidates.{candidate}{key}"


@contextmanager
def _naming(section: dict[str, Any], candidate: str):
    """A model's error names the candidate whose params it concerns."""
    try:
        yield
    except VertiflowError as exc:
        raise VertiflowError(f"{_where(section, candidate)}: {exc}") from None


def select(
    task: str, table: pl.DataFrame, target: str, section: dict[str, Any], oracle: Any = None
) -> tuple[Any, Selection]:
    """Choose by time-ordered CV among the candidates (and the blend of the best two),
    refit the best on every row. With a fitted `oracle`, every candidate also takes its
    predicted yield (`stacking`)."""
    start = time.perf_counter()
    spec = FeatureSpec.from_params(section["features"])
    candidates, scores, skipped = _candidates(section), {}, {}
    for name, c in candidates.items():  # clear errors before minutes of CV
        frame(table, [*spec.categorical, *(c.get("numeric") or spec.numeric)])
        if c["estimator"] not in ESTIMATORS[task]:
            raise VertiflowError(
                f"params.yaml: {_where(section, name, '.estimator')} {c['estimator']!r} is not "
                f"one of the {task} models: "
                f"{', '.join(ESTIMATORS[task])}."
            )
    for name, c in list(candidates.items()):
        if table.height > (c.get("max_rows") or np.inf):
            skipped[name] = f"{table.height} training rows > max_rows {c['max_rows']}"
            del candidates[name]
    if not candidates:
        raise VertiflowError(
            f"params.yaml: every candidate in selection.candidates is skipped on "
            f"{table.height} training rows ({'; '.join(f'{k}: {v}' for k, v in skipped.items())}); "
            "raise a max_rows or add a candidate without one."
        )
    y = table[target].to_pandas()
    seed, log_target = section["seed"], section.get("log_target", False)
    folds = section["selection"]["folds"]
    unstacked, best = table, {}
    if oracle is not None:
        table, best = with_oracle_yield(table, oracle, seed)

    categories = {c: sorted(table[c].unique().to_list()) for c in spec.categorical}

    def inputs(c: dict[str, Any]) -> FeatureSpec:
        """The candidate's columns, less those with no value at all (the out-of-band shares
        of a crop without optima) and exact copies of an earlier one (its *_dev columns)."""
        kept: list[str] = []
        stacked = list(stacking.COLUMNS) if oracle is not None else []
        for name in [*(c.get("numeric") or spec.numeric), *stacked]:
            column = table[name]
            if column.count() and not any(column.equals(table[k]) for k in kept):
                kept.append(name)
        return FeatureSpec(spec.categorical, kept)

    def make(c: dict[str, Any], rows: pl.DataFrame = table) -> tuple[Pipeline, pd.DataFrame]:
        hyper, own = c.get("hyperparams") or {}, inputs(c)
        model = build(task, c["estimator"], hyper, own, seed, log_target, categories)
        return model, frame(rows, own)

    blended: dict[str, float] = {}
    log = log_target and task == "regression"  # a blend of log-yield models: geometric mean
    if len(candidates) > 1:
        splits = time_folds(table, folds)
        held_out: dict[str, list[np.ndarray]] = {}
        ys = [y.iloc[valid_idx] for _, valid_idx in splits]
        # The Oracle's yields as each fold's training batches alone would give them, so
        # the search stays forward in time.
        fold_tables = [
            table if oracle is None else with_oracle_yield(unstacked, oracle, seed, split)[0]
            for split in splits
        ]
        for name, c in candidates.items():
            held_out[name] = []
            for (train_idx, valid_idx), rows in zip(splits, fold_tables, strict=True):
                with _naming(section, name):
                    model, x = make(c, rows)
                    fit(model, x.iloc[train_idx], y.iloc[train_idx])
                held_out[name].append(_predict(task, model, x.iloc[valid_idx]))
            scores[name] = float(
                np.mean([_metric(task, p, t) for p, t in zip(held_out[name], ys, strict=True)])
            )
        # Best first; a tie goes to the earlier candidate in params.
        order = sorted(scores, key=lambda k: (-scores[k], list(candidates).index(k)))
        chosen = order[0]
        # the blend's weight is cross-fitted on the other folds: one fold has none
        if section["selection"].get("blend") and len(order) > 1 and len(splits) > 1:
            first, second = order[:2]
            weight, score = _blend(task, held_out[first], held_out[second], ys, log)
            weight = round(weight, 4)  # the weight reported is the weight used
            scores[BLEND] = score
            blended = {first: weight, second: round(1.0 - weight, 4)}
            # A blend that is one candidate, or better only by rounding, is not worth its cost.
            if 0.0 < weight < 1.0 and score > scores[first] + BLEND_MIN_GAIN:
                chosen = BLEND
    else:
        chosen = next(iter(candidates))
    if chosen == BLEND:
        (first_model, x_first), (second_model, x_second) = (
            make(candidates[name]) for name in blended
        )
        columns = [list(x_first.columns), list(x_second.columns)]
        x = frame(table, [c for c in table.columns if c in {*columns[0], *columns[1]}])
        model = Blend([first_model, second_model], columns, blended[first], log)
    else:
        with _naming(section, chosen):
            model, x = make(candidates[chosen])
    if oracle is not None:
        model = OracleInput(model, oracle, best, seed)
    with _naming(section, chosen):
        fit(model, x, y)
    metric = "r2" if task == "regression" else "neg_log_loss"
    seconds = time.perf_counter() - start
    folds = len(splits) if scores else 0
    return model, Selection(chosen, scores, metric, folds, seconds, skipped, blended)


def with_oracle_yield(
    table: pl.DataFrame, oracle: Any, seed: int, split: tuple | None = None
) -> tuple[pl.DataFrame, dict[str, float]]:
    """`table` with the Oracle's predicted yield (`stacking`): out of fold on every row, or
    with a (fitted, new rows) `split`, out of fold on the fitted rows and from the Oracle
    refitted on them for the new rows; and each crop's best predicted yield."""
    clash = [c for c in stacking.COLUMNS if c in table.columns]
    if clash:
        raise VertiflowError(
            f"the training data has a column named {', '.join(clash)}, the name of the "
            "Oracle's predicted yield (train_classifier.oracle_input); rename it in the data."
        )
    every = np.arange(table.height)
    fitted_rows, new_rows = split if split is not None else (every, every[:0])
    try:
        columns, best = stacking.predicted(
            _frozen(oracle),
            frame(table, list(oracle.feature_names_in_)),
            table[stacking.YIELD].to_pandas(),
            table["crop"].to_pandas(),
            fitted_rows,
            new_rows,
            seed,
        )
    except (ValueError, TypeError, ZeroDivisionError) as exc:
        raise VertiflowError(
            f"the Oracle could not be refitted for the classifier's yield input: {exc} "
            "(train_classifier.oracle_input: false trains the classifier without it)."
        ) from None
    return table.with_columns(pl.from_pandas(columns)), best


def train(
    task: str, table: pl.DataFrame, target: str, section: dict[str, Any], oracle: Any = None
) -> tuple[Any, pd.DataFrame, float, Selection]:
    """Choose and fit the model a params section describes: (model, inputs, seconds, search)."""
    model, selection = select(task, table, target, section, oracle)
    return model, frame(table, list(model.feature_names_in_)), selection.seconds, selection


def bootstrap_refits(model: Any, table: pl.DataFrame, target: str, n: int, seed: int) -> list[Any]:
    """`n` copies of a fitted model refitted on bootstrap resamples of `table`, with its
    hyperparameters frozen (a Gaussian process keeps its fitted kernel, a ridge its
    penalty, boosted trees their early-stopped rounds, a blend its weight): an ensemble
    whose spread says where the model is unsure."""
    columns = list(model.feature_names_in_)
    if isinstance(model, OracleInput):  # its classifier is fitted on out-of-fold yields
        table, _ = with_oracle_yield(table, model.oracle, model.seed)
        columns = list(model.classifier_.feature_names_in_)
    x, y = frame(table, columns), table[target].to_pandas()
    rng = np.random.default_rng(seed)
    refits = []
    for _ in range(n):
        for _attempt in range(10):  # a classifier's resample must hold every class
            rows = rng.integers(0, len(x), len(x))
            if task_of(model) == "regression" or y.iloc[rows].nunique() == y.nunique():
                break
        refits.append(_frozen(model).fit(x.iloc[rows], y.iloc[rows]))
    return refits


def _frozen(model: Any) -> Any:
    """An unfitted copy of a fitted model that refits without re-tuning."""
    if isinstance(model, Blend):
        return clone(model).set_params(members=[_frozen(m) for m in model.members_])
    if isinstance(model, OracleInput):
        return clone(model).set_params(classifier=_frozen(model.classifier_))
    copy = clone(model)
    final = model.named_steps["model"]
    key, fitted = (
        ("model__regressor", final.regressor_) if hasattr(final, "regressor_") else ("model", final)
    )
    if isinstance(fitted, Subsample):
        key, fitted = f"{key}__estimator", fitted.estimator_
    if isinstance(fitted, GaussianProcessRegressor):
        copy.set_params(**{f"{key}__kernel": fitted.kernel_, f"{key}__optimizer": None})
    trees = fitted.trees_ if isinstance(fitted, OrdinalBoosting) else fitted
    if getattr(trees, "do_early_stopping_", False):  # on by default past 10,000 rows
        # its held-out tenth would hold copies of rows it fits: keep the model's rounds
        copy.set_params(**{f"{key}__max_iter": trees.n_iter_, f"{key}__early_stopping": False})
    if isinstance(fitted, Pipeline) and isinstance(fitted[-1], RidgeCV):
        # its leave-one-out choice of penalty would see a resample's copies of each row
        copy.set_params(**{f"{key}__{fitted.steps[-1][0]}__alphas": [fitted[-1].alpha_]})
    return copy


def write_selection(selection: Selection, out: Path | None) -> None:
    """The search's numbers to a DVC metrics file and the stage's MLflow run (the chosen
    candidate's name as an MLflow param: DVC metrics files hold numbers only)."""
    from vertiflow.params import flatten
    from vertiflow.stage import write_json

    numbers = selection.metrics()
    if out is not None:
        write_json(out, numbers)
    mlflow.log_metrics({f"selection.{k}": v for k, v in flatten(numbers).items()})
    mlflow.log_params(
        {"selection.chosen": selection.chosen, "selection.metric": selection.metric}
        | {f"selection.skipped.{k}": v for k, v in selection.skipped.items()}
    )


def task_of(model: Any) -> str:
    return "classification" if hasattr(model, "predict_proba") else "regression"
