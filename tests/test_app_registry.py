"""Skin-Twin-AI's registry and loader calls as an app makes them: Ultralytics' own metric
names, a YOLO-only store, the app's own folder, a server that is not there."""

from __future__ import annotations

import json
import sys
import textwrap
import time

import mlflow
import pytest

from vertiflow.testing import run

APP = textwrap.dedent(
    """
    import json, logging, sys
    from vertiflow.lifecycle.apps import ModelLoader, ModelRegistry
    from vertiflow.vision import yolo

    logging.basicConfig(level=logging.WARNING, format="LOG %(message)s")
    if sys.argv[1] == "register":  # metrics as Ultralytics gives them (results_dict)
        yolo.load_model("configs/yolo/yolo11t.yaml").save("models/yolo.pt")
        registry = ModelRegistry()
        registry.register_yolo_model(
            model_path="models/yolo.pt",
            metrics={"metrics/precision(B)": 0.8, "metrics/recall(B)": 0.7,
                     "metrics/mAP50(B)": 0.6, "metrics/mAP50-95(B)": 0.4, "fitness": 0.42},
        )
        print("RESULT" + json.dumps(registry.last_decision))
    elif sys.argv[1] == "retag":  # the very file again, as a new release of the app
        registry = ModelRegistry()
        registry.register_yolo_model(
            model_path="models/yolo.pt", metrics={"mAP": 0.6}, tags={"version": "1.1"}
        )
        print("RESULT" + json.dumps(registry.last_decision))
    elif sys.argv[1] == "load":
        models = ModelLoader(use_registry=True).load_all_models()
        print("RESULT" + json.dumps(sorted(models)))
    elif sys.argv[1] == "stages":  # the seed's Django integration and registry calls
        registry, out = ModelRegistry(), {}
        out["production"] = registry.get_latest_model("YOLO-SkinDetection", "Production")
        out["staging_before"] = registry.get_latest_model("YOLO-SkinDetection", "Staging")
        out["efficientnet"] = registry.get_latest_model("EfficientNet-SkinType", "Production")
        yolo.load_model("configs/yolo/yolo11t.yaml").save("models/yolo.pt")
        registry.register_yolo_model(model_path="models/yolo.pt", metrics={"mAP": 0.6})
        out["staging"] = registry.get_latest_model("YOLO-SkinDetection", "Staging")
        registry.transition_model_stage("YOLO-SkinDetection", 2, "Production")
        out["after"] = registry.get_latest_model("YOLO-SkinDetection", "Production")
        out["staging_after"] = registry.get_latest_model("YOLO-SkinDetection", "Staging")
        out["loaded"] = type(registry.load_model("YOLO-SkinDetection", "Production")).__name__
        out["oracle"] = type(registry.load_model("oracle")).__name__
        out["models"] = registry.list_all_models()
        loader = ModelLoader(use_registry=True)
        out["loader_yolo"] = type(loader.load_yolo_model()).__name__  # the seed's own call
        out["loader_path"] = sorted(loader.load_yolo_model("models/yolo.pt").names.values())
        registry.transition_model_stage("YOLO-SkinDetection", 2, "Archived")
        out["archived"] = registry.get_latest_model("YOLO-SkinDetection", "Production")
        print("RESULT" + json.dumps(out))
        registry.transition_model_stage("YOLO-SkinDetection", 9, "Production")
    elif sys.argv[1] == "unreachable":
        ModelRegistry(tracking_uri="http://127.0.0.1:9").register_yolo_model(
            model_path="models/yolo/best.pt", metrics={"mAP": 0.6}, use_active_run=False
        )
    """
)


def _app(cwd, *args, extra=None, check=True):
    proc = run([sys.executable, "-c", APP, *args], cwd, check, extra, timeout=300)
    return proc, (
        json.loads(proc.stdout.split("RESULT", 1)[1]) if "RESULT" in proc.stdout else None
    )


@pytest.mark.pipeline
def test_ultralytics_metric_names_register_and_a_yolo_only_store_loads(small_copy, tmp_path):
    """`metrics=results.results_dict` crashed on the version tag `metric.metrics/mAP50(B)`
    (parentheses), leaving a FAILED run; a store with only the app's detector made
    `load_all_models()` fail on the farm's `oracle`."""
    store = f"sqlite:///{tmp_path / 'app.db'}"  # the app's own store: no farm models
    env = {"MLFLOW_TRACKING_URI": store}
    _, decision = _app(small_copy, "register", extra=env)
    assert decision["version"] == 1 and decision["promoted"], decision
    mlflow.set_tracking_uri(store)
    tags = mlflow.MlflowClient().get_model_version("YOLO-SkinDetection", "1").tags
    assert tags["metric.metrics/mAP50_B"] == "0.6" and tags["metric.fitness"] == "0.42"
    # The same weights registered again with the app's new tags: no new version, and the
    # version says what the app now says of them (it kept no tag of the second call).
    _, again = _app(small_copy, "retag", extra=env)
    assert again["version"] == 1 and again["unchanged"], again
    tags = mlflow.MlflowClient().get_model_version("YOLO-SkinDetection", "1").tags
    assert tags["version"] == "1.1" and tags["metric.fitness"] == "0.42"

    proc, loaded = _app(small_copy, "load", extra=env)
    assert loaded == ["yolo"], proc.stderr
    assert "model 'oracle' not loaded" in proc.stderr and "model 'classifier'" in proc.stderr


@pytest.mark.pipeline
def test_an_app_outside_the_checkout_is_told_so_or_names_it(small_copy, tmp_path):
    """From the app's own folder the loader made a new, empty store there and said to run
    `dvc repro`; VERTIFLOW_CHECKOUT names the checkout."""
    app = tmp_path / "app"
    app.mkdir()
    proc, _ = _app(app, "load", check=False)
    assert proc.returncode == 1 and "not a VertiFlow checkout" in proc.stderr
    assert "VERTIFLOW_CHECKOUT" in proc.stderr and not (app / ".mlflow").exists()
    _, loaded = _app(app, "load", extra={"VERTIFLOW_CHECKOUT": str(small_copy)})
    assert loaded == ["classifier", "oracle", "yolo"]


@pytest.mark.pipeline
def test_a_tracking_uri_given_to_the_registry_that_is_not_there_fails_in_seconds(small_copy):
    started = time.monotonic()
    proc, _ = _app(small_copy, "unreachable", check=False)
    assert proc.returncode == 1 and "127.0.0.1:9" in proc.stderr and "unreachable" in proc.stderr
    assert time.monotonic() - started < 60  # MLflow's own retries took minutes


@pytest.mark.pipeline
def test_the_seeds_stage_calls_read_and_move_the_gate_s_aliases(small_copy):
    """`get_latest_model`, `load_model`, `transition_model_stage`, `list_all_models` and
    the loader's `load_yolo_model`, which the seed's Django integration and loader call,
    did not exist (AttributeError)."""
    proc, out = _app(small_copy, "stages", check=False)
    assert out is not None, proc.stderr
    assert out["production"]["version"] == 1 and out["production"]["alias"] == "champion"
    assert out["staging_before"] is None and out["efficientnet"] is None
    assert "no version of model 'EfficientNet-SkinType' has the alias 'champion'" in proc.stderr
    assert out["staging"]["version"] == 2  # the untrained weights lost the gate
    assert out["after"]["version"] == 2 and out["staging_after"] is None
    assert out["after"]["tags"]["transition.champion"]  # a person's decision, recorded
    assert out["loaded"] == "YOLO" and out["oracle"] == "LoggedPredictor"
    assert out["loader_yolo"] == "YOLO" and len(out["loader_path"]) == 80  # yolo11t's classes
    models = {m["name"]: m for m in out["models"]}
    assert set(models) == {"oracle", "classifier", "YOLO-SkinDetection"}
    assert models["YOLO-SkinDetection"]["latest_versions"] == [2]
    assert models["YOLO-SkinDetection"]["aliases"] == {"champion": 2}
    assert out["archived"] is None
    assert proc.returncode == 1  # a clear VertiflowError, not MLflow's RESOURCE_DOES_NOT_EXIST
    assert (
        "VertiflowError: model 'YOLO-SkinDetection' has no version 9; registered versions: 1, 2"
        in proc.stderr
    )
