"""Build, fit and save the tabular models (Oracle: yield, Classifier: grade).

Both are scikit-learn pipelines (one-hot crop + a tree ensemble) chosen and tuned in
params. They are saved as MLflow model directories in the skops format, trusting exactly
the types the fitted model contains, with pinned pip requirements so MLflow does not
spend seconds inferring them.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import mlflow
import mlflow.sklearn
import numpy as np
import pandas as pd
import polars as pl
import skops.io
from mlflow.models import infer_signature
from sklearn.compose import ColumnTransformer, TransformedTargetRegressor
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from vertiflow.errors import VertiflowError

ESTIMATORS = {
    "regression": {
        "hist_gradient_boosting": HistGradientBoostingRegressor,
        "random_forest": RandomForestRegressor,
    },
    "classification": {
        "hist_gradient_boosting": HistGradientBoostingClassifier,
        "random_forest": RandomForestClassifier,
    },
}
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


def build(
    task: str,
    estimator: str,
    hyperparams: dict[str, Any],
    spec: FeatureSpec,
    seed: int,
    log_target: bool = False,
):
    choices = ESTIMATORS[task]
    if estimator not in choices:
        raise VertiflowError(
            f"params.yaml: estimator {estimator!r} is not one of {', '.join(choices)}."
        )
    try:
        model = choices[estimator](random_state=seed, **hyperparams)
    except TypeError as exc:
        raise VertiflowError(f"params.yaml: hyperparams for {estimator}: {exc}.") from None
    encode = ColumnTransformer(
        [
            (
                "categorical",
                OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                spec.categorical,
            ),
            ("numeric", "passthrough", spec.numeric),
        ]
    )
    if log_target:
        model = TransformedTargetRegressor(model, func=np.log, inverse_func=np.exp)
    return Pipeline([("encode", encode), ("model", model)])


def fit(model: Pipeline, x: pd.DataFrame, y: pd.Series) -> float:
    """Fit in place; returns the seconds spent (the part of a stage that is not overhead)."""
    start = time.perf_counter()
    try:
        model.fit(x, y)
    except ValueError as exc:  # sklearn's InvalidParameterError for bad hyperparameter values
        raise VertiflowError(f"params.yaml: the model refused its hyperparameters: {exc}") from None
    return time.perf_counter() - start


def _model_kwargs(model: Pipeline, x_example: pd.DataFrame) -> dict[str, Any]:
    predict = model.predict_proba if hasattr(model, "predict_proba") else model.predict
    x_example = x_example.head(100)
    return {
        "serialization_format": "skops",
        "skops_trusted_types": skops.io.get_untrusted_types(data=skops.io.dumps(model)),
        "pip_requirements": [f"{name}=={version(name)}" for name in REQUIREMENTS],
        "signature": infer_signature(x_example, predict(x_example)),
        "input_example": x_example.head(3),
    }


def save_and_log(model: Pipeline, path: Path, x_example: pd.DataFrame) -> str:
    """Write the MLflow model directory (the DVC out) and log those same files to the run.

    The directory is logged as the run's LoggedModel rather than serialised again with
    `log_model`: skops is slow for large ensembles, and DVC and MLflow then hold
    byte-identical models. Returns the LoggedModel id (`models:/<id>`).
    """
    staging = path.with_name(f".{path.name}.saving")
    shutil.rmtree(staging, ignore_errors=True)
    mlflow.sklearn.save_model(model, str(staging), **_model_kwargs(model, x_example))
    shutil.rmtree(path, ignore_errors=True)  # only once the new model is complete
    staging.rename(path)
    from vertiflow.lifecycle.tracking import log_model_dir

    return log_model_dir(path, "model", "sklearn")


def train(
    task: str, table: pl.DataFrame, target: str, section: dict[str, Any]
) -> tuple[Pipeline, pd.DataFrame, float]:
    """Build the model a params section describes and fit it: (model, inputs, fit seconds)."""
    spec = FeatureSpec.from_params(section["features"])
    x = frame(table, spec)
    model = build(
        task,
        section["estimator"],
        section.get("hyperparams") or {},
        spec,
        section["seed"],
        log_target=section.get("log_target", False),
    )
    seconds = fit(model, x, table[target].to_pandas())
    return model, x, seconds
