"""Held-out metrics, their gap to the Bayes limits, and the tables behind the DVC plots.

The Bayes limits are what the best possible model reaches on the *same* test batches:
the simulator's expected yield as a predictor (R2, MAE, RMSE) and the grade with the
highest true probability (accuracy, F1). Comparing on the same batches cancels the luck
of the draw that a fixed number would carry.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import polars as pl
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    mean_absolute_error,
    r2_score,
    roc_auc_score,
    roc_curve,
)

from vertiflow.farm.agronomy import GRADES

TRUTH_PROBA = ["p_premium", "p_standard", "p_reject"]  # columns in GRADES order


def regression_metrics(actual: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    return {
        "r2": float(r2_score(actual, predicted)),
        "mae": float(mean_absolute_error(actual, predicted)),
        "rmse": float(np.sqrt(np.mean((actual - predicted) ** 2))),
    }


def _rankable(actual: np.ndarray, grade: str) -> bool:
    """A grade the split holds, and not alone: one-vs-rest ROC needs both sides."""
    return 0 < (actual == grade).sum() < len(actual)


def classification_metrics(actual: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    """`proba` columns in GRADES order. Log loss is what the model search scores: on a
    small test split accuracy can match the Bayes limit by luck while log loss still
    shows the gap."""
    predicted = np.asarray(GRADES)[proba.argmax(axis=1)]
    actual = np.asarray(actual)
    occurring = [g for g in GRADES if g in set(actual) | set(predicted)]
    return {
        "accuracy": float(accuracy_score(actual, predicted)),
        # over the grades that occur (in the test or the predictions): a farm that never
        # rejects would otherwise score a perfect classifier 0.667
        "f1_macro": float(f1_score(actual, predicted, average="macro", labels=occurring)),
        "roc_auc_ovr": float(
            np.mean(
                [
                    roc_auc_score(actual == grade, proba[:, i])
                    for i, grade in enumerate(GRADES)
                    if _rankable(actual, grade)
                ]
                or [np.nan]  # a test split of one grade ranks nothing
            )
        ),
        "log_loss": float(log_losses(proba, list(actual)).mean()),
    }


def proba_in_grade_order(model, x: pd.DataFrame, **predict_kw) -> np.ndarray:
    """Columns in GRADES order; 0 for a grade the model never saw (a farm that has never
    rejected a batch trains a two-grade classifier)."""
    classes = list(model.classes_)
    proba = model.predict_proba(x, **predict_kw)
    zeros = np.zeros(len(proba))
    return np.column_stack([proba[:, classes.index(g)] if g in classes else zeros for g in GRADES])


def _rounded(metrics: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 6) for k, v in metrics.items()}


def _per_crop(test: pl.DataFrame, report: Callable[[pl.DataFrame, np.ndarray], dict]) -> dict:
    """Each crop's own figures, for a farm of several: pooled over crops of 1 g and 300 g
    a plant, an R2 looks good while a small crop's is poor (a four-crop farm's trial:
    0.986 pooled, its microgreens 0.683)."""
    crops = sorted(test["crop"].unique().to_list())
    if len(crops) < 2:
        return {}
    column = test["crop"].to_numpy()
    per_crop = {}
    for crop in crops:
        mask = column == crop
        rows = test.filter(pl.Series(mask))
        per_crop[str(crop)] = report(rows, mask) if mask.sum() >= 2 else {"n_test": 1}
    return {"per_crop": per_crop}


def oracle_report(
    test: pl.DataFrame, predicted: np.ndarray, truth: pl.DataFrame, by_crop: bool = True
) -> dict:
    actual = test["fresh_weight_g"].to_numpy()
    report = {"n_test": test.height, **_rounded(regression_metrics(actual, predicted))}
    if truth.height:
        expected = test.select("batch_id").join(
            truth, on="batch_id", how="left", maintain_order="left"
        )["yield_expected_g"]
        limit = regression_metrics(actual, expected.to_numpy())
        report["bayes"] = _rounded(limit)
        report["r2_gap"] = round(limit["r2"] - report["r2"], 6)
        report["r2_of_limit"] = round(report["r2"] / limit["r2"], 6)
    if by_crop:
        report |= _per_crop(test, lambda rows, m: oracle_report(rows, predicted[m], truth, False))
    return report


def classifier_report(
    test: pl.DataFrame, proba: np.ndarray, truth: pl.DataFrame, by_crop: bool = True
) -> dict:
    actual = test["quality_grade"].to_numpy()
    report = {"n_test": test.height, **_rounded(classification_metrics(actual, proba))}
    if truth.height:
        best = (
            test.select("batch_id")
            .join(truth, on="batch_id", how="left", maintain_order="left")
            .select(TRUTH_PROBA)
        )
        limit = classification_metrics(actual, best.to_numpy())
        report["bayes"] = _rounded(limit)
        report["accuracy_gap"] = round(limit["accuracy"] - report["accuracy"], 6)
    if by_crop:
        report |= _per_crop(test, lambda rows, m: classifier_report(rows, proba[m], truth, False))
    return report


def prediction_table(test: pl.DataFrame, predicted: np.ndarray) -> pd.DataFrame:
    actual = test["fresh_weight_g"].to_numpy()
    return pd.DataFrame(
        {
            "batch_id": test["batch_id"].to_numpy(),
            "crop": test["crop"].to_numpy(),
            "actual_g": actual,
            "predicted_g": np.round(predicted, 3),
            "residual_g": np.round(actual - predicted, 3),
        }
    )


def confusion_table(test: pl.DataFrame, proba: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "actual": test["quality_grade"].to_numpy(),
            "predicted": np.asarray(GRADES)[proba.argmax(axis=1)],
        }
    )


def roc_tables(test: pl.DataFrame, proba: np.ndarray) -> dict[str, pd.DataFrame]:
    """One-vs-rest ROC curve per grade; empty for a grade the test split lacks (or holds
    alone): it has no curve, and dvc.yaml still finds the file."""
    actual = test["quality_grade"].to_numpy()
    curves = {}
    for i, grade in enumerate(GRADES):
        if not _rankable(actual, grade):
            curves[grade] = pd.DataFrame({"fpr": [], "tpr": []})
            continue
        fpr, tpr, _ = roc_curve(actual == grade, proba[:, i])
        curves[grade] = pd.DataFrame({"fpr": np.round(fpr, 5), "tpr": np.round(tpr, 5)})
    return curves


def squared_errors(predicted: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """The Oracle's loss per held-out batch (g^2): what the champion gate and report pair."""
    return (np.asarray(predicted, float) - np.asarray(actual, float)) ** 2


def log_losses(proba: np.ndarray, actual: list[str]) -> np.ndarray:
    """The Classifier's loss per held-out batch (nats); proba columns in GRADES order."""
    picked = proba[np.arange(len(actual)), [GRADES.index(a) for a in actual]]
    return -np.log(np.clip(picked, 1e-12, 1))


def no_skill_losses(train: pl.DataFrame, test: pl.DataFrame) -> dict[str, np.ndarray]:
    """Per held-out batch, the losses of knowing only its crop: the crop's mean training
    yield (Oracle), the crop's training grade shares (Classifier). The registry's first
    champion must clearly beat these on the same rows, a bar that means the same on any
    farm. A crop's shares are smoothed by one batch's worth of the farm's shares: a grade
    the crop never had but the farm did is not an infinite loss, and a grade the farm
    never recorded costs the baseline what it costs any model trained on the farm."""
    overall = float(train["fresh_weight_g"].mean())
    means = dict(train.group_by("crop").agg(pl.col("fresh_weight_g").mean()).iter_rows())
    counts = pd.crosstab(train["crop"].to_numpy(), train["quality_grade"].to_numpy())
    counts = counts.reindex(columns=list(GRADES), fill_value=0)
    prior = counts.sum().to_numpy() / counts.to_numpy().sum()
    rows = zip(counts.index, counts.to_numpy(), strict=True)
    shares = {crop: (n + prior) / (n.sum() + 1) for crop, n in rows}

    crops = test["crop"].to_list()
    predicted = np.array([means.get(c, overall) for c in crops], dtype=float)
    proba = np.array([shares.get(c, prior) for c in crops], dtype=float).reshape(-1, len(GRADES))
    return {
        "oracle": squared_errors(predicted, test["fresh_weight_g"].to_numpy()),
        "classifier": log_losses(proba, test["quality_grade"].to_list()),
    }


def heldout_losses(test: pl.DataFrame, predicted: np.ndarray, proba: np.ndarray) -> pd.DataFrame:
    """Per-batch losses of both models, keyed by batch: a pull request's report pairs the
    base revision's with the new one's on the same batches (a paired bootstrap)."""
    return pd.DataFrame(
        {
            "batch_id": test["batch_id"].to_list(),
            "oracle_squared_error": squared_errors(predicted, test["fresh_weight_g"].to_numpy()),
            "classifier_log_loss": log_losses(proba, test["quality_grade"].to_list()),
        }
    ).round(8)


def quality_table(oracle: dict, classifier: dict, cortex: dict, yolo: dict) -> dict:
    """Every model's headline metric next to the best achievable on the same data.

    Limits: the simulator's true predictors (Oracle, Classifier), the true best recipe
    (Cortex regret, best 0), and 1.0 for YOLO: the generator's boxes are exact, so a
    perfect detector scores mAP50 1.0 (an upper bound; some lesions are genuinely small).
    Numbers only: the metric's name is the key (DVC metrics files hold no text).
    """

    def row(metric: str, value: float, limit: float | None) -> dict:
        out = {metric: round(value, 6)}
        if limit is not None:
            out |= {f"{metric}_limit": limit, "gap": round(abs(limit - value), 6)}
        return out

    table = {
        "oracle": row("r2", oracle["r2"], oracle.get("bayes", {}).get("r2")),
        "classifier": row(
            "accuracy", classifier["accuracy"], classifier.get("bayes", {}).get("accuracy")
        ),
        "yolo": row("mAP50", yolo["mAP50"], 1.0),
    }
    if "max_regret" in cortex:
        table["cortex"] = row("max_regret", cortex["max_regret"], 0.0)
    return table
