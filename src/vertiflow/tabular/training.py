"""The training flow train_oracle and train_classifier share: one MLflow run, fit, save.

Orchestration lives here, not in `modeling`, whose functions take and return values.
The run also carries the model's held-out metrics, computed on the test split by the
code evaluate uses (`scoring`), and the train and test tables as dataset inputs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow
import mlflow.sklearn
import polars as pl

from vertiflow.lifecycle import tracking
from vertiflow.tabular import modeling, scoring

SCORERS = {"regression": scoring.score_oracle, "classification": scoring.score_classifier}


def train_stage(
    stage: str,
    task: str,
    target: str,
    section: dict[str, Any],
    train_path: Path,
    out: Path,
    test_path: Path = Path("data/prepared/test.parquet"),
    truth_path: Path = Path("data/prepared/truth.parquet"),
    selection_out: Path | None = None,
    oracle_path: Path | None = None,
) -> None:
    """What train_oracle and train_classifier do: one MLflow run, fit, save the DVC out, log.

    `oracle_path`: the Oracle's model directory, whose predicted yield the classifier's
    candidates also take (`stacking`)."""
    with tracking.stage_run(stage, {stage: section}):
        oracle = None if oracle_path is None else mlflow.sklearn.load_model(str(oracle_path))
        model, x, fit_seconds, selection = modeling.train(
            task, pl.read_parquet(train_path), target, section, oracle
        )
        modeling.write_selection(selection, selection_out)  # metrics file and MLflow
        model_id = modeling.save_and_log(model, out, x)
        _, report = SCORERS[task](model, pl.read_parquet(test_path), pl.read_parquet(truth_path))
        mlflow.log_metrics({"fit_seconds": fit_seconds, "train_rows": len(x)})
        inputs = {"training": tracking.dataset(train_path), "testing": tracking.dataset(test_path)}
        tracking.log_model_run(out, "sklearn", report, inputs, model_id=model_id)
