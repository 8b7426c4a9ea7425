"""What applications call: a model by name and alias, whose predictions are logged.

Models come from the Model Registry (`oracle@champion`, or a version number) when asked
(`use_registry=True`) or when `MLFLOW_TRACKING_URI` is set; otherwise from the
pipeline's local `models/` outputs. The registry is the one the stages write to:
`MLFLOW_TRACKING_URI`, else the checkout's `.mlflow/mlflow.db` (unless the caller set a
tracking URI with `mlflow.set_tracking_uri`). Oracle and Classifier load as MLflow pyfunc
models, the detector as an Ultralytics YOLO model (its registered pyfunc folder holds the
weights). Tabular predictions are appended to the prediction log that
`vertiflow monitor --from-log` reads. A row whose category the model never trained on (a
crop it never saw) is still predicted, with an `UnseenCategoryWarning`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple

import mlflow
import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa

from vertiflow import runtime
from vertiflow.errors import VertiflowError
from vertiflow.lifecycle import registry
from vertiflow.monitoring import drift, monitor

ALIASES = {"YOLO-SkinDetection": "yolo"}


class Unseen(NamedTuple):
    """A label of a categorical input that the model was never trained on."""

    column: str
    value: str | None  # None: the label is missing (null), answered as an unseen one
    rows: int
    known: tuple[str, ...]

    @property
    def message(self) -> str:
        guess = f"the prediction is a guess from {', '.join(self.known)}."
        if self.value is None:
            return f"{self.column} missing ({self.rows} row(s)): {guess}"
        return f"{self.column} '{self.value}' ({self.rows} row(s)) was never trained on: {guess}"


class UnseenCategoryWarning(UserWarning):
    """A prediction for a label the model never trained on (a crop it never saw): it is
    answered, but it is a guess. A category of its own so that an app can catch it
    (`warnings.catch_warnings(record=True)`), refuse such rows
    (`warnings.simplefilter("error", UnseenCategoryWarning)`) or silence it. `unseen` holds
    the `Unseen` labels (column, value, rows, known labels)."""

    def __init__(self, message: str, unseen: list[Unseen]):
        super().__init__(message)
        self.unseen = unseen


def unseen_categories(frame: pd.DataFrame, metadata: Any) -> list[Unseen]:
    """Labels of `frame` absent from the training labels the MLmodel file records
    (`trained_categories`), with their rows: what the Django view answers in `warnings`
    and `LoggedPredictor` warns of. A model saved without them has none. A missing label
    (null) is one too: the encoder answers it as it answers a crop it never saw."""
    trained = (getattr(metadata, "metadata", None) or {}).get("trained_categories") or {}
    found = []
    for column, known in trained.items():
        if column not in frame.columns:
            continue
        sent = pl.Series(frame[column].dropna().astype(str).tolist(), dtype=pl.String)
        for value, rows in drift.unseen_levels(pl.Series(known), sent, top=len(frame)).items():
            found.append(Unseen(column, str(value), int(rows), tuple(map(str, known))))
        missing = int(frame[column].isna().sum())
        if missing:
            found.append(Unseen(column, None, missing, tuple(map(str, known))))
    return found


class LoggedPredictor:
    """A pyfunc model whose every `predict` (and `predict_proba`) is appended to the
    prediction log, reading what an app sends as `mlflow models serve` reads a request
    (`model_input`)."""

    def __init__(self, model: Any, name: str, version: str, log_root: Path):
        self.model, self.name, self.version, self.log_root = model, name, version, log_root

    @property
    def metadata(self):
        return self.model.metadata

    @property
    def classes_(self):
        """The grades, in the order of `predict_proba`'s columns (a classifier only)."""
        return self._estimator("classes_").classes_

    def predict(self, inputs):
        frame = model_input(inputs, self.metadata.get_input_schema(), self.name)
        self._warn_unseen(frame)
        predictions = self.model.predict(frame)
        self._log(frame, predictions)
        return predictions

    def predict_proba(self, inputs) -> np.ndarray:
        """Each grade's probability, columns in `classes_` order; logged with the grade
        `predict` answers, so the monitor sees an app that only asks for probabilities."""
        estimator = self._estimator("predict_proba")
        schema = self.metadata.get_input_schema()
        frame = model_input(inputs, schema, self.name)
        self._warn_unseen(frame)
        x = frame[schema.input_names()]
        probabilities = estimator.predict_proba(x)
        self._log(frame, estimator.predict(x))
        return probabilities

    def _warn_unseen(self, frame: pd.DataFrame) -> None:
        """Before predicting, so that an app treating the warning as an error predicts
        (and logs) nothing; silent, these guesses reached the app as answers."""
        unseen = unseen_categories(frame, self.metadata)
        if unseen:
            message = f"{self.name}: " + " ".join(u.message for u in unseen)
            warnings.warn(UnseenCategoryWarning(message, unseen), stacklevel=3)

    def _estimator(self, attribute: str) -> Any:
        estimator = self.model.get_raw_model()
        if not hasattr(estimator, attribute):
            raise VertiflowError(
                f"model '{self.name}' has no {attribute} (a regression answers with predict)."
            )
        return estimator

    def _log(self, frame: pd.DataFrame, predictions: Any) -> None:
        monitor.log_predictions(
            self.name, self.version, _loggable(frame), predictions, self.log_root
        )


NUMBERS = {"double", "float"}  # signature types MLflow refuses ints and text for


def model_input(inputs: Any, schema, model: str = "model") -> pd.DataFrame:
    """What an app passes (a pandas or polars table, one row as a dict, rows as a list of
    dicts, a dict of columns) as the signature's types, as `mlflow models serve` reads a
    JSON request: whole numbers (JSON's 35) and numbers as text ("21.5") become floats;
    null is a missing value. In Python, MLflow refused them ("Can not safely convert
    int64 to float64", after a dump of the frame and the schema) and a dict was predicted,
    then failed to log. Anything else is a VertiflowError naming column, row and value."""
    frame = _as_frame(inputs, model)
    repeated = frame.columns[frame.columns.duplicated()].unique().tolist()
    if repeated:  # frame[name] is then a table: AttributeError ('tolist') further down
        counts = frame.columns.value_counts()
        raise VertiflowError(
            f"{model}: "
            + "; ".join(f"column {c} appears {counts[c]} times" for c in repeated)
            + " (one value per input per row)."
        )
    names = schema.input_names()
    missing = [c for c in names if c not in frame.columns]
    if missing:
        raise VertiflowError(
            f"{model}: missing input(s) {', '.join(missing)} (it reads {', '.join(names)})."
        )
    if frame.empty:
        raise VertiflowError(f"{model}: no rows to predict.")
    frame = frame.copy()
    for spec in schema.inputs:
        column, number = frame[spec.name], spec.type.name in NUMBERS
        if number and pd.api.types.is_numeric_dtype(column) and column.dtype != bool:
            frame[spec.name] = column.astype(float)
            _refuse_infinite(frame[spec.name], model)
            continue
        if spec.type.name not in NUMBERS | {"string"}:
            continue  # MLflow's own check
        values = []
        for row, value in enumerate(column.tolist(), start=1):
            if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
                values.append(None)
                continue
            if number and isinstance(value, str | Decimal):  # Decimal: DecimalField, NUMERIC
                with contextlib.suppress(ValueError):
                    value = float(value)
                if isinstance(value, float) and np.isnan(value):
                    values.append(None)  # Decimal('NaN'), "nan": missing, as null is
                    continue
            if number:
                ok = isinstance(value, int | float | np.number) and not isinstance(
                    value, bool | np.bool_
                )
            else:
                ok = isinstance(value, str)
            if not ok:
                kind = "a number" if number else "text"
                raise VertiflowError(
                    f"{model}: {spec.name} (row {row}): expected {kind}, found {value!r}."
                )
            values.append(float(value) if number else value)
        frame[spec.name] = pd.Series(values, index=frame.index, dtype=float if number else object)
        if number:
            _refuse_infinite(frame[spec.name], model)
    return frame


def _refuse_infinite(column: pd.Series, model: str) -> None:
    """JSON's `Infinity` and the text "inf" are floats to Python; the model refused them
    with scikit-learn's "Input X contains infinity", naming no column or row."""
    infinite = np.isinf(column.to_numpy(dtype=float))
    if infinite.any():
        row = int(infinite.argmax())
        raise VertiflowError(
            f"{model}: {column.name} (row {row + 1}): expected a finite number, "
            f"found {float(column.iloc[row])!r}."
        )


def _as_frame(inputs: Any, model: str) -> pd.DataFrame:
    if isinstance(inputs, pl.DataFrame):
        return inputs.to_pandas()
    if isinstance(inputs, pd.DataFrame):
        return inputs
    if isinstance(inputs, pd.Series):  # one row, as `table.iloc[0]` gives it
        return inputs.to_frame().T.reset_index(drop=True)
    if isinstance(inputs, dict):
        listed = [isinstance(v, list | tuple | np.ndarray | pd.Series) for v in inputs.values()]
        if inputs and all(listed):
            return pd.DataFrame(inputs)  # a dict of columns
        if not any(listed):
            return pd.DataFrame([inputs])  # one row
    if isinstance(inputs, list | tuple) and inputs and all(isinstance(r, dict) for r in inputs):
        return pd.DataFrame(list(inputs))
    raise VertiflowError(
        f"{model}: expected model inputs as a pandas or polars DataFrame, a dict (one row, "
        f"or a list per column) or a list of dicts (rows); found {type(inputs).__name__}."
    )


def _loggable(frame: pd.DataFrame) -> pl.DataFrame:
    """The inputs for the log; a column the app added whose values mix kinds (an id sent
    as 7 and as "a7") is logged as text rather than failing a prediction already made."""
    try:
        return pl.from_pandas(frame)
    except (pl.exceptions.PolarsError, pa.ArrowException, TypeError, ValueError):
        mixed = {}
        for name in frame.columns:
            try:
                pl.from_pandas(frame[[name]])
            except (pl.exceptions.PolarsError, pa.ArrowException, TypeError, ValueError):
                mixed[name] = frame[name].map(lambda v: None if v is None else str(v))
        return pl.from_pandas(frame.assign(**mixed))


def _key(name: str) -> str:
    key = ALIASES.get(name, name)
    if key not in registry.NAMES:
        raise VertiflowError(f"unknown model '{name}'; known: {', '.join(registry.NAMES)}.")
    return key


def use_pipeline_store() -> str:
    """Point MLflow at the stages' tracking store, unless the caller chose one."""
    from mlflow.tracking._tracking_service.utils import is_tracking_uri_set

    from vertiflow.lifecycle import tracking

    if not is_tracking_uri_set():
        mlflow.set_tracking_uri(tracking.tracking_uri())
    return mlflow.get_tracking_uri()


def _from_registry(key: str, alias: str, version: int | None) -> tuple[str, str]:
    from vertiflow.lifecycle import tracking

    # A server that is down: one line in seconds, not 8 minutes of MLflow's retries.
    tracking.check_reachable(use_pipeline_store())
    client = mlflow.MlflowClient()
    name = registry.NAMES[key]
    try:
        found = (
            client.get_model_version(name, str(version))
            if version is not None
            else client.get_model_version_by_alias(name, alias)
        )
    except mlflow.exceptions.MlflowException:
        wanted = f"version {version}" if version is not None else f"alias '{alias}'"
        hint = ""
        if not client.search_model_versions(f"name = '{name}'", max_results=1):
            # A fresh clone: DVC restores evaluate's committed outputs instead of running it.
            hint = (
                f" Nothing named '{name}' is registered in this store yet: the evaluate stage "
                "registers the models, and DVC skips it when its outputs are already "
                "committed (a fresh clone); run `dvc repro -f -s evaluate` once."
            )
        raise VertiflowError(
            f"the registry at {mlflow.get_tracking_uri()} has no {wanted} of model '{name}'." + hint
        ) from None
    return f"models:/{name}/{found.version}", str(found.version)


def load_model(
    name: str,
    alias: str = registry.CHAMPION,
    version: int | None = None,
    use_registry: bool | None = None,
    models_dir: Path = Path("models"),
    log_root: Path = monitor.MONITORING_DIR,
):
    """`oracle`, `classifier` or `yolo` (`YOLO-SkinDetection`), by alias or version."""
    runtime.configure()
    key = _key(name)
    if use_registry is None:
        use_registry = bool(os.environ.get("MLFLOW_TRACKING_URI"))
    if use_registry:
        uri, label = _from_registry(key, alias, version)
    else:
        uri, label = str(models_dir / key), "local"
        if not Path(uri).is_dir():
            raise VertiflowError(f"{uri}: no model here; run `dvc repro` (or `dvc pull`) first.")
    with registry.local_folder(uri) as folder:  # read into memory here, then removed
        if key == "yolo":
            from vertiflow.vision import pyfunc, yolo

            return yolo.load_model(str(pyfunc.weights_in(folder)))
        return LoggedPredictor(mlflow.pyfunc.load_model(str(folder)), key, label, log_root)


def load_all_models(**kwargs) -> dict[str, Any]:
    """Every model there is. One that is not there is left out with a warning naming it
    and why: Skin-Twin-AI registers only its detector and has no farm models. None at
    all is an error."""
    models, missing = {}, {}
    for key in registry.NAMES:
        try:
            models[key] = load_model(key, **kwargs)
        except VertiflowError as exc:
            missing[key] = str(exc)
    if not models:
        raise VertiflowError(
            "no model could be loaded:\n" + "\n".join(f"  {k}: {why}" for k, why in missing.items())
        )
    for key, why in missing.items():
        logging.getLogger("vertiflow").warning("model '%s' not loaded: %s", key, why)
    return models
