"""What applications call: a model by name and alias, whose predictions are logged.

Models come from the Model Registry (`oracle@champion`, or a version number) when asked
(`use_registry=True`) or when `MLFLOW_TRACKING_URI` is set; otherwise from the
pipeline's local `models/` outputs. The registry is the one the stages write to:
`MLFLOW_TRACKING_URI`, else the checkout's `.mlflow/mlflow.db` (unless the caller set a
tracking URI with `mlflow.set_tracking_uri`). Oracle and Classifier load as MLflow pyfunc
models, the detector as an Ultralytics YOLO model (its registered pyfunc folder holds the
weights). Tabular predictions are appended to the prediction log that
`vertiflow monitor --from-log` reads.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
import polars as pl

from vertiflow import runtime
from vertiflow.errors import VertiflowError
from vertiflow.lifecycle import registry
from vertiflow.monitoring import monitor

ALIASES = {"YOLO-SkinDetection": "yolo"}


class LoggedPredictor:
    """A pyfunc model whose every `predict` is appended to the prediction log."""

    def __init__(self, model: Any, name: str, version: str, log_root: Path):
        self.model, self.name, self.version, self.log_root = model, name, version, log_root

    @property
    def metadata(self):
        return self.model.metadata

    def predict(self, inputs: pd.DataFrame | pl.DataFrame):
        frame = inputs.to_pandas() if isinstance(inputs, pl.DataFrame) else inputs
        predictions = self.model.predict(frame)
        monitor.log_predictions(
            self.name, self.version, pl.from_pandas(frame), predictions, self.log_root
        )
        return predictions


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
    if key == "yolo":
        from vertiflow.vision import pyfunc, yolo

        return yolo.load_model(str(pyfunc.weights_in(registry.local_folder(uri))))
    return LoggedPredictor(mlflow.pyfunc.load_model(uri), key, label, log_root)


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
