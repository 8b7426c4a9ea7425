"""Parameter sweeps: queued `dvc exp run` grids on parallel workers lose no MLflow run."""

from __future__ import annotations

import json
import shutil

import mlflow
import pytest

from conftest import run, start_queue, stop_queue, wait_for_queue

pytestmark = pytest.mark.pipeline
# What a classifier param re-runs.
RERUN = {"train_classifier", "optimise_cortex", "evaluate", "summarise"}


def experiments(repo) -> dict[str, dict]:
    shown = json.loads(run(["dvc", "exp", "show", "--json"], repo).stdout)
    found = {}
    for commit in shown:
        for exp in commit.get("experiments") or []:
            for rev in exp["revs"]:
                metrics = rev["data"]["metrics"]["metrics/classifier.json"]["data"]
                found[rev["name"]] = {
                    "accuracy": metrics["accuracy"],
                    "params": rev["data"]["params"],
                }
    return found


@pytest.mark.parametrize("workers", [2, 4])
def test_queued_grid_records_every_stage_once(small_copy, workers):
    # Start from no MLflow store: parallel workers must not race creating it.
    shutil.rmtree(small_copy / ".mlflow")
    run(
        [
            "dvc",
            "exp",
            "run",
            "--queue",
            "-S",
            "train_classifier.hyperparams.max_iter=30,60",
            "-S",
            "train_classifier.hyperparams.learning_rate=0.1,0.2",
        ],
        small_copy,
    )
    start_queue(small_copy, workers, {"OMP_NUM_THREADS": "1"})  # as the README runs it
    try:
        status = wait_for_queue(small_copy, expected=4)
    finally:
        stop_queue(small_copy)
    assert status.count("Success") == 4 and "Failed" not in status, status

    found = experiments(small_copy)
    assert len(found) == 4
    grid = {
        (
            p["params.yaml"]["data"]["train_classifier"]["hyperparams"]["max_iter"],
            p["params.yaml"]["data"]["train_classifier"]["hyperparams"]["learning_rate"],
        )
        for p in (e["params"] for e in found.values())
    }
    assert grid == {(30, 0.1), (30, 0.2), (60, 0.1), (60, 0.2)}
    assert all(0 < e["accuracy"] <= 1 for e in found.values())

    mlflow.set_tracking_uri(f"sqlite:///{small_copy / '.mlflow' / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["vertiflow-models"], output_format="list")
    for name in found:
        stages = sorted(
            r.data.tags["stage"] for r in runs if r.data.tags.get("dvc_exp_name") == name
        )
        assert stages == sorted(RERUN), f"{name}: {stages}"  # none missing, none doubled
        assert all(
            r.info.status == "FINISHED" for r in runs if r.data.tags.get("dvc_exp_name") == name
        )
    assert not list((small_copy / ".dvc" / "tmp").rglob("mlflow.db"))
