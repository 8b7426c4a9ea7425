"""The interfaces Skin-Twin-AI's and the farm's code already call, over the real thing.

The calls work as the apps write them (Skin-Twin-AI's `mlops/README.md`):

    ModelRegistry().register_yolo_model(model_path=..., metrics=..., tags=...)
    ModelLoader(use_registry=True).load_all_models()
    ModelMonitor().log_prediction(prediction_dict, input_data=image_array)
    ModelMonitor().detect_data_drift(current_data, reference_data)
    TrainingPipeline().run_full_pipeline(data_path=...)

and the calls its own `mlops/` code makes beyond them (`get_latest_model`, `load_model`,
`transition_model_stage`, `list_all_models`, the monitor's history and stats, its
`PerformanceTracker` and `AlertingSystem`), with MLflow's deprecated stages read as the
gate's aliases.

Run from the pipeline's checkout. The tracking store is resolved as the stages resolve
it: `MLFLOW_TRACKING_URI` when set, else the checkout's `.mlflow/mlflow.db` (not MLflow's
own default `./mlflow.db`). Files live under `.monitoring/` as the apps expect.
"""

from __future__ import annotations

import json
import logging
import os
import re
import uuid
import weakref
from collections import defaultdict, deque
from contextlib import nullcontext
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl

from vertiflow import runtime
from vertiflow.errors import VertiflowError
from vertiflow.lifecycle import registry, serving
from vertiflow.monitoring import drift, images, monitor

# Metric names the apps use for a detector's mAP at IoU 0.5 (the quality gate's metric).
MAP50_KEYS = ("mAP50", "mAP", "map50", "metrics/mAP50(B)")
# The seed's stages are MLflow's deprecated model stages; here they are the aliases the
# gate sets. `Archived`/`None` in a transition take a version's aliases away.
SEED_STAGES = {"production": registry.CHAMPION, "staging": registry.CHALLENGER}
HISTORY_EVERY = 100  # predictions between writes of predictions_history.json (the seed's)


def _params() -> dict[str, Any]:
    from vertiflow import params

    return params.load(runtime.require_checkout() / "params.yaml")


def _metric_name(key: str) -> str:
    """Ultralytics' `metrics/mAP50(B)` as MLflow allows a metric or tag name."""
    return re.sub(r"[^\w\-. :/]", "_", str(key)).strip("_")


def _map50(metrics: dict[str, Any]) -> tuple[str, float]:
    """The app's mAP at IoU 0.5 (the first of MAP50_KEYS it gave), which the gate reads."""
    key = next((k for k in MAP50_KEYS if k in metrics), None)
    if key is None:
        raise VertiflowError(
            f"metrics: no mAP at IoU 0.5 (one of {', '.join(MAP50_KEYS)}); the registry's gate "
            f"decides on it. Found: {', '.join(map(str, metrics)) or 'nothing'}."
        )
    return key, float(metrics[key])


def _checked_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """Numbers, under names MLflow accepts, with an mAP at IoU 0.5 in [0, 1]: the gate
    decides a first champion on it, and a percentage (85) would pass any floor."""
    clean = {}
    for key, value in metrics.items():
        try:  # a bool is no measure: True was read as an mAP of 1.0, a first champion
            if isinstance(value, bool | np.bool_):
                raise TypeError
            clean[_metric_name(key)] = float(value)
        except (TypeError, ValueError):
            raise VertiflowError(f"metrics['{key}']: expected a number, found {value!r}.") from None
    key, value = _map50(metrics)
    if not np.isfinite(value):  # "a percentage? give nan" before
        raise VertiflowError(f"metrics['{key}']: expected a finite number, found {value!r}.")
    if not 0 <= value <= 1:
        raise VertiflowError(
            f"metrics['{key}'] = {value:g}: expected a fraction in [0, 1] "
            f"(a percentage? give {value / 100:g})."
        )
    return clean


class ModelRegistry:
    """Skin-Twin-AI's registry calls, on the MLflow Model Registry of the pipeline."""

    def __init__(self, tracking_uri: str | None = None):
        runtime.configure()
        self.tracking_uri = tracking_uri
        self.last_decision: dict[str, Any] | None = None

    def register_yolo_model(
        self,
        model_path: str | Path,
        metrics: dict[str, float],
        tags: dict[str, str] | None = None,
        description: str = "",
        use_active_run: bool = True,
    ) -> int:
        """Register detector weights (a .pt file, or a folder holding one) as
        `YOLO-SkinDetection`, an MLflow pyfunc model `mlflow models serve` can serve.

        The new version goes through the pipeline's gate (`register` in params.yaml): it
        becomes `champion` if it is the first to pass the mAP50 gate, or if it beats the
        champion on the checkout's validation images by more than the noise; otherwise
        it is the `challenger`. The same weights again register nothing. Returns the
        version number; the gate's record is in `last_decision`.
        """
        import mlflow

        from vertiflow.lifecycle import tracking
        from vertiflow.vision import pyfunc, yolo

        path = Path(model_path)
        if not path.exists():
            raise VertiflowError(f"{path}: no such file or folder (YOLO weights, .pt).")
        weights = pyfunc.weights_in(path) if path.is_dir() else path
        try:
            yolo.load_model(str(weights))
        except VertiflowError:
            raise
        except Exception as exc:  # Ultralytics raises many kinds on a file it cannot read
            raise VertiflowError(
                f"{weights}: not Ultralytics YOLO weights ({type(exc).__name__})."
            ) from None
        clean = _checked_metrics(metrics)
        all_params = _params()
        section = all_params["register"]
        passes = registry.reaches(_map50(metrics)[1], section["gates"]["yolo_map50"])
        loss = _validation_loss(all_params)
        tags = {**(tags or {}), **({"description": description} if description else {})}
        if use_active_run and mlflow.active_run() is not None:
            context = nullcontext()  # the caller's run (the seed's use_active_run)
        elif self.tracking_uri:
            tracking.check_reachable(self.tracking_uri)  # seconds, not MLflow's retries
            mlflow.set_tracking_uri(self.tracking_uri)
            context = mlflow.start_run(run_name="register_yolo_model")
        else:  # the stages' store and experiment
            context = tracking.stage_run("register_yolo_model", {"model_path": str(path)})
        with context:
            mlflow.log_metrics(clean)
            self.last_decision = registry.register_detector(
                weights, clean, passes, loss, section, tags
            )
        decision = self.last_decision
        if decision.get("unchanged") or decision.get("reused"):
            # The same weights again, with what the caller now says of them (the seed's
            # `tags={'version': '1.1'}`): set on the version that holds them, not dropped.
            client = mlflow.MlflowClient()
            held = client.get_model_version(decision["name"], str(decision["version"])).tags
            for key, value in tags.items():
                if held.get(key) != str(value):
                    client.set_model_version_tag(
                        decision["name"], str(decision["version"]), key, str(value)
                    )
        return int(decision["version"])

    def _client(self):
        import mlflow

        from vertiflow.lifecycle import tracking

        if self.tracking_uri:
            tracking.check_reachable(self.tracking_uri)
            mlflow.set_tracking_uri(self.tracking_uri)
        else:
            if not os.environ.get("MLFLOW_TRACKING_URI"):
                runtime.require_checkout()  # the checkout's store, not a new empty one
            tracking.check_reachable(serving.use_pipeline_store())
        return mlflow.MlflowClient()

    def _alias(self, stage: str) -> str:
        alias = SEED_STAGES.get(stage.lower(), stage.lower())
        if alias not in (registry.CHAMPION, registry.CHALLENGER):
            raise VertiflowError(
                f"stage {stage!r}: expected 'Production' (the champion alias) or 'Staging' "
                "(the challenger), or the alias itself."
            )
        return alias

    def get_latest_model(self, model_name: str, stage: str = "Production") -> dict | None:
        """The version `stage` names (Production: `champion`; Staging: `challenger`), as
        the seed returns it, or None (logged) when there is none. Unlike the seed, no
        fallback to the newest version: that one may have failed the gate."""
        client, alias = self._client(), self._alias(stage)
        name = _registered_name(model_name)
        version = registry.alias_version(client, name, alias)
        if version is None:
            logging.getLogger("vertiflow").warning(
                "no version of model '%s' has the alias '%s' (%s) in %s",
                name,
                alias,
                stage,
                client.tracking_uri,
            )
            return None
        return {
            "name": version.name,
            "version": int(version.version),
            "stage": stage,
            "alias": alias,
            "run_id": version.run_id,
            "source": version.source,
            "tags": dict(version.tags),
        }

    def load_model(self, model_name: str, stage: str = "Production"):
        """The model in `stage`, ready to predict: an Ultralytics YOLO for the detector (the
        seed returned a downloaded folder), a logged pyfunc model for the farm's models,
        MLflow's pyfunc for any other registered name; None when there is none."""
        info = self.get_latest_model(model_name, stage)
        if info is None:
            return None
        key = serving.ALIASES.get(info["name"], info["name"])
        if key in registry.NAMES:
            return serving.load_model(key, version=int(info["version"]), use_registry=True)
        import mlflow

        return mlflow.pyfunc.load_model(f"models:/{info['name']}/{info['version']}")

    def transition_model_stage(self, model_name: str, version: int | str, stage: str) -> None:
        """A person's decision, past the gate: `Production` makes `version` the champion,
        `Staging` the challenger, `Archived`/`None` takes its aliases away. Recorded in the
        version's tags (`transition.<alias>` = the time), as the gate records its own."""
        client = self._client()
        name = _registered_name(model_name)
        try:
            found = client.get_model_version(name, str(version))
        except Exception:  # MLflow raises its own kinds for an unknown name or version
            known = sorted(int(v.version) for v in client.search_model_versions(f"name = '{name}'"))
            raise VertiflowError(
                f"model '{name}' has no version {version}; registered versions: "
                f"{', '.join(map(str, known)) or 'none'}."
            ) from None
        if stage.lower() in ("archived", "none"):
            for alias in found.aliases:
                client.delete_registered_model_alias(name, alias)
            return
        alias = self._alias(stage)
        registry.set_alias(client, name, alias, found.version)
        other = registry.CHALLENGER if alias == registry.CHAMPION else registry.CHAMPION
        if other in found.aliases:  # one stage at a time, as MLflow's stages were
            client.delete_registered_model_alias(name, other)
        now = datetime.now(UTC).isoformat(timespec="seconds")
        client.set_model_version_tag(name, found.version, f"transition.{alias}", now)

    def list_all_models(self) -> list[dict[str, Any]]:
        """Every registered model: its newest version, its aliases and description."""
        client = self._client()
        models = []
        for model in client.search_registered_models():
            versions = client.search_model_versions(f"name = '{model.name}'")
            models.append(
                {
                    "name": model.name,
                    "latest_versions": [max(int(v.version) for v in versions)],
                    "aliases": {alias: int(v) for alias, v in model.aliases.items()},
                    "description": model.description,
                }
            )
        return models


def _validation_loss(all_params: dict[str, Any]):
    """The gate's per-image loss on the checkout's validation images, if there are any."""
    from vertiflow.vision import yolo_data

    dataset = runtime.checkout_root() / all_params["images"]["dataset"]
    try:
        pairs = yolo_data.read(dataset).pairs["val"]
    except VertiflowError:
        return None
    section = all_params["train_yolo"]
    return lambda uri: registry.detector_errors(uri, pairs, section)


class ModelLoader:
    """All models by alias: `oracle`, `classifier` (logged pyfunc models) and `yolo` (an
    Ultralytics YOLO model, as the app's `models['yolo'].predict(image)` expects)."""

    def __init__(self, use_registry: bool = False, alias: str = registry.CHAMPION):
        runtime.configure()
        self.use_registry, self.alias = use_registry, alias
        self.models: dict[str, Any] = {}

    def load_all_models(self) -> dict[str, Any]:
        """The models there are (one missing is left out with a warning naming it)."""
        self.models = serving.load_all_models(**self._where())
        return self.models

    def load_yolo_model(self, model_path: str | Path | None = None):
        """The detector alone (the seed's call): the weights at `model_path`, else the
        champion (registry) or `models/yolo` (local), as `load_all_models` finds it."""
        if model_path is None:
            model = serving.load_model("yolo", **self._where())
        else:
            from vertiflow.vision import pyfunc, yolo

            path = Path(model_path)
            if not path.exists():
                raise VertiflowError(f"{path}: no such file or folder (YOLO weights, .pt).")
            model = yolo.load_model(str(pyfunc.weights_in(path) if path.is_dir() else path))
        self.models["yolo"] = model
        return model

    def _where(self) -> dict[str, Any]:
        if not (self.use_registry and os.environ.get("MLFLOW_TRACKING_URI")):
            runtime.require_checkout()  # the local store and models/ are the checkout's
        models_dir = runtime.checkout_root() / "models"
        return {"alias": self.alias, "use_registry": self.use_registry, "models_dir": models_dir}


class ModelMonitor:
    """Prediction logging, performance metrics, error alerts and drift checks."""

    def __init__(self, max_history: int = monitor.WINDOW, root: Path = monitor.MONITORING_DIR):
        runtime.configure()
        self.root = Path(root)
        self.window = max_history
        self.reference_data: Any = None
        # The seed's in-process history (`predictions_history.json`, rewritten every
        # HISTORY_EVERY predictions and at exit); the complete log is `predictions/`.
        self.predictions_history: deque[dict[str, Any]] = deque(
            _read_history(self.root / HISTORY_FILE), maxlen=max_history
        )
        self._unsaved = [0]  # predictions since the last write, shared with the finalizer
        weakref.finalize(self, _write_history, self.root, self.predictions_history, self._unsaved)

    def save_history(self) -> Path:
        return _write_history(self.root, self.predictions_history, self._unsaved, force=True)

    def log_prediction(
        self,
        prediction: Any,
        actual: Any = None,
        input_data: Any = None,
        model_name: str | None = None,
        model_version: str = "unknown",
        latency_s: float | None = None,
        conf: float | None = None,
    ) -> Path:
        """Log one prediction with what it was made from.

        `input_data` an image (H x W x C or H x W array, RGB, 0-255 or float 0-1; a PIL
        image; a file path) or a batch (N x H x W x C array, or a list): its features
        (`monitoring.images`) are logged with the detector's outputs read from
        `prediction` (`images.detections_from`: our detection dicts, the app's
        `{"detections": [{"class", "confidence", "bbox"}]}`, Ultralytics Results), in the
        detector's log (`yolo`), also detections logged without an image and under
        another `model_name` (kept as `app_model`; its latency is logged under that name).
        A table: logged as the tabular models' inputs.
        An array that is the one Ultralytics read (its Results' `orig_img`) is taken as
        BGR, as Ultralytics reads it (the app's `cv2.imread` array).
        Latency: `latency_s`, or the prediction's `inference_time`/`total_inference_time`,
        or the Ultralytics Results' own `speed`.
        `conf`: the detector's confidence threshold (the monitor compares at the same one).
        """
        pictures = None
        if isinstance(input_data, np.ndarray) and input_data.ndim == 2:
            pictures = images.as_images([input_data], "input_data")  # one grayscale image
        elif input_data is not None:
            pictures = images.as_images(input_data, "input_data")
        if pictures is not None:
            pictures = _as_the_detector_saw(pictures, prediction)
        found = images.detections_from(prediction)
        detector = pictures is not None or (input_data is None and found is not None)
        name = monitor.checked_model_name(model_name or ("yolo" if detector else "unknown"))
        if latency_s is None:
            latency_s = _latency(prediction)
        confidence = None
        if found is not None:
            confs = [b["confidence"] for d in found for b in d.get("boxes") or []]
            confidence = float(np.mean(confs)) if confs else None
        if pictures is not None:
            if found is None and name == "yolo":
                raise VertiflowError(_no_detections(prediction))
            table = self._image_rows(found, pictures)
            # one image's own detections per row; else the whole prediction
            values = [json.dumps(_jsonable(v)) for v in found or [prediction] * len(pictures)]
        elif isinstance(input_data, pd.DataFrame | pl.DataFrame):
            table = _frame(input_data)
            values = _prediction_values(prediction, table.height)
        elif input_data is None and found is not None:  # the detector's answers, no image
            table = images.output_features(found)
            values = [json.dumps(_jsonable(d)) for d in found]
        elif input_data is None:
            table = pl.DataFrame({"row": [0]})
            values = [json.dumps(_jsonable(prediction))]
        else:
            raise VertiflowError(
                "input_data: expected an image (H x W x C or H x W array, a PIL image or an "
                "image file path), a batch of images (N x H x W x C, or a list) or a table; "
                f"found {type(input_data).__name__}"
                + (f" of shape {input_data.shape}." if hasattr(input_data, "shape") else ".")
            )
        if conf is not None:
            table = table.with_columns(pl.lit(float(conf)).alias("conf"))
        if actual is not None:
            table = table.with_columns(pl.lit(json.dumps(_jsonable(actual))).alias("actual"))
        # The detector's inputs and answers go to its log, the one its drift check reads,
        # whatever the app calls its model (Skin-Twin-AI logs its views as 'ensemble');
        # the app's name is kept beside them, and its latency stays under that name.
        log = "yolo" if found is not None and (pictures is not None or input_data is None) else name
        if log != name:
            table = table.with_columns(pl.lit(name).alias("app_model"))
        path = monitor.log_predictions(log, model_version, table, values, self.root)
        monitor.record_event(name, latency_s, confidence, root=self.root, window=self.window)
        self.predictions_history.append(
            {
                "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds"),
                "model_name": name,
                "model_version": model_version,
                "prediction": _jsonable(prediction),
                "actual": _jsonable(actual),
                "input_shape": _shape(input_data),
                "log": path.name,
            }
        )
        self._unsaved[0] += 1
        if self._unsaved[0] >= HISTORY_EVERY:
            self.save_history()
        return path

    @staticmethod
    def _image_rows(found, pictures: list[np.ndarray]) -> pl.DataFrame:
        table = images.features(pictures)
        if found is None:
            return table
        if len(found) != len(pictures):
            raise VertiflowError(
                f"the prediction holds detections for {len(found)} image(s) but input_data "
                f"has {len(pictures)}."
            )
        return pl.concat([table, images.output_features(found)], how="horizontal")

    def log_error(self, model_name: str, error: BaseException | str, **context: Any) -> Path:
        """A failed prediction: an alert in `alerts/` and an error in the performance log."""
        return monitor.record_error(model_name, error, context or None, self.root, self.window)

    @property
    def performance_metrics(self) -> dict[str, Any]:
        """`performance_metrics.json`: per model, latency, errors, confidence, quality."""
        path = self.root / "performance_metrics.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def calculate_performance_metrics(
        self, predictions: list, actuals: list, model_name: str = "unknown"
    ) -> dict[str, Any]:
        """Quality on labelled predictions (the seed's weighted precision, recall and F1),
        kept under the model's `quality` in `performance_metrics.json`."""
        from sklearn import metrics

        predicted, actual = list(np.asarray(predictions).ravel()), list(np.asarray(actuals).ravel())
        if len(predicted) != len(actual) or not actual:
            raise VertiflowError(
                "calculate_performance_metrics: expected as many predictions as actuals, at "
                f"least one; found {len(predicted)} predictions and {len(actual)} actuals."
            )
        labels = sorted({*map(str, predicted), *map(str, actual)})
        predicted, actual = [str(v) for v in predicted], [str(v) for v in actual]
        scores = metrics.precision_recall_fscore_support(
            actual, predicted, labels=labels, average="weighted", zero_division=0
        )
        result = {
            "accuracy": float(metrics.accuracy_score(actual, predicted)),
            "precision": float(scores[0]),
            "recall": float(scores[1]),
            "f1_score": float(scores[2]),
            "confusion_matrix": metrics.confusion_matrix(actual, predicted, labels=labels).tolist(),
            "labels": labels,
            "n": len(actual),
        }
        monitor.record_quality(model_name, result, self.root, self.window)
        return result

    def get_prediction_stats(self, hours: float = 24) -> dict[str, Any]:
        """Predictions logged in the last `hours` (all models, and per model), from the
        prediction log, so every process's predictions count. None in the window gives
        `{}`, as the seed's did: its callers test `if stats:`."""
        now = datetime.now(UTC)
        counts = monitor.prediction_counts(self.root, now - timedelta(hours=hours))
        total = sum(counts.values())
        if not total:
            return {}
        return {
            "total_predictions": total,
            "time_period_hours": hours,
            "predictions_per_hour": total / hours,
            "per_model": counts,
            "timestamp": now.isoformat(timespec="seconds"),
        }

    def set_reference_data(self, reference_data: Any) -> None:
        self.reference_data = reference_data

    def detect_data_drift(
        self,
        current_data: Any,
        reference_data: Any = None,
        columns: list[str] | None = None,
        model_name: str | None = None,
    ) -> dict[str, Any]:
        """Per-feature drift, recorded (`history.jsonl`) and alerted (`alerts/`).

        Tables: every shared column (or `columns`). Image batches (N x H x W x C arrays or
        lists of images): the image features of `monitoring.images`. Not one KS test over
        flattened pixels, which flags any two batches of different pictures.
        `model_name`: the model whose inputs these are, named in the record and the alert
        (images: `yolo` unless said otherwise, as `log_prediction` logs them).
        """
        reference = self.reference_data if reference_data is None else reference_data
        if reference is None:
            raise VertiflowError("detect_data_drift: no reference data (pass reference_data).")
        current_images = images.as_images(current_data, "current_data")
        reference_images = images.as_images(reference, "reference_data")
        thresholds = _thresholds()
        if current_images is not None and reference_images is not None:
            report = monitor.check_images(
                images.features(reference_images), images.features(current_images), thresholds
            )
        elif current_images is None and reference_images is None:
            current, ref = _frame(current_data, "current_data"), _frame(reference, "reference_data")
            columns = columns or [c for c in ref.columns if c in current.columns]
            if not columns:  # else "ok" having compared nothing
                raise VertiflowError(
                    "detect_data_drift: current and reference data share no column, so "
                    f"nothing can be compared; current_data has {_names(current)}, "
                    f"reference_data has {_names(ref)}."
                )
            report = monitor.check(ref, current, columns, thresholds)
        else:
            raise VertiflowError(
                "detect_data_drift: current and reference data must both be images "
                "(N x H x W x C) or both be tables."
            )
        report["drift_detected"] = report["severity"] != "ok"
        model = model_name or ("yolo" if current_images is not None else None)
        report = {**({"model": model} if model else {}), **report}
        alert = monitor.record(report, self.root)
        return {**report, **_seed_summary(report), "alert": str(alert) if alert else None}


class TrainingPipeline:
    """The seed's training entry point: the DVC pipeline on a data folder."""

    def __init__(self, repo: str | Path | None = None):
        runtime.configure()
        self.repo = Path(repo) if repo else runtime.checkout_root()

    def run_full_pipeline(self, data_path: str | Path) -> dict[str, Any]:
        """Point the pipeline at `data_path` and run it (`dvc exp run -S ...` through
        DVC's API); returns the metrics files' values, the experiment's name and its
        pipeline run in MLflow (`run_id`, as the seed returned its run).

        A folder with a YOLO `data.yaml` sets `images.dataset`; a farm export (batches,
        telemetry, harvests) sets `prepare.raw_dir`. Stages whose inputs did not change
        are not re-run.
        """
        from dvc.exceptions import DvcException
        from dvc.repo import Repo

        from vertiflow.lifecycle import tracking

        data = Path(data_path)
        where = data if data.is_absolute() else self.repo / data
        if (where / "data.yaml").is_file():
            key = "images.dataset"
        elif any(where.glob("batches.*")) and any(where.glob("harvests.*")):
            key = "prepare.raw_dir"
        else:
            raise VertiflowError(
                f"{where}: neither an image dataset (a folder with a YOLO data.yaml) nor a "
                "farm export (batches, telemetry and harvests files)."
            )
        value = data.as_posix()
        # DVC's API runs in this process, so the stages find no `dvc` process to share a
        # pipeline run by: name it for them (the seed returned its run's id)
        run_key = uuid.uuid4().hex[:12]
        previous = os.environ.get(tracking.PIPELINE_RUN_VARIABLE)
        os.environ[tracking.PIPELINE_RUN_VARIABLE] = run_key
        try:
            with Repo(str(self.repo)) as repo:
                revs = list(repo.experiments.run(params=[f"{key}={value}"]))
                names = repo.experiments.get_exact_name(revs) if revs else {}
                metrics = repo.metrics.show()
        except DvcException as exc:
            raise VertiflowError(f"the pipeline failed: {exc}") from None
        finally:
            if previous is None:
                os.environ.pop(tracking.PIPELINE_RUN_VARIABLE, None)
            else:
                os.environ[tracking.PIPELINE_RUN_VARIABLE] = previous
        workspace = metrics.get("workspace") or metrics.get("") or {}  # DVC's key for it
        values = {Path(p).stem: e.get("data", {}) for p, e in workspace.get("data", {}).items()}
        experiment = next((n for n in names.values() if n), None)
        run_id = tracking.find_pipeline_run(run_key, self.repo)  # None when nothing ran
        return {"experiment": experiment, "run_id": run_id, "data": {key: value}, "metrics": values}


class PerformanceTracker:
    """The seed's tracker, kept in process as it was, and written to the performance log
    too (`performance_metrics.json`), where the monitor and the workflow read it."""

    def __init__(self, root: Path = monitor.MONITORING_DIR, window: int = monitor.WINDOW):
        runtime.configure()
        self.root, self.window = Path(root), window
        self.metrics_history: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.inference_times: list[dict[str, Any]] = []
        self.error_counts: dict[str, int] = defaultdict(int)

    def track_inference_time(self, model_name: str, inference_time: float) -> None:
        monitor.checked_model_name(model_name)
        now = datetime.now(UTC).isoformat(timespec="milliseconds")
        self.inference_times.append({"model": model_name, "time": inference_time, "timestamp": now})
        monitor.record_event(
            model_name, latency_s=inference_time, root=self.root, window=self.window, timing=True
        )

    def track_metric(self, model_name: str, metric_name: str, value: float) -> None:
        now = datetime.now(UTC).isoformat(timespec="milliseconds")
        self.metrics_history[f"{model_name}_{metric_name}"].append(
            {"value": value, "timestamp": now}
        )

    def track_error(self, model_name: str, error_type: str) -> None:
        monitor.checked_model_name(model_name)
        self.error_counts[f"{model_name}_{error_type}"] += 1
        monitor.record_event(model_name, error=error_type, root=self.root, window=self.window)

    def get_average_inference_time(self, model_name: str, last_n: int = 100) -> float:
        times = [t["time"] for t in self.inference_times if t["model"] == model_name][-last_n:]
        return sum(times) / len(times) if times else 0.0

    def get_latest_metrics(self, model_name: str) -> dict[str, float]:
        prefix = f"{model_name}_"
        return {
            key.removeprefix(prefix): values[-1]["value"]
            for key, values in self.metrics_history.items()
            if key.startswith(prefix) and values
        }

    def get_error_summary(self) -> dict[str, int]:
        return dict(self.error_counts)


class AlertingSystem:
    """The seed's alerts, in the monitor's `alerts/` (`<time>-<severity>-<model>.json`)."""

    def __init__(self, alert_dir: str | Path = monitor.MONITORING_DIR / "alerts"):
        runtime.configure()
        self.alert_dir = Path(alert_dir)
        self.alert_dir.mkdir(parents=True, exist_ok=True)

    def send_drift_alert(self, drift_info: dict[str, Any]) -> Path:
        """A drift report's alert; one `detect_data_drift` already wrote is not doubled."""
        if drift_info.get("alert") and Path(drift_info["alert"]).exists():
            return Path(drift_info["alert"])
        severity = drift_info.get("severity") or "warning"
        message = f"Data drift detected: p-value={drift_info.get('p_value') or 0:.4f}"
        return self._save("drift", severity, drift_info.get("model"), message, details=drift_info)

    def send_performance_alert(
        self, model_name: str, metric_name: str, value: float, threshold: float
    ) -> Path:
        message = f"{model_name} {metric_name} ({value:.4f}) below threshold ({threshold:.4f})"
        more = {"metric": metric_name, "value": value, "threshold": threshold}
        return self._save("performance_degradation", "warning", model_name, message, **more)

    def send_error_alert(self, model_name: str, error_type: str, error_message: str) -> Path:
        return monitor.record_error(
            model_name, f"{error_type}: {error_message}", root=self.alert_dir.parent
        )

    def _save(self, kind: str, severity: str, model: str | None, message: str, **more) -> Path:
        now = datetime.now(UTC)
        path = monitor.alert_path(self.alert_dir, severity, model, now)
        alert = {"kind": kind, "severity": severity, **({"model": model} if model else {})}
        alert |= {"message": message, "at": now.isoformat(timespec="milliseconds"), **more}
        path.write_text(json.dumps(_jsonable(alert), indent=2) + "\n")
        logging.getLogger("vertiflow").warning("%s alert: %s", kind, message)
        return path


HISTORY_FILE = "predictions_history.json"


def _registered_name(model_name: str) -> str:
    """`oracle`, `classifier`, `yolo` or `YOLO-SkinDetection` as registered; any other
    name as given (a model the app registered itself)."""
    return registry.NAMES.get(serving.ALIASES.get(model_name, model_name), model_name)


def _read_history(path: Path) -> list[dict[str, Any]]:
    """An earlier process's history; one that cannot be read starts afresh (it is a
    convenience copy: the prediction log keeps every prediction)."""
    try:
        entries = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    return entries if isinstance(entries, list) else []


def _write_history(root: Path, history: deque, unsaved: list[int], force: bool = False) -> Path:
    """`predictions_history.json`, atomically; at exit only when there is something new
    (a monitor that logged nothing leaves no file behind)."""
    path = root / HISTORY_FILE
    if not (force or unsaved[0]):
        return path
    unsaved[0] = 0
    root.mkdir(parents=True, exist_ok=True)
    # one temporary file per write: the threads of a server (a monitor per request) had
    # shared one per process, and lost writes to FileNotFoundError in the finalizer
    tmp = root / f".{HISTORY_FILE}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
    tmp.write_text(json.dumps(list(history.copy()), indent=1) + "\n")  # copy: C, atomic
    tmp.replace(path)
    return path


def _shape(data: Any) -> list[int] | None:
    if data is None:
        return None
    if hasattr(data, "shape"):
        return [int(n) for n in data.shape]
    if hasattr(data, "size") and isinstance(data.size, tuple):  # PIL: (w, h)
        width, height = data.size
        return [int(height), int(width)]
    return [len(data)] if isinstance(data, list | tuple) else None


def _seed_summary(report: dict[str, Any]) -> dict[str, Any]:
    """The seed's one-test fields over a per-feature report: `p_value`, the smallest
    feature p-value, Bonferroni-adjusted (below `monitor.alpha` = significant drift);
    `statistic`, that feature's PSI; `feature`, its name; `timestamp`."""
    tested = {name: f for name, f in report["features"].items() if f.get("p_value") is not None}
    if tested:
        name = min(tested, key=lambda n: tested[n]["p_value"])
        p = min(1.0, tested[name]["p_value"] * len(report["features"]))
        statistic = tested[name]["psi"]
    else:  # nothing had values on both sides: nothing was tested
        name, p, statistic = None, 1.0, 0.0
    return {
        "p_value": p,
        "statistic": statistic,
        "feature": name,
        "timestamp": report["checked_at"],
    }


def _thresholds() -> drift.Thresholds:
    try:
        return drift.Thresholds(**_params()["monitor"])
    except VertiflowError:  # outside the checkout: the documented defaults
        return drift.Thresholds()


def _frame(data: Any, where: str = "input_data") -> pl.DataFrame:
    """A polars table from a table, a dict of columns, a list or a 1-D/2-D array."""
    if isinstance(data, pl.DataFrame):
        return data
    if isinstance(data, pd.DataFrame):
        return pl.from_pandas(data)
    try:
        return pl.DataFrame(data)
    except Exception as exc:  # polars raises several kinds on what is not a table
        raise VertiflowError(
            f"{where}: expected images (arrays, PIL images or image file paths) or a table "
            f"(DataFrame, dict of columns, list or 1-D/2-D array); found "
            f"{type(data).__name__} that is neither ({type(exc).__name__})."
        ) from None


def _names(table: pl.DataFrame) -> str:
    return f"columns {', '.join(table.columns)}" if table.columns else "no columns"


def _as_the_detector_saw(pictures: list[np.ndarray], prediction: Any) -> list[np.ndarray]:
    """Ultralytics reads an array as BGR (OpenCV's order, which the app's `cv2.imread`
    gives) and keeps it as the Results' `orig_img`. An image identical to it is the
    array the detector read, so its features are taken in the colours the detector saw;
    read as RGB, red and blue swapped and unchanged images were critical drift."""
    results = images.results_in(prediction)
    if len(results) != len(pictures):
        return pictures
    seen = []
    for picture, result in zip(pictures, results, strict=True):
        orig = getattr(result, "orig_img", None)
        read_as_bgr = (
            isinstance(orig, np.ndarray)
            and orig.shape == picture.shape
            and np.array_equal(orig, picture)
            and not np.array_equal(orig, picture[..., ::-1])
        )
        seen.append(np.ascontiguousarray(picture[..., ::-1]) if read_as_bgr else picture)
    return seen


def _latency(prediction: Any) -> float | None:
    """Seconds, from the app's dict (`inference_time`, `total_inference_time`) or the
    Ultralytics Results (`speed`), also inside the dict."""
    if isinstance(prediction, dict):
        for key in ("inference_time", "total_inference_time"):
            if prediction.get(key) is not None:
                return float(prediction[key])
        for key in images.DETECTION_KEYS[1:]:
            if key in prediction and (found := _latency(prediction[key])) is not None:
                return found
        return None
    return images.speed_s(prediction)


def _no_detections(prediction: Any) -> str:
    """Why an image's prediction cannot be logged as the detector's (nulls, silently)."""
    if isinstance(prediction, dict):
        what = f"a dict with keys {', '.join(map(repr, prediction)) or '(none)'}"
    else:
        what = type(prediction).__name__
    return (
        f"log_prediction: the prediction ({what}) holds no detections in a form the monitor "
        "reads, so the detector's answers (boxes, confidence) would be logged empty. "
        'Expected Ultralytics Results, {"detections": [{"class", "confidence", "bbox"}]}, '
        '{"predictions": [{"class", "confidence"}]} or {"boxes": [{"class_name", '
        '"confidence"}]}; for another model\'s output with an image, pass model_name.'
    )


def _prediction_values(prediction: Any, rows: int) -> list[Any]:
    if isinstance(prediction, dict):
        return [json.dumps(_jsonable(prediction))] * rows
    values = np.asarray(prediction).tolist()
    if not isinstance(values, list) or len(values) != rows:
        raise VertiflowError(f"the prediction has not one value per input row ({rows} rows).")
    return values


def _jsonable(value: Any) -> Any:
    """What can be written as JSON: Ultralytics Results as detections, arrays as lists."""
    results = value if isinstance(value, list | tuple) and value else [value]
    if all(images.is_results(r) for r in results):  # Ultralytics
        return images.detections_from(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray | np.generic):
        return value.tolist()
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)
