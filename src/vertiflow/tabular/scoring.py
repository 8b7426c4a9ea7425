"""The scoring flow of evaluate: both tabular models on the held-out batches, and files.

Orchestration lives here, not in `evaluation`, whose functions take and return values.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import mlflow
import mlflow.sklearn
import numpy as np
import polars as pl

from vertiflow.stage import write_json
from vertiflow.tabular import evaluation, modeling


@dataclass
class Scored:
    """Both tabular models on the held-out batches."""

    predicted: np.ndarray
    proba: np.ndarray
    oracle: dict
    classifier: dict


def score(test: pl.DataFrame, truth: pl.DataFrame, models: Path) -> Scored:
    oracle = mlflow.sklearn.load_model(str(models / "oracle"))
    classifier = mlflow.sklearn.load_model(str(models / "classifier"))
    # Each model takes the columns it was trained on (its own feature list in params).
    predicted = oracle.predict(modeling.frame(test, oracle.feature_names_in_))
    proba = evaluation.proba_in_grade_order(
        classifier, modeling.frame(test, classifier.feature_names_in_)
    )
    return Scored(
        predicted,
        proba,
        evaluation.oracle_report(test, predicted, truth),
        evaluation.classifier_report(test, proba, truth),
    )


def write_outputs(test: pl.DataFrame, scored: Scored, metrics: Path) -> dict[str, dict]:
    """metrics/oracle.json, classifier.json and the plot tables; returns all reports."""
    for name in ("oracle", "classifier"):
        mlflow.log_artifact(str(write_json(metrics / f"{name}.json", getattr(scored, name))))
    plots = metrics / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    tables = {
        "oracle_predictions": evaluation.prediction_table(test, scored.predicted),
        "classifier_confusion": evaluation.confusion_table(test, scored.proba),
        **{f"roc_{g}": t for g, t in evaluation.roc_tables(test, scored.proba).items()},
    }
    for name, table in tables.items():
        table.to_csv(plots / f"{name}.csv", index=False)
    mlflow.log_artifacts(str(plots), "plots")
    yolo = json.loads((metrics / "yolo.json").read_text())
    return {"oracle": scored.oracle, "classifier": scored.classifier, "yolo": yolo}
