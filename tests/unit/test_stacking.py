"""The Oracle's predicted yield as a classifier input (`tabular.stacking`)."""

from __future__ import annotations

import copy
import datetime as dt

import numpy as np
import pandas as pd
import polars as pl
import pytest
from scipy.stats import norm
from sklearn.neighbors import KNeighborsRegressor

from vertiflow.errors import VertiflowError
from vertiflow.tabular import modeling, stacking
from vertiflow.tabular.evaluation import proba_in_grade_order

FEATURES = {"categorical": ["crop"], "numeric": ["a", "b", "c"]}
BASE_G = {"kale": 40.0, "chard": 120.0, "mizuna": 75.0}
NOISE = 0.05  # lognormal sigma of the harvest around its expectation
CUTS = (0.6, 0.3)  # share of the crop's base weight above which PREMIUM, STANDARD


def graded_by_size(n: int, seed: int) -> pl.DataFrame:
    """Three crops whose grade is their harvest's size against the crop's best (as a
    grader sorting heads by weight does); the yield is an interaction of three inputs."""
    rng = np.random.default_rng(seed)
    crop = rng.choice(list(BASE_G), n)
    a, b, c = (rng.uniform(0, 1, n) for _ in range(3))
    expected = (
        np.vectorize(BASE_G.get)(crop)
        * (0.4 + a)
        * (0.5 + b)
        * 0.8
        * np.exp(-((c - 0.5) ** 2) / 0.1)
    )
    fresh = expected * rng.lognormal(0, NOISE, n)
    share = fresh / np.vectorize(BASE_G.get)(crop)
    grade = np.where(share > CUTS[0], "PREMIUM", np.where(share > CUTS[1], "STANDARD", "REJECT"))
    start = [dt.datetime(2020, 1, 1) + dt.timedelta(days=i) for i in range(n)]
    return pl.DataFrame(
        {
            "crop": crop,
            "start_date": start,
            "harvest_date": [s + dt.timedelta(days=30) for s in start],
            "a": a,
            "b": b,
            "c": c,
            "fresh_weight_g": fresh,
            "quality_grade": grade,
            "expected_share": expected / np.vectorize(BASE_G.get)(crop),
        }
    )


def bayes_accuracy(table: pl.DataFrame) -> float:
    """The expected accuracy of the best guess from the expected yield (the noise's only)."""
    log_share = np.log(table["expected_share"].to_numpy())
    above = [norm.sf((np.log(cut) - log_share) / NOISE) for cut in CUTS]
    proba = np.column_stack([above[0], above[1] - above[0], 1.0 - above[1]])
    return float(proba.max(axis=1).mean())


def section(task: str) -> dict:
    candidates = {
        "regression": {"splines": {"estimator": "spline_ridge", "hyperparams": {"n_knots": 8}}},
        "classification": {
            "splines": {"estimator": "spline_ordinal", "hyperparams": {"n_knots": 5}},
            "trees": {
                "estimator": "hist_gradient_boosting",
                "hyperparams": {"max_iter": 100, "learning_rate": 0.1, "max_depth": 3},
            },
        },
    }[task]
    return {
        "estimator": "auto",
        "seed": 3,
        "log_target": True,
        "features": FEATURES,
        "selection": {"folds": 3, "blend": False, "candidates": candidates},
    }


def accuracy(model, table: pl.DataFrame) -> float:
    proba = proba_in_grade_order(model, modeling.frame(table, list(model.feature_names_in_)))
    grades = np.array(["PREMIUM", "STANDARD", "REJECT"])[proba.argmax(axis=1)]
    return float(np.mean(grades == table["quality_grade"].to_numpy()))


def test_grades_that_follow_size_are_learnt_from_the_oracles_yield():
    train, test = graded_by_size(240, 0), graded_by_size(2000, 1)
    oracle, _ = modeling.select("regression", train, "fresh_weight_g", section("regression"))
    plain, _ = modeling.select("classification", train, "quality_grade", section("classification"))
    stacked, _ = modeling.select(
        "classification", train, "quality_grade", section("classification"), oracle
    )
    # Callers pass the usual inputs: the predicted yield is the model's own business.
    assert set(stacked.feature_names_in_) == {"crop", "a", "b", "c"}
    gaps = [bayes_accuracy(test) - accuracy(model, test) for model in (plain, stacked)]
    assert gaps[1] < 0.5 * gaps[0], gaps  # 0.024 against 0.064 here (train seed 0)


def test_training_rows_get_out_of_fold_predictions():
    """A 1-nearest-neighbour 'Oracle' predicts each row it was fitted on exactly: out of
    fold, no fitted row's prediction may be its own yield; new rows get the Oracle fitted
    on the fitted rows only."""
    rng = np.random.default_rng(0)
    x = pd.DataFrame({"a": rng.uniform(0, 1, 60)})
    y = pd.Series(rng.uniform(10, 20, 60))
    crops = pd.Series(["kale"] * 60)
    fitted, new = np.arange(50), np.arange(50, 60)
    columns, best = stacking.predicted(KNeighborsRegressor(1), x, y, crops, fitted, new, seed=0)
    values = np.exp(columns[stacking.COLUMNS[0]].to_numpy())
    assert not np.isclose(values[fitted], y.to_numpy()[fitted]).any()
    nearest = KNeighborsRegressor(1).fit(x.iloc[fitted], y.iloc[fitted]).predict(x.iloc[new])
    assert np.allclose(values[new], nearest)
    assert best["kale"] == pytest.approx(np.quantile(np.log(values[fitted]), stacking.BEST))


def test_the_search_sees_the_oracles_yield_as_of_each_folds_training_batches():
    """Forward in time: a fold's validation batches get their predicted yield from the
    Oracle refitted on that fold's training batches, not on later ones."""
    train = graded_by_size(240, 0)
    oracle, _ = modeling.select("regression", train, "fresh_weight_g", section("regression"))
    seen = []
    original = stacking.predicted

    def spy(unfitted, x, y, crops, fitted_rows, new_rows, seed):
        seen.append((fitted_rows.max(initial=-1), new_rows.min(initial=len(x))))
        return original(unfitted, x, y, crops, fitted_rows, new_rows, seed)

    stacking.predicted = spy
    try:
        modeling.select("classification", train, "quality_grade", section("classification"), oracle)
    finally:
        stacking.predicted = original
    folds = [(f, n) for f, n in seen if n < train.height]
    assert len(folds) == 3 and all(f < n for f, n in folds)  # rows in start-date order


def test_a_data_column_with_the_inputs_name_is_refused():
    train = graded_by_size(240, 0)
    oracle, _ = modeling.select("regression", train, "fresh_weight_g", section("regression"))
    clashing = train.with_columns(oracle_log_yield=pl.lit(1.0))
    with pytest.raises(VertiflowError, match=r"oracle_log_yield.*rename it"):
        modeling.select(
            "classification", clashing, "quality_grade", section("classification"), oracle
        )


def test_a_stacked_classifier_refits_with_its_oracle_kept():
    train = graded_by_size(240, 0)
    oracle, _ = modeling.select("regression", train, "fresh_weight_g", section("regression"))
    stacked, _ = modeling.select(
        "classification", train, "quality_grade", section("classification"), oracle
    )
    refits = modeling.bootstrap_refits(stacked, train, "quality_grade", 2, seed=0)
    x = modeling.frame(train, list(stacked.feature_names_in_))
    for refit in refits:
        assert refit.oracle is oracle  # not a refitted or unfitted copy
        assert refit.predict_proba(x).shape == (train.height, 3)


def test_a_crop_the_classifier_never_saw_has_no_reference():
    best = {"kale": 3.0}
    x = pd.DataFrame({"crop": ["kale", "okra"]})
    added = stacking.with_columns(x, np.array([2.5, 2.5]), best)
    assert added[stacking.COLUMNS[1]].iloc[0] == pytest.approx(-0.5)
    assert np.isnan(added[stacking.COLUMNS[1]].iloc[1])


def test_a_given_yield_stands_in_for_the_oracles():
    """Cortex gives each ensemble member's classifier that member's own predicted yield:
    the classifier's Oracle is then not asked at all."""
    train = graded_by_size(240, 0)
    oracle, _ = modeling.select("regression", train, "fresh_weight_g", section("regression"))
    stacked, _ = modeling.select(
        "classification", train, "quality_grade", section("classification"), oracle
    )
    x = modeling.frame(train, list(stacked.feature_names_in_))
    own = stacked.predict_proba(x)
    predicted = oracle.predict(x[list(oracle.feature_names_in_)])

    def unused(_):
        raise AssertionError("the classifier's Oracle predicted")

    stacked.oracle = copy.copy(oracle)
    stacked.oracle.predict = unused
    assert np.array_equal(stacked.predict_proba(x, yield_g=predicted), own)
    assert not np.allclose(stacked.predict_proba(x, yield_g=predicted * 2), own)
