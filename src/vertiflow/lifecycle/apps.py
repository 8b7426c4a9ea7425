"""The interfaces Skin-Twin-AI's and the farm's code already call, over the real thing.

The calls work as the apps write them (Skin-Twin-AI's `mlops/README.md`):

    ModelRegistry().register_yolo_model(model_path=..., metrics=..., tags=...)
    ModelLoader(use_registry=True).load_all_models()
    ModelMonitor().log_prediction(prediction_dict, input_data=image_array)
    ModelMonitor().detect_data_drift(current_data, reference_data)
    TrainingPipeline().run_full_pipeline(data_path=...)

Run from the pipeline's checkout. The tracking store is resolved as the stages resolve
it: `MLFLOW_TRACKING_URI` when set, else the checkout's `.mlflow/mlflow.db` (not MLflow's
own default `./mlflow.db`). Files live under `.monitoring/` as the apps expect.
"""

from __future__ import annotations

import json
import os
import re
from contextlib import nullcontext
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
        try:
            clean[_metric_name(key)] = float(value)
        except (TypeError, ValueError):
            raise VertiflowError(f"metrics['{key}']: expected a number, found {value!r}.") from None
    key, value = _map50(metrics)
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
        return int(self.last_decision["version"])


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
        if not (self.use_registry and os.environ.get("MLFLOW_TRACKING_URI")):
            runtime.require_checkout()  # the local store and models/ are the checkout's
        self.models = serving.load_all_models(
            alias=self.alias,
            use_registry=self.use_registry,
            models_dir=runtime.checkout_root() / "models",
        )
        return self.models


class ModelMonitor:
    """Prediction logging, performance metrics, error alerts and drift checks."""

    def __init__(self, max_history: int = monitor.WINDOW, root: Path = monitor.MONITORING_DIR):
        runtime.configure()
        self.root = Path(root)
        self.window = max_history
        self.reference_data: Any = None

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
        `{"detections": [{"class", "confidence", "bbox"}]}`, Ultralytics Results), under
        `yolo` unless `model_name` says otherwise; detections logged without an image go
        under `yolo` too. A table: logged as the tabular models' inputs.
        Latency: `latency_s`, or the prediction's `inference_time`/`total_inference_time`,
        or the Ultralytics Results' own `speed`.
        `conf`: the detector's confidence threshold (the monitor compares at the same one).
        """
        pictures = None
        if isinstance(input_data, np.ndarray) and input_data.ndim == 2:
            pictures = images.as_images([input_data], "input_data")  # one grayscale image
        elif input_data is not None:
            pictures = images.as_images(input_data, "input_data")
        found = images.detections_from(prediction)
        detector = pictures is not None or (input_data is None and found is not None)
        name = model_name or ("yolo" if detector else "unknown")
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
        path = monitor.log_predictions(name, model_version, table, values, self.root)
        monitor.record_event(name, latency_s, confidence, root=self.root, window=self.window)
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

    def performance_metrics(self) -> dict[str, Any]:
        path = self.root / "performance_metrics.json"
        return json.loads(path.read_text()) if path.exists() else {}

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
        monitor.record(report, self.root)
        return report


class TrainingPipeline:
    """The seed's training entry point: the DVC pipeline on a data folder."""

    def __init__(self, repo: str | Path | None = None):
        runtime.configure()
        self.repo = Path(repo) if repo else runtime.checkout_root()

    def run_full_pipeline(self, data_path: str | Path) -> dict[str, Any]:
        """Point the pipeline at `data_path` and run it (`dvc exp run -S ...` through
        DVC's API); returns the metrics files' values and the experiment's name.

        A folder with a YOLO `data.yaml` sets `images.dataset`; a farm export (batches,
        telemetry, harvests) sets `prepare.raw_dir`. Stages whose inputs did not change
        are not re-run.
        """
        from dvc.exceptions import DvcException
        from dvc.repo import Repo

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
        try:
            with Repo(str(self.repo)) as repo:
                revs = list(repo.experiments.run(params=[f"{key}={value}"]))
                names = repo.experiments.get_exact_name(revs) if revs else {}
                metrics = repo.metrics.show()
        except DvcException as exc:
            raise VertiflowError(f"the pipeline failed: {exc}") from None
        workspace = metrics.get("workspace") or metrics.get("") or {}  # DVC's key for it
        values = {Path(p).stem: e.get("data", {}) for p, e in workspace.get("data", {}).items()}
        experiment = next((n for n in names.values() if n), None)
        return {"experiment": experiment, "data": {key: value}, "metrics": values}


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
    if all(hasattr(getattr(r, "boxes", None), "conf") for r in results):  # Ultralytics
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
