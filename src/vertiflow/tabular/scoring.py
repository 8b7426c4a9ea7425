"""The scoring flow of evaluate: both tabular models on the held-out batches, and files.

`score_oracle` and `score_classifier` are also what the training stages log as their
held-out metrics: the numbers on a training run are evaluate's numbers.

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


def score_oracle(model, test: pl.DataFrame, truth: pl.DataFrame) -> tuple[np.ndarray, dict]:
    """Predicted yields and the Oracle's report (R2, MAE, RMSE, gap to the Bayes limit)."""
    # Each model takes the columns it was trained on (its own feature list in params).
    predicted = model.predict(modeling.frame(test, model.feature_names_in_))
    return predicted, evaluation.oracle_report(test, predicted, truth)


def score_classifier(model, test: pl.DataFrame, truth: pl.DataFrame) -> tuple[np.ndarray, dict]:
    """Grade probabilities and the Classifier's report (accuracy, F1, AUC, gap)."""
    proba = evaluation.proba_in_grade_order(model, modeling.frame(test, model.feature_names_in_))
    return proba, evaluation.classifier_report(test, proba, truth)


def score(test: pl.DataFrame, truth: pl.DataFrame, models: Path) -> Scored:
    predicted, oracle = score_oracle(mlflow.sklearn.load_model(str(models / "oracle")), test, truth)
    proba, classifier = score_classifier(
        mlflow.sklearn.load_model(str(models / "classifier")), test, truth
    )
    return Scored(predicted, proba, oracle, classifier)


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
    losses = evaluation.heldout_losses(test, scored.predicted, scored.proba)
    losses.to_csv(metrics / "heldout_losses.csv", index=False)
    mlflow.log_artifacts(str(plots), "plots")
    yolo = json.loads((metrics / "yolo.json").read_text())
    return {"oracle": scored.oracle, "classifier": scored.classifier, "yolo": yolo}
