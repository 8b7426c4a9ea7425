"""What an app hands the monitor (PIL images, file paths, grayscale, float images, odd
tables): read as images or refused with a clear error, never a raw traceback or a check
that compared nothing. No model, no DVC."""

from __future__ import annotations

import cv2
import numpy as np
import polars as pl
import pytest
from PIL import Image

from vertiflow.errors import VertiflowError
from vertiflow.lifecycle.apps import ModelMonitor
from vertiflow.monitoring import drift, images, monitor

SIZE = 64
THRESHOLDS = drift.Thresholds()


def pictures(n, seed, scenario="none"):
    return images.simulated_images(n, seed, size=SIZE, scenario=scenario)


@pytest.fixture
def mon(tmp_path):
    return ModelMonitor(root=tmp_path / "mon")


def test_pil_images_paths_and_grayscale_batches_are_read_as_images(mon, tmp_path):
    """A list of PIL images gave polars' `cannot cast 'Object' type`; N x H x W a raw
    ValueError; a list of paths was compared as text (the same images under another
    folder: a warning about unseen 'values')."""
    ref, cur = pictures(60, 1), pictures(40, 2, "dim")
    pil = mon.detect_data_drift([Image.fromarray(c) for c in cur], ref)
    assert pil["drifted"] == ["brightness"] and pil["severity"] == "critical", pil["drifted"]

    grey = mon.detect_data_drift(np.stack(cur)[..., 0], np.stack(ref)[..., 0])
    assert grey["drifted"] == ["brightness"], grey["drifted"]

    for day, batch in (("ref", ref), ("new", pictures(40, 3))):
        (tmp_path / day).mkdir()
        for i, img in enumerate(batch):
            cv2.imwrite(str(tmp_path / day / f"img_{i}.png"), img[..., ::-1])
    ref_paths = [str(p) for p in sorted((tmp_path / "ref").glob("*.png"))]
    cur_paths = sorted((tmp_path / "new").glob("*.png"))  # Path objects as well as text
    quiet = mon.detect_data_drift(cur_paths, ref_paths)
    assert quiet["severity"] == "ok" and "brightness" in quiet["features"], quiet
    assert "column_0" not in quiet["features"]

    with pytest.raises(VertiflowError, match=r"current_data\[3\]: .*gone\.png: no such image"):
        mon.detect_data_drift([*cur_paths[:3], tmp_path / "gone.png"], ref_paths)


def test_float_images_are_scaled_and_out_of_range_floats_refused():
    (img,) = pictures(1, 4)
    as_float = img.astype(np.float64) / 255
    (read,) = images.as_images(as_float)
    assert np.abs(read.astype(int) - img).max() <= 1  # not cast to 0 (black)
    (grey,) = images.as_images([as_float[..., 0]])  # a 2-D image in a list
    assert grey.shape == (SIZE, SIZE, 3) and grey.mean() > 10
    with pytest.raises(
        VertiflowError, match=r"float pixel values from -0.8\d+ to 0.7\d+; expected 0-1"
    ):
        images.as_images(as_float * 2 - 1)


def test_tables_with_no_shared_column_are_an_error_not_ok(mon):
    rng = np.random.default_rng(0)
    with pytest.raises(VertiflowError, match=r"share no column.*columns a\b.*columns b\b"):
        mon.detect_data_drift({"a": rng.random(50)}, {"b": rng.random(50)})
    # lists of categories are still tables, not file names
    report = mon.detect_data_drift(["basil"] * 40, ["basil", "lettuce"] * 40)
    assert "column_0" in report["features"]


def logged(mon, model="yolo"):

    return monitor.read_predictions(model, mon.root).sort("logged_at")


def ultralytics_results(img):
    """A real Ultralytics Results, as `model.predict` returns it (two boxes, timed)."""
    import torch
    from ultralytics.engine.results import Results

    boxes = torch.tensor([[4.0, 5.0, 30.0, 40.0, 0.9, 3.0], [10.0, 12.0, 20.0, 22.0, 0.5, 0.0]])
    names = {0: "Acne", 1: "Blackheads", 2: "Dark-Spots", 3: "Wrinkles", 4: "Skin-Redness"}
    result = Results(img[..., ::-1], path="upload.png", names=names, boxes=boxes)
    result.speed = {"preprocess": 1.5, "inference": 20.0, "postprocess": 2.5}
    return [result]


def test_log_prediction_takes_what_an_upload_handler_has(mon, tmp_path):
    """A PIL image or a path was refused ('found JpegImageFile of shape ?'); a float 0-1
    image was logged black; the app's own detection dicts were logged with null boxes;
    Results lost latency, box coordinates and class ids."""
    import json

    (img,) = pictures(1, 5)
    file = tmp_path / "upload.png"
    cv2.imwrite(str(file), img[..., ::-1])
    app = {
        "detections": [
            {"class": "Acne", "confidence": 0.8, "bbox": [1.0, 2.0, 30.0, 40.0]},
            {"class": "Wrinkles", "confidence": 0.6, "bbox": [5.0, 6.0, 20.0, 22.0]},
        ],
        "inference_time": 0.04,
    }
    seed = {"model": "yolo", "predictions": [{"class": "Acne", "confidence": 0.7}]}
    mon.log_prediction(app, input_data=Image.fromarray(img))
    mon.log_prediction(seed, input_data=str(file))
    mon.log_prediction(ultralytics_results(img), input_data=img.astype(np.float32) / 255)
    mon.log_prediction(app, input_data=img[..., 0])  # grayscale H x W
    log = logged(mon)
    assert log["n_boxes"].to_list() == [2, 1, 2, 2]
    assert log["mean_confidence"].to_list() == pytest.approx([0.7, 0.7, 0.7, 0.7])
    assert log["brightness"][2] == pytest.approx(log["brightness"][0], abs=0.01)  # not black
    assert log["classes"][2].to_list() == ["Wrinkles", "Acne"]
    drawn = json.loads(log["prediction"][2])["boxes"][0]
    assert drawn["class_id"] == 9 and (drawn["x1"], drawn["y2"]) == (4.0, 40.0)
    assert json.loads(log["prediction"][0])["boxes"][1]["x2"] == 20.0

    events = (mon.root / "performance" / "yolo.jsonl").read_text().splitlines()
    # the dicts' inference_time, none in the seed's dict, Results.speed (1.5 + 20 + 2.5 ms)
    assert [json.loads(e)["latency_s"] for e in events] == [0.04, None, 0.024, 0.04]
    assert mon.performance_metrics["yolo"]["mean_confidence"] == pytest.approx(0.7)

    mon.log_prediction(app)  # detections without an image: the detector's, not 'unknown'
    assert logged(mon)["n_boxes"][-1] == 2
    assert not (mon.root / "predictions" / "unknown").exists()

    with pytest.raises(VertiflowError, match=r"keys 'label', 'score'.*holds no detections"):
        mon.log_prediction({"label": "Acne", "score": 0.9}, input_data=img)
    other = mon.log_prediction({"label": "Acne"}, input_data=img, model_name="classifier")
    assert other.parent.name == "classifier"
    # a table's prediction that merely looks like detections is not the detector's
    table = mon.log_prediction({"predictions": []}, input_data=pl.DataFrame({"co2": [1.0]}))
    assert table.parent.name == "unknown"


def test_detections_logged_without_their_image_are_not_missing_inputs(mon):
    """Rows of detections with no image (logged under `yolo`) must not read as images with
    missing features: 5 of 45 would warn on every input feature."""
    for img in pictures(40, 6):
        mon.log_prediction({"boxes": [{"class_name": "Acne", "confidence": 0.8}]}, input_data=img)
    for _ in range(5):
        mon.log_prediction({"detections": [{"class": "Acne", "confidence": 0.8}]})
    log = logged(mon)
    assert log.height == 45 and log["brightness"].null_count() == 5
    report = images.check(images.features(pictures(300, 1000)), log, THRESHOLDS)
    assert report["severity"] == "ok", report["drifted"]
    assert report["features"]["brightness"]["missing_current"] == 0


def test_drift_alerts_and_history_name_the_model(mon):
    """Drift alerts were `<time>-critical.json` with no model in them (error alerts had
    one): a dashboard could not tell the detector's drift from the Oracle's."""
    import json

    ref, dark = pictures(60, 1), pictures(40, 2, "dim")
    mon.detect_data_drift(dark, ref)
    rng = np.random.default_rng(0)
    table = {"co2_mean": rng.normal(800, 50, 200)}
    mon.detect_data_drift({"co2_mean": rng.normal(1200, 50, 60)}, table, model_name="oracle")
    mon.detect_data_drift({"co2_mean": rng.normal(800, 50, 60)}, table, model_name="oracle")
    (image_alert,) = (mon.root / "alerts").glob("*-critical-yolo.json")
    (table_alert,) = (mon.root / "alerts").glob("*-critical-oracle.json")
    assert json.loads(image_alert.read_text())["model"] == "yolo"
    assert json.loads(table_alert.read_text())["kind"] == "drift"
    history = [json.loads(h) for h in (mon.root / "history.jsonl").read_text().splitlines()]
    assert [(h["model"], h["severity"]) for h in history] == [
        ("yolo", "critical"),
        ("oracle", "critical"),
        ("oracle", "ok"),
    ]


def test_monitor_without_the_models_says_which_and_what_to_run(tmp_path):
    """`vertiflow monitor --scenario`/`--batch`/`--from-log oracle` before `dvc pull`
    ended in MLflow's "No such artifact: 'oracle'" traceback."""
    from typer.testing import CliRunner

    from vertiflow.cli import app

    args = ["--models", str(tmp_path / "models"), "--root", str(tmp_path / "mon")]
    out = CliRunner().invoke(app, ["monitor", "--scenario", "none", *args])
    said = "".join(out.output.split())
    assert out.exit_code == 1 and "run`dvcrepro`(or`dvcpull`)first" in said, out.output
    assert f"{tmp_path}/models/oracle".replace(" ", "") in said, out.output
