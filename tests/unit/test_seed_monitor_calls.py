"""The rest of Skin-Twin-AI's monitoring code, as its inference pipeline and Django
integration call it (`mlops/monitoring/`): the in-process history and its
`predictions_history.json`, prediction stats, labelled-quality metrics, the seed's
one-test drift fields, its PerformanceTracker and AlertingSystem. No model, no DVC."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import polars as pl
import pytest

from vertiflow.errors import VertiflowError
from vertiflow.lifecycle import apps
from vertiflow.lifecycle.apps import AlertingSystem, ModelMonitor, PerformanceTracker
from vertiflow.monitoring import images, monitor

APP = {"detections": [{"class": "Acne", "confidence": 0.8, "bbox": [1.0, 2.0, 30.0, 40.0]}]}


@pytest.fixture
def mon(tmp_path):
    return ModelMonitor(root=tmp_path / "mon")


def test_the_history_is_kept_in_process_and_written_as_the_seed_names_it(tmp_path):
    """`len(monitor.predictions_history)` (the Django health check) was an AttributeError,
    and `.monitoring/predictions_history.json`, a file the seed's README and monitoring
    script name, was never written."""
    root = tmp_path / "mon"
    image = images.simulated_images(1, 1, size=64)[0]
    script = textwrap.dedent(
        f"""
        from pathlib import Path
        import numpy as np
        from vertiflow.lifecycle.apps import ModelMonitor
        mon = ModelMonitor(root=Path({str(root)!r}))
        image = np.load({str(tmp_path / "img.npy")!r})
        for _ in range(3):
            mon.log_prediction({APP!r}, input_data=image)
        assert len(mon.predictions_history) == 3
        """
    )
    np.save(tmp_path / "img.npy", image)
    subprocess.run([sys.executable, "-c", script], check=True, capture_output=True)
    history = json.loads((root / apps.HISTORY_FILE).read_text())  # written at exit
    assert len(history) == 3 and history[0]["model_name"] == "yolo"
    assert history[0]["input_shape"] == [64, 64, 3]
    assert history[0]["prediction"]["detections"][0]["class"] == "Acne"

    again = ModelMonitor(root=root, max_history=4)  # a restarted app keeps its history
    assert len(again.predictions_history) == 3
    for _ in range(3):
        again.log_prediction(APP, input_data=image)
    assert len(again.predictions_history) == 4  # the seed's max_history, a rolling window
    again.save_history()
    assert len(json.loads((root / apps.HISTORY_FILE).read_text())) == 4


def test_the_history_file_is_rewritten_every_hundred_predictions(mon, monkeypatch):
    monkeypatch.setattr(apps, "HISTORY_EVERY", 2)
    mon.log_prediction(APP)
    assert not (mon.root / apps.HISTORY_FILE).exists()
    mon.log_prediction(APP)
    assert len(json.loads((mon.root / apps.HISTORY_FILE).read_text())) == 2


def test_prediction_stats_count_every_process_s_logged_predictions(mon):
    assert mon.get_prediction_stats() == {}  # the seed's answer for an empty window
    other = ModelMonitor(root=mon.root)  # another worker of the same app
    mon.log_prediction(APP)
    other.log_prediction([1.0, 2.0], input_data=pl.DataFrame({"co2": [800.0, 900.0]}))
    stats = mon.get_prediction_stats(hours=1)
    assert stats["total_predictions"] == 3 and stats["per_model"] == {"unknown": 2, "yolo": 1}
    assert stats["predictions_per_hour"] == 3 and stats["time_period_hours"] == 1
    old = mon.root / "predictions" / "yolo"
    table = pl.read_parquet(next(old.glob("*.parquet")))
    stamp = table["logged_at"][0]
    table.with_columns(pl.lit(stamp.replace(year=stamp.year - 1)).alias("logged_at")).write_parquet(
        next(old.glob("*.parquet"))
    )
    assert mon.get_prediction_stats(hours=24)["per_model"] == {"unknown": 2, "yolo": 0}


def test_labelled_quality_goes_beside_the_latency_in_performance_metrics(mon):
    mon.log_prediction(APP, latency_s=0.05)
    got = mon.calculate_performance_metrics(
        ["Acne", "Acne", "Wrinkles", "Acne"], ["Acne", "Wrinkles", "Wrinkles", "Acne"], "yolo"
    )
    assert got["accuracy"] == 0.75 and got["labels"] == ["Acne", "Wrinkles"]
    assert got["confusion_matrix"] == [[2, 0], [1, 1]]
    assert got["precision"] == pytest.approx((2 / 3 * 2 + 1 * 2) / 4)  # weighted, as the seed
    yolo = mon.performance_metrics["yolo"]
    assert yolo["quality"]["accuracy"] == 0.75 and yolo["latency_p50_ms"] == 50.0
    mon.log_prediction(APP)  # a later prediction rewrites the file and keeps the quality
    assert mon.performance_metrics["yolo"]["quality"]["n"] == 4
    with pytest.raises(VertiflowError, match="3 predictions and 2 actuals"):
        mon.calculate_performance_metrics([1, 2, 3], [1, 2])


def test_drift_results_carry_the_seed_s_p_value_statistic_and_alert(mon):
    ref = images.simulated_images(60, 1, size=64)
    dim = mon.detect_data_drift(images.simulated_images(40, 2, size=64, scenario="dim"), ref)
    assert dim["drift_detected"] and dim["feature"] == "brightness"
    assert dim["p_value"] < 0.05 and dim["statistic"] == dim["features"]["brightness"]["psi"]
    assert dim["timestamp"] == dim["checked_at"] and dim["alert"].endswith("-critical-yolo.json")
    quiet = mon.detect_data_drift(images.simulated_images(40, 3, size=64), ref)
    assert not quiet["drift_detected"] and quiet["p_value"] > 0.05 and quiet["alert"] is None

    alerts = AlertingSystem(alert_dir=mon.root / "alerts")
    assert alerts.send_drift_alert(dim) == mon.root / "alerts" / dim["alert"].rsplit("/", 1)[1]
    assert len(list((mon.root / "alerts").glob("*.json"))) == 1  # the same alert, not two


def test_the_seed_s_tracker_and_alerts_reach_the_monitor_s_files(tmp_path):
    root = tmp_path / "mon"
    tracker = PerformanceTracker(root=root)
    tracker.track_inference_time("yolo", 0.04)
    tracker.track_inference_time("yolo", 0.06)
    tracker.track_error("ensemble", "inference_error")
    tracker.track_metric("yolo", "mAP", 0.8)
    assert tracker.get_average_inference_time("yolo") == pytest.approx(0.05)
    assert tracker.get_error_summary() == {"ensemble_inference_error": 1}
    assert tracker.get_latest_metrics("yolo") == {"mAP": 0.8}
    perf = json.loads((root / "performance_metrics.json").read_text())
    assert perf["yolo"]["latency_p50_ms"] == 50.0 and perf["ensemble"]["errors"] == 1

    alerts = AlertingSystem(alert_dir=root / "alerts")
    slow = alerts.send_performance_alert("yolo", "mAP", 0.61, 0.7)
    assert slow.name.endswith("-warning-yolo.json")
    assert json.loads(slow.read_text())["message"] == "yolo mAP (0.6100) below threshold (0.7000)"
    error = alerts.send_error_alert("yolo", "OOM", "CUDA out of memory")
    assert error.name.endswith("-error-yolo.json") and "OOM: CUDA" in error.read_text()
    seed_dict = alerts.send_drift_alert({"severity": "high", "p_value": 0.001})  # the seed's own
    assert "p-value=0.0010" in seed_dict.read_text()


def _results(orig_img):
    """Ultralytics Results as `YOLO.predict` returns them: `orig_img` is the array it read."""
    import torch
    from ultralytics.engine.results import Results

    box = torch.tensor([[4.0, 4.0, 30.0, 30.0, 0.9, 0.0]])
    return [Results(orig_img=orig_img, path="face.png", names={0: "Acne"}, boxes=box)]


def test_the_array_the_detector_read_is_logged_in_the_colours_it_saw(mon):
    """The app reads images with OpenCV (BGR) and passes that array to YOLO and to
    log_prediction; read as RGB, the val images' red and blue shares swapped and
    `vertiflow monitor --from-log yolo` called critical drift on the val images
    themselves (PSI 8.3, p 2.7e-74 at red_share and blue_share)."""
    rgb = images.simulated_images(1, 4, size=64)[0]
    expected = images.features([rgb])["red_share"][0]
    assert expected > 0.4  # a face: red well above blue, so a swap shows
    bgr = np.ascontiguousarray(rgb[..., ::-1])
    mon.log_prediction(_results(bgr), input_data=bgr)  # the app's cv2.imread array
    mon.log_prediction({"detections": _results(bgr)}, input_data=bgr)  # wrapped, as its pipeline
    mon.log_prediction(_results(bgr), input_data=rgb)  # predicted on the file, logged in RGB
    from PIL import Image

    pil = Image.fromarray(rgb)  # Ultralytics keeps a PIL image's pixels as BGR too
    mon.log_prediction(_results(np.ascontiguousarray(np.asarray(pil)[..., ::-1])), input_data=pil)
    log = pl.concat(
        [pl.read_parquet(p) for p in sorted((mon.root / "predictions" / "yolo").glob("*"))]
    )
    assert log["red_share"].to_list() == pytest.approx([expected] * 4)


def test_a_request_the_app_both_times_and_logs_counts_once(tmp_path):
    """The app's detection view calls track_inference_performance('ensemble', t) and then
    log_prediction_for_monitoring(..., model_name='ensemble') for each analysed image:
    10 requests were 20 predictions in performance_metrics.json (get_prediction_stats
    said 10), and a failed request's error rate was halved."""
    root = tmp_path / "mon"
    tracker, mon = PerformanceTracker(root=root), ModelMonitor(root=root)
    view = {"skin_type": "Normal", "confidence": 0.9, "detections": APP["detections"]}
    for _ in range(10):
        tracker.track_inference_time("ensemble", 0.2)
        mon.log_prediction({**view, "analysis_id": 1}, model_name="ensemble")
    tracker.track_error("ensemble", "inference_error")
    for _ in range(3):  # the inference pipeline times its detector without logging it
        tracker.track_inference_time("yolo", 0.05)
    perf = json.loads((root / "performance_metrics.json").read_text())
    assert perf["ensemble"]["predictions"] == 10 and perf["ensemble"]["errors"] == 1
    assert perf["ensemble"]["error_rate"] == pytest.approx(1 / 11, abs=1e-6)
    assert perf["ensemble"]["latency_p50_ms"] == 200.0
    assert perf["yolo"]["predictions"] == 3 and perf["yolo"]["latency_p50_ms"] == 50.0
    # the detector's answers are in the log its drift check reads, under the app's name
    assert mon.get_prediction_stats()["per_model"] == {"yolo": 10}


def test_detections_the_app_logs_as_its_ensemble_reach_the_detector_s_drift_check(mon):
    """Skin-Twin-AI logs every analysed photo with model_name='ensemble': the image
    features and boxes went to predictions/ensemble/, which no drift check reads
    (`--from-log` takes oracle, classifier or yolo), so the app's traffic was never
    checked."""
    image = images.simulated_images(1, 1, size=64)[0]
    mon.log_prediction({"yolo_detections": APP}, input_data=image, model_name="ensemble")
    logged = monitor.read_predictions("yolo", mon.root)
    assert logged["app_model"].to_list() == ["ensemble"] and logged["n_boxes"][0] == 1
    assert not (mon.root / "predictions" / "ensemble").exists()
    assert mon.performance_metrics["ensemble"]["predictions"] == 1  # its latency, its name
