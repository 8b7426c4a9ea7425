"""Skin-Twin-AI's calls, verbatim, on a checkout after `dvc repro` (no MLFLOW_TRACKING_URI).

The calls run in a subprocess from the checkout's folder, as the app runs them, and
their results are checked here against the pipeline's own store, files and logs.
"""

from __future__ import annotations

import json
import shutil
import sys
import textwrap
from pathlib import Path

import mlflow
import polars as pl
import pytest
import yaml

from vertiflow.testing import run

# The seed's README calls (mlops/README.md), verbatim; around them only the setup an app
# has (an image, its detections) and a JSON dump of what the calls returned.
SEED = textwrap.dedent(
    """
    import glob, json, cv2, numpy as np
    from vertiflow.lifecycle.apps import ModelLoader, ModelMonitor, ModelRegistry
    from vertiflow.vision import yolo

    # new weights to register: the untrained architecture, saved as the app would have it
    yolo.load_model("configs/yolo/yolo11t.yaml").save("models/yolo.pt")

    registry = ModelRegistry()
    registry.register_yolo_model(
        model_path='models/yolo.pt',
        metrics={'mAP': 0.85, 'precision': 0.82},
        tags={'version': '1.0'}
    )

    loader = ModelLoader(use_registry=True)
    models = loader.load_all_models()

    files = sorted(glob.glob("data/images/images/*/*.png"))
    image_array = cv2.imread(files[0])[..., ::-1]  # RGB
    results = models['yolo'].predict(files[0], verbose=False, conf=0.001)
    prediction_dict = {'yolo_detections': {'detections': results}, 'total_inference_time': 0.05}

    monitor = ModelMonitor()
    monitor.log_prediction(prediction_dict, input_data=image_array)
    monitor.log_error('yolo', ValueError('CUDA out of memory'))

    reference_data = np.stack([cv2.imread(f)[..., ::-1] for f in files])
    current_data = (reference_data * 0.6).astype(np.uint8)  # the lights dimmed
    drift_result = monitor.detect_data_drift(current_data, reference_data)
    quiet = monitor.detect_data_drift(reference_data[::-1].copy(), reference_data)

    print("RESULT" + json.dumps({
        "version": registry.last_decision,
        "models": {k: type(v).__name__ for k, v in models.items()},
        "yolo_names": sorted(models['yolo'].names.values()),
        "boxes": len(results[0].boxes),
        "drift": drift_result, "quiet": quiet,
    }, default=str))
    """
)


def _seed(repo) -> dict:
    out = run([sys.executable, "-c", SEED], repo, timeout=300).stdout
    return json.loads(out.split("RESULT", 1)[1])


@pytest.mark.pipeline
def test_the_seeds_calls_work_verbatim_after_dvc_repro(small_copy):
    repo = small_copy
    result = _seed(repo)
    assert not (repo / "mlflow.db").exists()  # MLflow's own default store was not used
    mlflow.set_tracking_uri(f"sqlite:///{repo / '.mlflow' / 'mlflow.db'}")
    client = mlflow.MlflowClient()

    # register_yolo_model: a new version in the pipeline's registry, through the gate
    decision = result["version"]
    assert decision["version"] == 2 and not decision["promoted"], decision
    model = client.get_registered_model("YOLO-SkinDetection")
    assert {a: int(v) for a, v in model.aliases.items()} == {"champion": 1, "challenger": 2}
    version = client.get_model_version("YOLO-SkinDetection", "2")
    assert version.tags["version"] == "1.0" and version.tags["metric.mAP"] == "0.85"
    folder = Path(mlflow.artifacts.download_artifacts("models:/YOLO-SkinDetection/2"))
    meta = yaml.safe_load((folder / "MLmodel").read_text())  # servable: a pyfunc model
    assert "python_function" in meta["flavors"] and meta["signature"]["inputs"]

    # load_all_models: the champions of the pipeline's registry, the detector as YOLO
    assert result["models"] == {
        "oracle": "LoggedPredictor",
        "classifier": "LoggedPredictor",
        "yolo": "YOLO",
    }
    assert result["yolo_names"] == sorted(
        yaml.safe_load((repo / "params.yaml").read_text())["simulate_images"]["classes"]
    )

    # log_prediction: image features and the detector's outputs, in the prediction log
    logged = pl.read_parquet(next((repo / ".monitoring" / "predictions" / "yolo").glob("*")))
    assert logged.height == 1 and logged["n_boxes"][0] == result["boxes"] > 0
    assert 0 < logged["brightness"][0] < 1 and logged["width"][0] == 64
    assert logged["classes"][0].len() == result["boxes"]

    # performance_metrics.json and the error alert
    perf = json.loads((repo / ".monitoring" / "performance_metrics.json").read_text())["yolo"]
    assert perf["window"] == 2 and perf["predictions"] == 1 and perf["errors"] == 1
    assert perf["latency_p50_ms"] == 50.0 and 0 < perf["mean_confidence"] < 1
    alerts = sorted((repo / ".monitoring" / "alerts").glob("*-error-yolo.json"))
    assert len(alerts) == 1 and "CUDA out of memory" in alerts[0].read_text()

    # detect_data_drift on image arrays: per feature, the dimming found where it is
    drift = result["drift"]
    assert drift["drift_detected"] and drift["drifted"] == ["brightness"], drift["drifted"]
    assert not result["quiet"]["drift_detected"]
    assert len(list((repo / ".monitoring" / "alerts").glob("*-critical-yolo.json"))) == 1


@pytest.mark.pipeline
def test_tables_drift_and_tabular_predictions_through_the_monitor(small_repo, tmp_path):
    from vertiflow.lifecycle.apps import ModelMonitor

    train = pl.read_parquet(small_repo / "data" / "prepared" / "train.parquet")
    monitor = ModelMonitor(root=tmp_path / "monitoring")
    monitor.log_prediction([1.0] * 5, input_data=train.head(5).to_pandas(), model_name="oracle")
    logged = pl.read_parquet(next((tmp_path / "monitoring" / "predictions" / "oracle").glob("*")))
    assert logged.height == 5 and "co2_mean" in logged.columns
    shifted = train.with_columns(pl.col("co2_mean") + 400)
    report = monitor.detect_data_drift(shifted, train, ["co2_mean", "temp_dev"])
    assert report["features"]["co2_mean"]["severity"] == "critical"
    assert report["features"]["temp_dev"]["severity"] == "ok"


@pytest.mark.pipeline
def test_training_pipeline_runs_dvc_on_new_images(small_copy):
    """`TrainingPipeline().run_full_pipeline(data_path=...)`: the pipeline on a new image
    dataset, through DVC's API; only the image stages re-run."""
    repo = small_copy
    make = (
        "from pathlib import Path; from vertiflow.vision import skin; "
        "skin.write_dataset(Path('data/faces'), skin.ImageConfig(seed=11, classes=['Acne', "
        "'Wrinkles'], train_images=16, val_images=8, image_size=64))"
    )
    run([sys.executable, "-c", make], repo)
    call = (
        "import json; from vertiflow.lifecycle.apps import TrainingPipeline\n"
        "pipeline = TrainingPipeline()\n"
        "results = pipeline.run_full_pipeline(data_path='data/faces')\n"
        "print('RESULT' + json.dumps(results))"
    )
    out = run([sys.executable, "-c", call], repo, timeout=600)
    results = json.loads(out.stdout.split("RESULT", 1)[1])
    assert results["data"] == {"images.dataset": "data/faces"} and results["experiment"]
    mlflow.set_tracking_uri(f"sqlite:///{repo / '.mlflow' / 'mlflow.db'}")
    pipeline_run = mlflow.get_run(results["run_id"])  # the seed's script logs it
    assert pipeline_run.data.tags["dvc_exp_name"] == results["experiment"]
    assert pipeline_run.data.tags["run_kind"] == "pipeline"
    assert set(results["metrics"]["yolo"]["per_class"]) <= {"Acne", "Wrinkles"}
    assert "r2" in results["metrics"]["oracle"]
    assert yaml.safe_load((repo / "params.yaml").read_text())["images"]["dataset"] == "data/faces"
    lock = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    assert "data/faces" in [d["path"] for d in lock["train_yolo"]["deps"]]
    assert "Running stage 'train_oracle'" not in out.stdout + out.stderr

    bad = run([sys.executable, "-c", call.replace("data/faces", "data")], repo, check=False)
    assert bad.returncode != 0 and "neither an image dataset" in bad.stderr


LOG_IMAGES = """
import glob, cv2, numpy as np
from vertiflow.lifecycle.apps import ModelMonitor
from vertiflow.vision import detector, yolo
model = yolo.load_model('models/yolo/best.pt')
files = sorted(glob.glob('data/images/images/*/*.png'))
batch = np.stack([cv2.imread(f)[..., ::-1] for f in files])
for root, light in (('.monitoring', 1.0), ('dimmed', 0.6)):  # the lights dimmed to 0.6
    shown = (batch * light).astype(np.uint8)
    ModelMonitor(root=root).log_prediction(detector.detect(model, list(shown)), input_data=shown)
"""


@pytest.mark.pipeline
def test_monitor_from_log_yolo(small_copy):
    """`vertiflow monitor --from-log yolo`: logged uploads against the training images."""
    repo = small_copy
    run([sys.executable, "-c", LOG_IMAGES], repo)
    quiet = run(["vertiflow", "monitor", "--from-log", "yolo"], repo)  # the training images
    assert "drift: ok" in quiet.stdout, quiet.stdout
    report = json.loads((repo / "metrics" / "monitoring.json").read_text())
    assert {"brightness", "sharpness", "n_boxes"} <= set(report["features"])

    dim = run(["vertiflow", "monitor", "--from-log", "yolo", "--root", "dimmed"], repo, check=False)
    assert dim.returncode == 2, dim.stdout + dim.stderr
    report = json.loads((repo / "metrics" / "monitoring.json").read_text())
    assert report["drifted"] == ["brightness"], report["drifted"]
    assert (repo / "reports" / "monitoring" / "brightness.png").is_file()


@pytest.mark.pipeline
def test_a_bare_champion_hands_its_alias_to_its_servable_twin(small_copy, monkeypatch):
    """A store from before the pyfunc format: champion = a bare best.pt. Registering the
    same weights again moves the alias to the pyfunc version (`mlflow models serve` can
    load it); without that, `models:/YOLO-SkinDetection@champion` stays unservable."""
    from vertiflow.lifecycle import registry

    repo = small_copy
    monkeypatch.chdir(repo)
    shutil.rmtree(repo / ".mlflow")  # no pyfunc twin yet: the registry holds the bare file
    mlflow.set_tracking_uri(f"sqlite:///{repo / '.mlflow' / 'mlflow.db'}")
    client = mlflow.MlflowClient()
    section = {"min_improvement": {"yolo": 0.0}}
    with mlflow.start_run():
        bare, _ = registry.register("yolo", repo / "models" / "yolo", "ultralytics", {}, {})
        client.set_registered_model_alias("YOLO-SkinDetection", "champion", bare.version)
        weights = repo / "models" / "yolo" / "best.pt"
        record = registry.register_detector(weights, {"mAP50": 0.5}, True, None, section, {})
    assert record["promoted"] and "pyfunc" in record["reason"], record
    champion = client.get_model_version_by_alias("YOLO-SkinDetection", "champion")
    assert int(champion.version) == record["version"] == int(bare.version) + 1
    # With the twin registered already, the alias goes to it: no third version.
    client.set_registered_model_alias("YOLO-SkinDetection", "champion", bare.version)
    with mlflow.start_run():
        again = registry.register_detector(weights, {"mAP50": 0.5}, True, None, section, {})
    assert again["promoted"] and again["version"] == record["version"], again
    assert len(client.search_model_versions("name = 'YOLO-SkinDetection'")) == 2
