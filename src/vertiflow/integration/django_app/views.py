"""The endpoints: thin over the loader, the detector's decoding and the monitor."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET, require_POST

from vertiflow.errors import VertiflowError
from vertiflow.lifecycle import registry, serving
from vertiflow.lifecycle.apps import ModelMonitor
from vertiflow.monitoring import monitor
from vertiflow.vision import detector

DEFAULTS: dict[str, Any] = {
    "MODELS_DIR": "models",
    "USE_REGISTRY": None,
    "MONITORING_DIR": ".monitoring",
    "CONF": detector.DEFAULT_CONF,
    "MAX_UPLOAD_BYTES": 10 * 2**20,
}
_models: dict[tuple, Any] = {}
_lock = threading.Lock()


def config() -> dict[str, Any]:
    return {**DEFAULTS, **getattr(settings, "VERTIFLOW", {})}


class Unavailable(Exception):
    """The model could not be loaded (503, alerted)."""


def model(key: str) -> tuple[Any, str]:
    """The model and its version label, loaded once per process and settings."""
    cfg = config()
    cache = (key, str(cfg["MODELS_DIR"]), cfg["USE_REGISTRY"], str(cfg["MONITORING_DIR"]))
    with _lock:
        if cache not in _models:
            try:
                loaded = serving.load_model(
                    key,
                    use_registry=cfg["USE_REGISTRY"],
                    models_dir=Path(cfg["MODELS_DIR"]),
                    log_root=Path(cfg["MONITORING_DIR"]),
                )
            except Exception as exc:
                monitor.record_error(key, exc, {"stage": "load"}, Path(cfg["MONITORING_DIR"]))
                raise Unavailable(f"model '{key}' unavailable: {exc}") from None
            version = getattr(loaded, "version", "registry" if cfg["USE_REGISTRY"] else "local")
            _models[cache] = (loaded, str(version))
        return _models[cache]


def _bad(message: str) -> JsonResponse:
    return JsonResponse({"error": message}, status=400)


def _failed(key: str, exc: BaseException) -> JsonResponse:
    monitor.record_error(key, exc, {"stage": "predict"}, Path(config()["MONITORING_DIR"]))
    return JsonResponse({"error": f"the {key} model failed on this input"}, status=500)


@require_POST
def detect(request: HttpRequest) -> JsonResponse:
    """Multipart upload, field `image` (PNG, JPEG, ...); optional field `conf` (0-1)."""
    cfg = config()
    upload = request.FILES.get("image")
    if upload is None:
        return _bad("no file in the form field 'image' (send multipart/form-data).")
    if upload.size > cfg["MAX_UPLOAD_BYTES"]:
        return _bad(f"image: {upload.size} bytes; the limit is {cfg['MAX_UPLOAD_BYTES']}.")
    raw_conf = request.POST.get("conf", cfg["CONF"])
    try:
        conf = float(raw_conf)
    except (TypeError, ValueError):
        conf = -1.0
    if not 0 <= conf <= 1:
        return _bad(f"conf: expected a number from 0 to 1, found {raw_conf!r}.")
    try:
        image = detector.decode(upload.read(), f"image '{upload.name}'")
    except detector.ImageError as exc:
        return _bad(str(exc))
    try:
        yolo, version = model("yolo")
    except Unavailable as exc:
        return JsonResponse({"error": str(exc)}, status=503)
    start = time.perf_counter()
    try:
        (found,) = detector.detect(yolo, [image], conf)
    except Exception as exc:
        return _failed("yolo", exc)
    latency = time.perf_counter() - start
    ModelMonitor(root=Path(cfg["MONITORING_DIR"])).log_prediction(
        found,
        input_data=image,
        model_name="yolo",
        model_version=version,
        latency_s=latency,
        conf=conf,
    )
    return JsonResponse(
        {
            "model": registry.NAMES["yolo"],
            "version": version,
            **found,
            "latency_ms": round(latency * 1000, 1),
        }
    )


@require_POST
def oracle(request: HttpRequest) -> JsonResponse:
    """JSON: one row of model inputs, or {"rows": [...]}; answers {"predictions": [...]}."""
    try:
        body = json.loads(request.body or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return _bad(f"the body is not JSON: {exc}.")
    rows = body.get("rows") if isinstance(body, dict) and "rows" in body else body
    rows = [rows] if isinstance(rows, dict) else rows
    if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) for r in rows):
        return _bad('expected a JSON object of model inputs, or {"rows": [objects]}.')
    try:
        predictor, _ = model("oracle")
    except Unavailable as exc:
        return JsonResponse({"error": str(exc)}, status=503)
    wanted = predictor.metadata.get_input_schema().input_names()
    missing = [c for c in wanted if any(c not in r for r in rows)]
    if missing:
        return _bad(
            f"missing input(s): {', '.join(missing)} (the Oracle needs {', '.join(wanted)})."
        )
    try:  # the signature's types, as `mlflow models serve` reads them ("21.5" a number)
        frame = serving.model_input(rows, predictor.metadata.get_input_schema(), "oracle")
    except VertiflowError as exc:
        return _bad(str(exc))
    start = time.perf_counter()
    try:
        predictions = predictor.predict(frame)  # logged with its inputs by the loader
    except Exception as exc:
        from mlflow.exceptions import MlflowException

        if isinstance(exc, MlflowException | VertiflowError):  # the signature refused it
            message = getattr(exc, "message", str(exc))
            return _bad(" ".join(message.rsplit("Error:", 1)[-1].split()))  # not the data
        return _failed("oracle", exc)
    latency = time.perf_counter() - start
    monitor.record_event("oracle", latency, root=Path(config()["MONITORING_DIR"]))
    answer = {"model": "oracle", "predictions": [float(p) for p in predictions]}
    # the loader also warned (UnseenCategoryWarning: Django logs it as py.warnings)
    unseen = [u.message for u in serving.unseen_categories(frame, predictor.metadata)]
    return JsonResponse({**answer, "warnings": unseen} if unseen else answer)


@require_GET
def health(request: HttpRequest) -> JsonResponse:
    status, code = {}, 200
    for key in ("yolo", "oracle"):
        try:
            status[key] = {"loaded": True, "version": model(key)[1]}
        except Unavailable as exc:
            status[key], code = {"loaded": False, "error": str(exc)}, 503
    return JsonResponse({"models": status}, status=code)
