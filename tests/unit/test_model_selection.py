"""Model choice by time-ordered cross-validation on the farm's own training batches."""

from __future__ import annotations

import datetime as dt
import warnings

import numpy as np
import pandas as pd
import polars as pl
import pytest

from vertiflow.errors import VertiflowError
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
        assert (table["harvest_date"].to_numpy()[train] <= np.datetime64(first_valid)).all()
        assert train.max() < valid.min()


def restocked_together(modules: int, cycles: int) -> pl.DataFrame:
    """Every module restocked on the same day, back to back: harvests on the next start."""
    table = farm(modules * cycles)
    start = [
        dt.datetime(2020, 1, 1) + dt.timedelta(days=30 * (i // modules))
        for i in range(table.height)
    ]
    harvest = [s + dt.timedelta(days=30) for s in start]
    return table.with_columns(start_date=pl.Series(start), harvest_date=pl.Series(harvest))


def test_batches_started_on_the_same_day_share_a_window_and_search_still_runs():
    table = restocked_together(modules=20, cycles=6)
    starts = table["start_date"].to_numpy()
    splits = modeling.time_folds(table, 3)
    assert len(splits) == 3
    for train, valid in splits:
        assert not set(starts[train]) & set(starts[valid])  # a start day is in one window
        assert (table["harvest_date"].to_numpy()[train] <= starts[valid].min()).all()
    _, sel = modeling.select("regression", table, "fresh_weight_g", section(CANDIDATES))
    assert sel.folds == 3 and set(sel.scores) == {"stumps", "splines"}


def test_a_search_with_no_earlier_batches_to_learn_from_is_refused_clearly():
    table = restocked_together(modules=60, cycles=1)  # one start day: nothing is "later"
    with pytest.raises(VertiflowError, match=r"selection.folds 3: no fold .* 1 dates"):
        modeling.select("regression", table, "fresh_weight_g", section(CANDIDATES))


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


@pytest.mark.parametrize(
    "task, target", [("regression", "fresh_weight_g"), ("classification", "quality_grade")]
)
def test_a_sensor_installed_partway_through_is_searched_and_fitted(task, target):
    """Its column is empty in the first time-ordered fold's training batches: boosted
    trees could not bin it there ('window shape cannot be larger than input array')."""
    table = farm(300).with_columns(
        pl.when(pl.int_range(pl.len()) >= 200).then(pl.col("b")).alias("probe")
    )
    spec = {"categorical": ["crop"], "numeric": ["a", "b", "probe"]}
    cands = {
        "trees": {"estimator": "hist_gradient_boosting", "hyperparams": {"max_iter": 30}},
        "forest": {"estimator": "random_forest", "hyperparams": {"n_estimators": 10}},
        "splines": {"estimator": "spline_ridge" if task == "regression" else "spline_logistic"},
    }
    s = {**section(cands), "features": spec, "log_target": False}
    model, sel = modeling.select(task, table, target, s)
    assert set(sel.scores) == set(cands)
    assert "probe" in model.feature_names_in_
    refits = modeling.bootstrap_refits(model, table.head(200), target, 1, seed=3)
    assert refits[0].predict(table.to_pandas()).shape == (300,)


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


def test_bootstrap_refits_keep_the_splines_ridge_penalty():
    """A resample repeats rows, and RidgeCV's leave-one-out search then sees a copy of
    the row it leaves out: it would choose a weaker penalty than the model's own."""
    splines = section({"splines": CANDIDATES["splines"]}, "auto")
    model, _ = modeling.select("regression", farm(120), "fresh_weight_g", splines)
    alpha = model.named_steps["model"].regressor_[-1].alpha_
    for refit in modeling.bootstrap_refits(model, farm(120), "fresh_weight_g", 3, seed=3):
        assert refit.named_steps["model"].regressor_[-1].alpha_ == alpha


def _final(model):
    """The fitted estimator inside a pipeline (inside a log-target wrapper, an ordinal
    model's trees)."""
    fitted = model.named_steps["model"]
    fitted = getattr(fitted, "regressor_", fitted)
    return getattr(fitted, "trees_", fitted)


@pytest.mark.parametrize(
    "task, target, estimator",
    [
        ("regression", "fresh_weight_g", "hist_gradient_boosting"),
        ("classification", "quality_grade", "ordinal_boosting"),
    ],
)
def test_bootstrap_refits_keep_the_early_stopped_rounds(task, target, estimator):
    """Past 10,000 rows scikit-learn's boosted trees stop early on a random tenth held
    out: in a resample that tenth holds copies of rows they fit, so they would run on."""
    table = farm(10_100)
    s = {**section(CANDIDATES, estimator), "hyperparams": {"max_iter": 150, "learning_rate": 1.0}}
    model, _ = modeling.select(task, table, target, s)
    trees = _final(model)
    assert trees.do_early_stopping_ and trees.n_iter_ < 150
    for refit in modeling.bootstrap_refits(model, table, target, 2, seed=3):
        assert _final(refit).n_iter_ == trees.n_iter_ and not _final(refit).do_early_stopping_


def test_a_gaussian_process_on_more_rows_than_its_max_fits_a_seeded_subset():
    """Its cost is cubic in rows: beyond max_rows it fits a random subset (same every run),
    and so do its bootstrap refits, keeping the fitted kernel."""
    gp = {"gp": {"estimator": "gaussian_process", "hyperparams": {"max_rows": 60}}}
    model, sel = modeling.select("regression", farm(150), "fresh_weight_g", section(gp))
    fitted = model.named_steps["model"].regressor_
    assert sel.chosen == "gp" and fitted.estimator_.X_train_.shape[0] == 60
    again, _ = modeling.select("regression", farm(150), "fresh_weight_g", section(gp))
    x = farm(10, 9).to_pandas()
    assert np.array_equal(model.predict(x), again.predict(x))
    refit = modeling.bootstrap_refits(model, farm(150), "fresh_weight_g", 1, seed=3)[0]
    refitted = refit.named_steps["model"].regressor_.estimator_
    assert refitted.X_train_.shape[0] == 60 and refitted.kernel_ == fitted.estimator_.kernel_


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


def two_halves(n: int = 300, seed: int = 0) -> pl.DataFrame:
    """Yield that needs both inputs, and two candidates that each see one of them."""
    table = farm(n, seed)
    a, b = table["a"].to_numpy(), table["b"].to_numpy()
    y = 20.0 * np.exp(np.sin(3 * a) + b) * np.random.default_rng(seed).lognormal(0, 0.02, n)
    return table.with_columns(fresh_weight_g=pl.Series(y))


HALVES = {
    "sees_a": {"estimator": "spline_ridge", "numeric": ["a"]},
    "sees_b": {"estimator": "spline_ridge", "numeric": ["b"]},
}


def test_the_blend_of_the_best_two_competes_with_its_cv_weight():
    s = section(HALVES)
    s["selection"]["blend"] = True
    model, sel = modeling.select("regression", two_halves(), "fresh_weight_g", s)
    assert sel.chosen == "blend" and sel.scores["blend"] > max(
        sel.scores["sees_a"], sel.scores["sees_b"]
    )
    weights = sel.metrics()["blend_weights"]
    assert set(weights) == {"sees_a", "sees_b"} and sum(weights.values()) == pytest.approx(1.0)
    assert 0.1 < weights["sees_a"] < 0.9
    assert list(model.feature_names_in_) == ["crop", "a", "b"]  # both members' columns
    x = two_halves(20, 5).to_pandas()
    first, second = model.members_
    w = model.weight
    geometric = np.exp(
        w * np.log(first.predict(x[["crop", "a"]]))
        + (1 - w) * np.log(second.predict(x[["crop", "b"]]))
    )
    assert np.allclose(model.predict(x), geometric)  # log_target: the mean of log yields
    s["selection"]["blend"] = False
    _, alone = modeling.select("regression", two_halves(), "fresh_weight_g", s)
    assert (
        alone.chosen != "blend"
        and "blend" not in alone.scores
        and "blend_weights" not in alone.metrics()
    )


@pytest.mark.parametrize("seed", [0, 4, 6])
def test_a_single_candidate_wins_a_tie_with_the_blend(seed):
    """One candidate twice: the blend scores the same up to rounding (on some draws a hair
    above), and the simpler model is kept."""
    s = section({"one": HALVES["sees_a"], "same": HALVES["sees_a"]})
    s["selection"]["blend"] = True
    _, sel = modeling.select("regression", two_halves(300, seed), "fresh_weight_g", s)
    assert sel.scores["blend"] == pytest.approx(sel.scores["one"]) and sel.chosen == "one"


def test_a_classifier_blend_averages_probabilities_and_refits_with_its_weight():
    table = two_halves(600)
    score = table["a"] + table["b"] + pl.Series(np.random.default_rng(1).logistic(0, 0.1, 600))
    grade = np.where(score > 1.3, "PREMIUM", np.where(score > 0.7, "STANDARD", "REJECT"))
    table = table.with_columns(quality_grade=pl.Series(grade))
    s = section(
        {
            "sees_a": {"estimator": "spline_logistic", "numeric": ["a"]},
            "sees_b": {"estimator": "spline_logistic", "numeric": ["b"]},
        }
    )
    s["selection"]["blend"] = True
    model, sel = modeling.select("classification", table, "quality_grade", s)
    assert sel.chosen == "blend" and modeling.task_of(model) == "classification"
    x = table.to_pandas()
    proba = model.predict_proba(x)
    assert np.allclose(proba.sum(axis=1), 1.0)
    assert list(model.predict(x[:5])) == list(model.classes_[proba[:5].argmax(axis=1)])
    refits = modeling.bootstrap_refits(model, table, "quality_grade", 2, seed=3)
    assert all(r.weight == model.weight and r.columns == model.columns for r in refits)
    assert not np.allclose(refits[0].predict_proba(x), refits[1].predict_proba(x))


def test_max_rows_holds_for_a_lone_candidate_and_none_left_is_a_clear_error():
    """A lone candidate skipped the search, and with it its max_rows (a cubic-cost GP
    fitted on every row); every candidate over its max_rows was an IndexError."""
    lone = {"gp": {"estimator": "gaussian_process", "max_rows": 100}, **{}}
    both = {**lone, "splines": CANDIDATES["splines"]}
    _, sel = modeling.select("regression", farm(150), "fresh_weight_g", section(both))
    assert sel.chosen == "splines" and "gp" in sel.skipped and sel.scores == {}
    with pytest.raises(VertiflowError, match=r"every candidate .* skipped on 150 training rows"):
        modeling.select("regression", farm(150), "fresh_weight_g", section(lone))


def test_a_candidate_of_the_other_task_is_refused_before_the_search():
    bad = {**CANDIDATES, "ordinal": {"estimator": "ordinal_boosting"}}
    with pytest.raises(
        VertiflowError, match=r"candidates\.ordinal\.estimator .* not one of the regression models"
    ):
        modeling.select("regression", farm(), "fresh_weight_g", section(bad))


@pytest.mark.parametrize(
    "hyperparams",
    [{"n_knots": "six"}, {"C": "1.0"}, {"C": 0}, {"n_knot": 5}],
)
def test_a_hyperparameter_of_the_wrong_kind_names_its_candidate(hyperparams):
    bad = {"splines": {"estimator": "spline_ordinal", "hyperparams": hyperparams}}
    bad["stumps"] = {"estimator": "hist_gradient_boosting", "hyperparams": {"max_iter": 5}}
    with pytest.raises(VertiflowError, match=r"selection\.candidates\.splines: "):
        modeling.select("classification", farm(), "quality_grade", section(bad))


def test_no_blend_is_scored_when_one_fold_is_left():
    """With one fold the blend's cross-fitted weight had no other fold to come from."""
    two = {"stumps": CANDIDATES["stumps"], "splines": CANDIDATES["splines"]}
    s = section(two)
    s["selection"].update(folds=2, blend=True)
    table = farm(40)
    _, sel = modeling.select("regression", table, "fresh_weight_g", s)
    assert sel.folds == 1 and "blend" not in sel.scores and sel.chosen != "blend"


def test_f1_counts_only_the_grades_that_occur():
    """A perfect classifier on a farm that never rejects scored f1_macro 0.667."""
    from vertiflow.tabular import evaluation

    actual = np.array(["PREMIUM", "STANDARD", "PREMIUM"])
    proba = np.array([[0.9, 0.1, 0.0], [0.2, 0.8, 0.0], [0.7, 0.3, 0.0]])
    assert evaluation.classification_metrics(actual, proba)["f1_macro"] == 1.0


def test_the_held_out_metrics_report_the_log_loss_the_search_scores():
    """Two models of the same accuracy: only log loss tells the confident right one from
    the hesitant one (on a small test split accuracy matched Bayes while log loss did not)."""
    from vertiflow.tabular import evaluation

    actual = np.array(["PREMIUM", "STANDARD", "REJECT"])
    sure = np.array([[0.9, 0.05, 0.05], [0.05, 0.9, 0.05], [0.05, 0.05, 0.9]])
    unsure = np.array([[0.4, 0.3, 0.3], [0.3, 0.4, 0.3], [0.3, 0.3, 0.4]])
    a, b = (evaluation.classification_metrics(actual, p) for p in (sure, unsure))
    assert a["accuracy"] == b["accuracy"] == 1.0
    assert a["log_loss"] == pytest.approx(-np.log(0.9)) and b["log_loss"] == pytest.approx(
        -np.log(0.4)
    )


def test_an_input_the_gaussian_process_finds_irrelevant_is_not_a_warning():
    """The ARD kernel fades an irrelevant input out by taking its length scale to the upper
    bound; scikit-learn warns about each. A scale stuck at its lower bound still warns."""
    gp = {"gp": {"estimator": "gaussian_process"}}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        modeling.select("regression", farm(150), "fresh_weight_g", section(gp))
    irrelevant = [str(w.message) for w in caught if "length_scale" in str(w.message)]
    assert not [m for m in irrelevant if "upper bound" in m]

    rng = np.random.default_rng(0)
    x = pd.DataFrame({"a": rng.uniform(0, 1, 80)})
    wiggly = pd.Series(np.sin(60 * x["a"]) + 2)  # varies on a scale below the lower bound
    model = modeling.build("regression", "gaussian_process", {}, modeling.FeatureSpec([], ["a"]), 0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        modeling.fit(model, x, wiggly)
    assert [w for w in caught if "lower bound" in str(w.message)]
