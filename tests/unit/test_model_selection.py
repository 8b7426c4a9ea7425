"""Model choice by time-ordered cross-validation on the farm's own training batches."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from vertiflow.tabular import modeling

FEATURES = {"categorical": ["crop"], "numeric": ["a", "b", "noise"]}


def farm(n: int = 240, seed: int = 0) -> pl.DataFrame:
    """A smooth multiplicative yield in two inputs: a spline model beats a stump."""
    rng = np.random.default_rng(seed)
    a, b = rng.uniform(0, 1, n), rng.uniform(0, 1, n)
    y = 50 * np.exp(-((a - 0.6) ** 2) / 0.05) * (0.5 + b) * rng.lognormal(0, 0.02, n)
    start = [dt.datetime(2020, 1, 1) + dt.timedelta(days=2 * i) for i in range(n)]
    return pl.DataFrame(
        {
            "crop": ["kale"] * n,
            "start_date": start,
            "harvest_date": [s + dt.timedelta(days=30) for s in start],
            "a": a,
            "b": b,
            "noise": rng.normal(0, 1, n),
            "fresh_weight_g": y,
            "quality_grade": np.where(a > 0.5, "PREMIUM", np.where(b > 0.5, "STANDARD", "REJECT")),
        }
    )


def section(candidates: dict, estimator: str = "auto") -> dict:
    return {
        "estimator": estimator,
        "seed": 1,
        "log_target": True,
        "features": FEATURES,
        "hyperparams": {"max_iter": 5, "max_depth": 1},
        "selection": {"folds": 3, "candidates": candidates},
    }


CANDIDATES = {
    "stumps": {
        "estimator": "hist_gradient_boosting",
        "hyperparams": {"max_iter": 5, "max_depth": 1},
    },
    "splines": {"estimator": "spline_ridge", "hyperparams": {"n_knots": 6}},
    "gp": {"estimator": "gaussian_process", "max_rows": 100},
}


def test_time_folds_validate_on_later_batches_and_purge_overlaps():
    table = farm(100)
    for train, valid in modeling.time_folds(table, 3):
        first_valid = table["start_date"][int(valid.min())]
        assert (table["harvest_date"].to_numpy()[train] < np.datetime64(first_valid)).all()
        assert train.max() < valid.min()


def test_the_better_candidate_is_chosen_and_the_search_is_reported():
    model, sel = modeling.select("regression", farm(), "fresh_weight_g", section(CANDIDATES))
    assert sel.chosen == "splines" and sel.scores["splines"] > sel.scores["stumps"]
    assert "gp" in sel.skipped and "max_rows" in sel.skipped["gp"]  # 240 rows > 100
    numbers = sel.metrics()
    assert numbers["chosen"] == {"stumps": 0, "splines": 1}
    assert all(isinstance(v, int | float) for v in numbers["cv_r2"].values())
    assert list(model.feature_names_in_) == ["crop", "a", "b", "noise"]
    again, sel2 = modeling.select("regression", farm(), "fresh_weight_g", section(CANDIDATES))
    assert sel2.metrics() == numbers  # deterministic, so dvc.lock's md5 of it is too
    assert np.array_equal(
        model.predict(farm(20, 5).to_pandas()), again.predict(farm(20, 5).to_pandas())
    )


def test_a_fixed_estimator_skips_the_search():
    _, sel = modeling.select(
        "regression", farm(), "fresh_weight_g", section(CANDIDATES, "hist_gradient_boosting")
    )
    assert sel.chosen == "hist_gradient_boosting" and sel.scores == {} and sel.folds == 0


def test_classifier_search_and_empty_or_copied_columns_are_dropped():
    table = farm().with_columns(pl.lit(None, pl.Float64).alias("empty"), pl.col("a").alias("a2"))
    spec = {"categorical": ["crop"], "numeric": ["a", "b", "empty", "a2"]}
    cands = {
        "trees": {"estimator": "hist_gradient_boosting", "hyperparams": {"max_iter": 30}},
        "splines": {"estimator": "spline_logistic", "hyperparams": {"n_knots": 4}},
    }
    s = {**section(cands), "features": spec, "log_target": False}
    model, sel = modeling.select("classification", table, "quality_grade", s)
    assert set(sel.scores) == {"trees", "splines"} and sel.metric == "neg_log_loss"
    assert list(model.feature_names_in_) == ["crop", "a", "b"]


def test_bootstrap_refits_keep_a_gaussian_process_kernel():
    model, sel = modeling.select(
        "regression", farm(80), "fresh_weight_g", section({"gp": CANDIDATES["gp"]}, "auto")
    )
    assert sel.chosen == "gp"
    refits = modeling.bootstrap_refits(model, farm(80), "fresh_weight_g", 2, seed=3)
    kernel = model.named_steps["model"].regressor_.kernel_
    for refit in refits:
        assert refit.named_steps["model"].regressor_.kernel_ == kernel
    x = farm(10, 9).to_pandas()
    assert not np.allclose(refits[0].predict(x), refits[1].predict(x))  # they differ


@pytest.mark.parametrize("bad", ["no_such_column"])
def test_a_feature_that_is_not_a_column_is_a_clear_error(bad):
    from vertiflow.errors import VertiflowError

    s = {**section(CANDIDATES), "features": {"categorical": ["crop"], "numeric": [bad]}}
    with pytest.raises(VertiflowError, match="no_such_column"):
        modeling.select("regression", farm(), "fresh_weight_g", s)


def test_a_farm_that_never_rejects_trains_and_scores_a_two_grade_classifier():
    """No REJECT in the export: the grade columns stay three (REJECT at 0), CV and the
    held-out metrics count only the grades there are."""
    from vertiflow.tabular import evaluation

    table = farm().with_columns(
        quality_grade=pl.when(pl.col("a") > 0.5)
        .then(pl.lit("PREMIUM"))
        .otherwise(pl.lit("STANDARD"))
    )
    section = {
        "estimator": "auto",
        "seed": 0,
        "features": FEATURES,
        "selection": {
            "folds": 2,
            "candidates": {
                "logistic": {"estimator": "spline_logistic"},
                "ordinal": {"estimator": "spline_ordinal"},
                "trees": {"estimator": "ordinal_boosting", "hyperparams": {"max_iter": 50}},
            },
        },
    }
    model, selection = modeling.select("classification", table, "quality_grade", section)
    assert set(selection.scores) == {"logistic", "ordinal", "trees"}
    proba = evaluation.proba_in_grade_order(model, modeling.frame(table, model.feature_names_in_))
    assert proba.shape == (table.height, 3) and np.all(proba[:, 2] == 0)
    metrics = evaluation.classification_metrics(table["quality_grade"].to_numpy(), proba)
    assert metrics["accuracy"] > 0.8 and 0.8 < metrics["roc_auc_ovr"] <= 1
    curves = evaluation.roc_tables(table, proba)
    assert curves["REJECT"].empty and not curves["PREMIUM"].empty


def test_the_cv_score_is_minus_the_mean_log_loss_of_the_true_grades():
    """sklearn's log_loss reads probability columns in sorted label order; grade order
    (PREMIUM, STANDARD, REJECT) is not sorted, and a mix-up picked the wrong model."""
    from vertiflow.tabular import evaluation

    grade = pl.when(pl.col("a") > 0.66).then(pl.lit("PREMIUM"))
    grade = grade.when(pl.col("a") > 0.33).then(pl.lit("STANDARD")).otherwise(pl.lit("REJECT"))
    table = farm().with_columns(quality_grade=grade)
    spec = modeling.FeatureSpec.from_params(FEATURES)
    model = modeling.build("classification", "spline_logistic", {}, spec, 0)
    x, y = (
        modeling.frame(table, FEATURES["categorical"] + FEATURES["numeric"]),
        table["quality_grade"],
    )
    modeling.fit(model, x, y.to_pandas())
    manual = evaluation.log_losses(evaluation.proba_in_grade_order(model, x), y.to_list()).mean()
    assert modeling._score("classification", model, x, y.to_pandas()) == pytest.approx(-manual)
