"""Per-stage MLflow logging overhead: everything a stage does for tracking, model fit excluded.

For training stages the figure includes writing the model directory itself (the DVC
out), which MLflow's skops save also reloads to verify: the whole cost of a model.

Measured in-process against a fresh local SQLite store (its one-time schema creation is
reported apart), with the real models from `models/` (run `dvc repro` first). Target:
under 2 s per stage.
"""

from __future__ import annotations

import json
import os
import shutil
import time

import mlflow
import mlflow.sklearn
import polars as pl

from common import REPO, WORK, write
from vertiflow import params
from vertiflow.lifecycle import tracking
from vertiflow.tabular import modeling


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return round(time.perf_counter() - start, 3)


def main() -> None:
    work = WORK / "tracking"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    os.chdir(work)
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    all_params = params.load(REPO / "params.yaml")
    report = json.loads((REPO / "metrics" / "oracle.json").read_text())
    test = pl.read_parquet(REPO / "data" / "prepared" / "test.parquet")

    def empty_run():
        with tracking.stage_run("warmup", {}):
            pass

    figures = {"store_creation_once_seconds": timed(empty_run), "stages": {}}
    for stage in ("simulate", "prepare", "validate", "evaluate"):

        def run_only(stage=stage):
            with tracking.stage_run(stage, {stage: all_params.get(stage, {})}):
                mlflow.log_metrics(params.flatten(report))
                mlflow.log_artifact(str(REPO / "metrics" / "oracle.json"))

        figures["stages"][stage] = {"tracking_seconds": timed(run_only)}

    for name in ("oracle", "classifier"):
        model = mlflow.sklearn.load_model(str(REPO / "models" / name))
        x = modeling.frame(test, model.feature_names_in_)
        parts = {}

        def train_stage(name=name, model=model, x=x, parts=parts):
            with tracking.stage_run(
                f"train_{name}", {f"train_{name}": all_params[f"train_{name}"]}
            ):
                parts["save_and_log_model_seconds"] = timed(
                    lambda: modeling.save_and_log(model, work / name, x)
                )
                mlflow.log_metrics({"fit_seconds": 1.0})

        parts["tracking_seconds"] = timed(train_stage)  # save of the DVC out included
        figures["stages"][f"train_{name}"] = parts

    worst = max(s["tracking_seconds"] for s in figures["stages"].values())
    figures["worst_stage_tracking_seconds"] = worst
    figures["target_under_2s"] = worst < 2.0
    print(json.dumps(figures, indent=2))
    print(write("tracking_overhead", figures))
    os.chdir(REPO)
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
