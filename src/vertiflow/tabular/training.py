"""The training flow train_oracle and train_classifier share: one MLflow run, fit, save.

Orchestration lives here, not in `modeling`, whose functions take and return values.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow
import polars as pl

from vertiflow.lifecycle import tracking
from vertiflow.tabular import modeling


def train_stage(
    stage: str, task: str, target: str, section: dict[str, Any], train_path: Path, out: Path
) -> None:
    """What train_oracle and train_classifier do: one MLflow run, fit, save the DVC out, log."""
    with tracking.stage_run(stage, {stage: section}):
        model, x, fit_seconds = modeling.train(task, pl.read_parquet(train_path), target, section)
        modeling.save_and_log(model, out, x)
        mlflow.log_metrics({"fit_seconds": fit_seconds, "train_rows": len(x)})
