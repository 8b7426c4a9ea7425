"""The classifier with and without the Oracle's predicted yield as an input
(`train_classifier.oracle_input`), on a farm export graded by size that our simulators did
not make (`size_graded_export.py`, which imports nothing of vertiflow).

The export (4 racks x 3 modules, about two years: 272 batches of three crops) goes
through the package code the stages call with the default params: prepare, validate, the
Oracle's search, then the classifier's search twice (with the Oracle input and without).
Both classifiers are judged on its own test batches (about 53: one batch is 1.9 points)
and on a larger export of the same world drawn with another seed (40 racks), against the
Bayes accuracy and log loss the generator's truth gives for the same batches.
Writes benchmarks/results/size_graded_farm.json.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import polars as pl

from common import HERE, REPO, WORK, write
from vertiflow import params
from vertiflow.data import dataset, features, rawdata, validation
from vertiflow.tabular import evaluation, modeling

SEEDS = {"farm": (20240902, 4), "large": (777, 40)}  # generator seed, racks
GRADES = np.array(["PREMIUM", "STANDARD", "REJECT"])


def export(name: str) -> tuple[pl.DataFrame, pd.DataFrame]:
    """The export, prepared (every batch, start-date order); and its truth by batch id."""
    seed, racks = SEEDS[name]
    out, truth = WORK / "size_graded" / name, WORK / "size_graded" / f"{name}_truth.csv"
    generator = HERE / "size_graded_export.py"
    command = [sys.executable, str(generator), str(out), "--truth", str(truth)]
    subprocess.run([*command, "--seed", str(seed), "--racks", str(racks)], check=True)
    return rawdata.load(out), pd.read_csv(truth, dtype={"batch_id": str}).set_index("batch_id")


def judge(model, rows: pl.DataFrame, truth: pd.DataFrame) -> dict:
    """Accuracy and log loss of `model` and of the Bayes classifier on the same batches."""
    bayes = truth.loc[rows["batch_id"].to_list(), ["p_premium", "p_standard", "p_reject"]]
    grade = rows["quality_grade"].to_numpy()
    index = pd.Series(grade).map({g: i for i, g in enumerate(GRADES)}).to_numpy()
    proba = evaluation.proba_in_grade_order(model, modeling.frame(rows, model.feature_names_in_))

    def figures(p: np.ndarray) -> dict:
        chosen = np.clip(p[np.arange(len(grade)), index], 1e-15, 1.0)
        accuracy = float(np.mean(GRADES[p.argmax(axis=1)] == grade))
        return {"accuracy": round(accuracy, 4), "log_loss": round(float(-np.log(chosen).mean()), 4)}

    model_figures, limit = figures(proba), figures(bayes.to_numpy())
    gap = round(100 * (limit["accuracy"] - model_figures["accuracy"]), 2)
    return {"batches": len(grade), **model_figures, "bayes": limit, "gap_points": gap}


def main() -> None:
    p = params.load(REPO / "params.yaml")
    optima = features.optima_from_params(p["prepare"]["crop_optima"])
    raw, truth = export("farm")
    prepared = dataset.build(raw, p["prepare"]["test_fraction"], optima)
    train, test = prepared.train, prepared.test
    gate = validation.validate(train, test, prepared.checks, validation.Budgets(**p["validate"]))
    large_raw, large_truth = export("large")
    large = dataset.build(large_raw, 0.5, optima)
    large_rows = pl.concat([large.train, large.test], how="vertical_relaxed")

    oracle, o = modeling.select("regression", train, "fresh_weight_g", p["train_oracle"])
    out: dict = {
        "batches": raw.batches.height,
        "train_rows": train.height,
        "test_rows": test.height,
        "validate_passed": gate["passed"],
        "oracle_chosen": o.chosen,
    }
    for name, inputs in (("with_oracle_input", oracle), ("without", None)):
        classifier, c = modeling.select(
            "classification", train, "quality_grade", p["train_classifier"], inputs
        )
        out[name] = {
            "chosen": c.chosen,
            "cv_neg_log_loss": c.metrics()["cv_neg_log_loss"],
            "test": judge(classifier, test, truth),
            "large": judge(classifier, large_rows, large_truth),
        }
        print(name, out[name]["test"], out[name]["large"], flush=True)
    print(write("size_graded_farm", out))


if __name__ == "__main__":
    main()
