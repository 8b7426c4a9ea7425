"""What a user finds in MLflow after `dvc repro`: per-model experiments with complete
training runs, one pipeline run per execution, dataset inputs, and the UI's runs table."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
import yaml

from vertiflow.testing import REPO, env, run

pytestmark = pytest.mark.pipeline

# experiment -> (stage, a param of its run, held-out metrics its run must carry)
MODEL_RUNS = {
    "yield-prediction": ("train_oracle", "train_oracle.estimator", ["r2", "mae", "rmse"]),
    "quality-classification": (
        "train_classifier",
        "train_classifier.estimator",
        ["accuracy", "f1_macro", "roc_auc_ovr"],
    ),
    "recipe-optimization": (
        "optimise_cortex",
        "optimise_cortex.optimiser.maxiter",
        ["max_regret", "basil.regret", "basil.cost_per_kg", "basil.converged", "basil.iterations"],
    ),
    "skin-detection": ("train_yolo", "train_yolo.epochs", ["mAP50", "mAP50-95"]),
}
HEADLINE = [
    *("oracle_r2", "oracle_mae", "oracle_rmse", "oracle_r2_gap"),
    *("classifier_accuracy", "classifier_f1_macro", "classifier_roc_auc_ovr"),
    *("classifier_accuracy_gap", "cortex_max_regret", "cortex_basil_cost_per_kg"),
    *("cortex_basil_converged", "yolo_mAP50", "yolo_mAP50-95"),
]


def client(repo: Path) -> mlflow.MlflowClient:
    mlflow.set_tracking_uri(f"sqlite:///{repo / '.mlflow' / 'mlflow.db'}")
    return mlflow.MlflowClient()


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_every_experiment_opens_on_the_runs_table(small_repo):
    experiments = client(small_repo).search_experiments()
    assert {"vertiflow-models", *MODEL_RUNS} <= {e.name for e in experiments}
    for e in experiments:
        assert e.tags.get("mlflow.experimentKind") == "custom_model_development", e.name


@pytest.mark.parametrize("experiment", sorted(MODEL_RUNS))
def test_each_model_has_a_complete_training_run(small_repo, experiment):
    c = client(small_repo)
    stage, param, metrics = MODEL_RUNS[experiment]
    exp = c.get_experiment_by_name(experiment)
    (run,) = c.search_runs([exp.experiment_id], f"tags.stage = '{stage}'")
    assert run.info.status == "FINISHED"
    assert param in run.data.params
    assert set(metrics) <= set(run.data.metrics), sorted(run.data.metrics)
    (model,) = mlflow.search_logged_models(
        experiment_ids=[exp.experiment_id],
        filter_string=f"source_run_id = '{run.info.run_id}'",
        output_format="list",
    )
    assert {m.key for m in model.metrics} >= set(metrics)  # linked to the model
    inputs = {
        d.dataset.name: (d.dataset.digest, json.loads(d.dataset.source)["uri"])
        for d in run.inputs.dataset_inputs
    }
    prepared = small_repo / "data" / "prepared"
    if stage in ("train_oracle", "train_classifier"):
        assert inputs == {
            "train.parquet": (md5(prepared / "train.parquet"), "data/prepared/train.parquet"),
            "test.parquet": (md5(prepared / "test.parquet"), "data/prepared/test.parquet"),
        }
    elif stage == "train_yolo":
        lock = yaml.safe_load((small_repo / "dvc.lock").read_text())["stages"]
        dir_md5 = lock["simulate_images"]["outs"][0]["md5"]
        assert dir_md5.endswith(".dir") and inputs == {"images": (dir_md5, "data/images")}
    else:
        assert set(inputs) == {"train.parquet", "truth.parquet"}
    # A pipeline run of the same execution links it.
    pipeline = c.get_run(run.data.tags["pipeline_mlflow_run_id"])
    assert pipeline.data.tags["run_kind"] == "pipeline"


def test_training_runs_carry_evaluates_held_out_numbers(small_repo):
    """The R2 beside the Oracle's params is evaluate's R2 (same code, same test split)."""
    c = client(small_repo)
    for experiment, name, keys in (
        ("yield-prediction", "oracle", ["r2", "mae", "rmse", "r2_gap"]),
        ("quality-classification", "classifier", ["accuracy", "f1_macro", "roc_auc_ovr"]),
    ):
        (run,) = c.search_runs([c.get_experiment_by_name(experiment).experiment_id])
        report = json.loads((small_repo / "metrics" / f"{name}.json").read_text())
        assert {k: run.data.metrics[k] for k in keys} == {k: report[k] for k in keys}


def test_one_pipeline_run_holds_params_and_every_headline_metric(small_repo):
    c = client(small_repo)
    models = c.get_experiment_by_name("vertiflow-models").experiment_id
    (pipeline,) = c.search_runs([models], "tags.run_kind = 'pipeline'")
    assert pipeline.info.status == "FINISHED"
    assert pipeline.info.run_name.startswith("repro@")
    assert pipeline.data.tags["mlflow.source.name"] == "dvc repro"  # the UI's Source column
    assert pipeline.data.params["train_oracle.hyperparams.max_iter"] == "100"
    assert "train_oracle.hyperparams.max_iter" in pipeline.data.tags["changed_params"]
    assert set(HEADLINE) <= set(pipeline.data.metrics), sorted(pipeline.data.metrics)
    quality = json.loads((small_repo / "metrics" / "quality.json").read_text())
    assert pipeline.data.metrics["oracle_r2"] == quality["oracle"]["r2"]
    assert pipeline.data.metrics["oracle_r2_gap"] == pytest.approx(quality["oracle"]["gap"])
    assert not [k for k in pipeline.data.metrics if k.endswith(("oracle_gap", "classifier_gap"))]
    # The other stages' runs are nested under it.
    stages = [r for r in c.search_runs([models]) if "run_kind" not in r.data.tags]
    assert stages and {r.data.tags["stage"] for r in stages} >= {"simulate", "evaluate"}
    assert {r.data.tags["mlflow.parentRunId"] for r in stages} == {pipeline.info.run_id}


def test_screenshot_tool_shows_the_runs_table(small_repo, tmp_path):
    """The tool starts `mlflow ui` on loopback and checks, in headless Chromium, that the
    runs table lists the pipeline run with its R2 column before it takes the picture."""
    assert Path("/usr/bin/chromium").exists(), "needs Debian's chromium (apt-get install chromium)"
    out = tmp_path / "runs.png"
    proc = subprocess.run(
        [
            *(sys.executable, str(REPO / "tools" / "screenshot_mlflow.py")),
            *("--repo", str(small_repo), "--out", str(out)),
            *("--params", "train_oracle.hyperparams.max_iter"),
        ],
        env=env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "repro@" in proc.stdout and "oracle_r2" in proc.stdout
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 20_000


def test_a_fresh_clones_repro_row_has_every_headline_metric(small_copy):
    """A fresh clone has no DVC cache: `dvc repro` re-runs the model stages, they rewrite
    the committed models byte for byte, and DVC skips evaluate ("didn't change"). Its
    pipeline run had no oracle_r2 or classifier_accuracy at all (evaluate's files were
    held back as "downstream of a stage that ran", and no stage ran after to log them):
    the baseline's row of every sweep was blank in the README's sort columns.
    Here the stage that runs again is validate (`-f -s`), whose report is plain counts:
    the test must not rest on a retrained model giving the very bytes again (retraining
    under the full suite's load twice gave other bytes in CI, and passed alone)."""
    shutil.rmtree(small_copy / ".mlflow")
    out = run(["dvc", "repro", "-f", "-s", "validate"], small_copy, timeout=600).stdout
    assert "Running stage 'validate'" in out and "train_oracle" not in out, out
    assert not run(["git", "status", "--porcelain"], small_copy).stdout  # the very bytes
    c = client(small_copy)
    models = c.get_experiment_by_name("vertiflow-models").experiment_id
    (pipeline,) = c.search_runs([models], "tags.run_kind = 'pipeline'")
    assert set(HEADLINE) <= set(pipeline.data.metrics), sorted(pipeline.data.metrics)
    oracle = json.loads((small_copy / "metrics" / "oracle.json").read_text())
    classifier = json.loads((small_copy / "metrics" / "classifier.json").read_text())
    assert pipeline.data.metrics["oracle_r2"] == oracle["r2"]
    assert pipeline.data.metrics["classifier_accuracy"] == classifier["accuracy"]
