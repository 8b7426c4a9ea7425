"""What an app passes to `load_model(...).predict`: read as `mlflow models serve` reads a
JSON request. Real MLflow models (tiny, saved as the stages save theirs); no mocks."""

from __future__ import annotations

import warnings

import mlflow.sklearn
import numpy as np
import pandas as pd
import polars as pl
import pytest

from vertiflow.errors import VertiflowError
from vertiflow.lifecycle import serving
from vertiflow.tabular import modeling

SPEC = modeling.FeatureSpec(categorical=["crop"], numeric=["temp_mean", "cycle_days"])


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    rng = np.random.default_rng(0)
    n = 120
    x = pd.DataFrame(
        {
            "crop": rng.choice(["basil", "lettuce"], n),
            "temp_mean": rng.normal(22, 2, n),
            "cycle_days": rng.integers(28, 40, n).astype(float),
        }
    )
    y = 3 * x["temp_mean"] + x["cycle_days"]
    grades = pd.Series(np.where(y > y.median(), "PREMIUM", "STANDARD"))
    root = tmp_path_factory.mktemp("models")
    for name, task, target in (
        ("oracle", "regression", y),
        ("classifier", "classification", grades),
    ):
        model = modeling.build(task, "random_forest", {"n_estimators": 5}, SPEC, 0)
        model.fit(x, target)
        mlflow.sklearn.save_model(model, str(root / name), **modeling._model_kwargs(model, x))
    return root


def load(models, name, tmp_path):
    return serving.load_model(
        name, use_registry=False, models_dir=models, log_root=tmp_path / "mon"
    )


def logged(tmp_path, name) -> pl.DataFrame:
    files = sorted((tmp_path / "mon" / "predictions" / name).glob("*.parquet"))
    return pl.concat([pl.read_parquet(f) for f in files], how="diagonal_relaxed")


def test_json_shaped_inputs_predict_as_over_http_and_are_logged_as_numbers(models, tmp_path):
    """JSON's 35 is an int and an app's "21.5" text: `mlflow models serve` reads both;
    in Python MLflow refused them ("Can not safely convert int64 to float64"), and a dict
    row was predicted, then failed to log (polars: expected pandas DataFrame, got dict)."""
    oracle = load(models, "oracle", tmp_path)
    floats = pd.DataFrame([{"crop": "basil", "temp_mean": 22.0, "cycle_days": 35.0}])
    expected = oracle.predict(floats)[0]
    shapes = [
        pd.DataFrame([{"crop": "basil", "temp_mean": 22, "cycle_days": 35}]),  # ints
        {"crop": "basil", "temp_mean": 22, "cycle_days": 35},  # one row
        [{"crop": "basil", "temp_mean": "22.0", "cycle_days": "35", "app_user": 7}],  # text
        {"crop": ["basil"], "temp_mean": [22], "cycle_days": [35.0]},  # columns
        pl.DataFrame({"crop": ["basil"], "temp_mean": [22], "cycle_days": [35]}),
    ]
    for inputs in shapes:
        assert oracle.predict(inputs)[0] == pytest.approx(expected), inputs
    log = logged(tmp_path, "oracle")
    assert log.height == 1 + len(shapes)
    assert log["temp_mean"].dtype == pl.Float64 and log["cycle_days"].to_list() == [35.0] * 6
    assert log["prediction"].to_list() == pytest.approx([expected] * 6)


def test_an_app_mistake_is_one_sentence_naming_column_and_row(models, tmp_path):
    oracle = load(models, "oracle", tmp_path)
    rows = [{"crop": "basil", "temp_mean": 22, "cycle_days": 35}] * 2
    cases = {
        "temp_mean (row 2): expected a number, found 'warm'": [
            rows[0],
            {**rows[1], "temp_mean": "warm"},
        ],
        "crop (row 1): expected text, found 3": [{**rows[0], "crop": 3}],
        "missing input(s) cycle_days": [{"crop": "basil", "temp_mean": 22}],
        "no rows to predict": pd.DataFrame(columns=["crop", "temp_mean", "cycle_days"]),
        "found str": "basil,22,35",
    }
    for said, inputs in cases.items():
        with pytest.raises(VertiflowError, match=said.replace("(", r"\(").replace(")", r"\)")):
            oracle.predict(inputs)
    # null is a missing value, as over HTTP; an id column of mixed kinds does not stop it
    nulls = [{**rows[0], "temp_mean": None, "app_id": 7}, {**rows[1], "app_id": "a7"}]
    assert len(oracle.predict(nulls)) == 2
    log = logged(tmp_path, "oracle")
    assert log["temp_mean"].null_count() == 1 and log["app_id"].to_list() == ["7", "a7"]


def test_classifier_probabilities_as_the_readme_says_and_logged(models, tmp_path):
    """README: "its probabilities are `load_model("classifier").predict_proba(...)`";
    the loaded model had no such method (AttributeError)."""
    classifier = load(models, "classifier", tmp_path)
    rows = [
        {"crop": "basil", "temp_mean": 26, "cycle_days": 38},
        {"crop": "lettuce", "temp_mean": "18.5", "cycle_days": 30},
    ]
    proba = classifier.predict_proba(rows)
    assert proba.shape == (2, 2) and np.allclose(proba.sum(axis=1), 1)
    grades = classifier.predict(rows)
    assert list(classifier.classes_[proba.argmax(axis=1)]) == list(grades)
    log = logged(tmp_path, "classifier")  # an app asking only for probabilities is seen
    assert log.height == 4 and log["prediction"].to_list() == [*grades, *grades]
    with pytest.raises(VertiflowError, match="no predict_proba"):
        load(models, "oracle", tmp_path).predict_proba(rows)


def test_a_crop_never_trained_on_is_predicted_with_a_warning_naming_it(models, tmp_path):
    """The Django view answered "crop 'tomato' ... never trained on"; in Python the same
    guess came back silently. Now an `UnseenCategoryWarning` an app can catch or refuse."""
    oracle = load(models, "oracle", tmp_path)
    row = {"crop": "basil", "temp_mean": 22, "cycle_days": 35}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a trained crop: no warning at all
        oracle.predict(row)
    rows = [{**row, "crop": "tomato"}, {**row, "crop": "tomato"}, row]
    with pytest.warns(serving.UnseenCategoryWarning) as caught:
        assert len(oracle.predict(rows)) == 3  # answered, as over HTTP
    (warning,) = caught
    said = str(warning.message)
    assert "oracle: crop 'tomato' (2 row(s)) was never trained on" in said, said
    assert "a guess from basil, lettuce" in said, said
    assert warning.filename == __file__  # points at the app's call, not at the loader
    assert warning.message.unseen == [serving.Unseen("crop", "tomato", 2, ("basil", "lettuce"))]
    classifier = load(models, "classifier", tmp_path)
    with pytest.warns(serving.UnseenCategoryWarning, match="classifier: crop 'kale'"):
        classifier.predict_proba([{**row, "crop": "kale"}])
    # an app that refuses guesses: an error before anything is predicted or logged
    before = logged(tmp_path, "oracle").height
    with warnings.catch_warnings():
        warnings.simplefilter("error", serving.UnseenCategoryWarning)
        with pytest.raises(serving.UnseenCategoryWarning):
            oracle.predict({**row, "crop": "tomato"})
    assert logged(tmp_path, "oracle").height == before


def test_an_infinite_value_is_refused_naming_column_and_row(models, tmp_path):
    """JSON's `Infinity` and an app's "inf" are numbers to Python: they reached the model
    and came back as scikit-learn's "Input X contains infinity" with no column or row."""
    oracle = load(models, "oracle", tmp_path)
    row = {"crop": "basil", "temp_mean": 22.0, "cycle_days": 35.0}
    cases = {
        "temp_mean (row 2): expected a finite number, found inf": [
            row,
            {**row, "temp_mean": float("inf")},
        ],
        "cycle_days (row 1): expected a finite number, found -inf": [{**row, "cycle_days": "-inf"}],
    }
    for said, inputs in cases.items():
        with pytest.raises(VertiflowError, match=said.replace("(", r"\(").replace(")", r"\)")):
            oracle.predict(inputs)
    assert not (tmp_path / "mon" / "predictions" / "oracle").exists()  # nothing logged


def test_a_missing_crop_is_predicted_with_a_warning_as_an_unseen_one_is(models, tmp_path):
    """A null crop is answered as a crop never trained on is (the encoder's zeros: the same
    guess), but silently: no warning in Python, no `warnings` entry in the Django view."""
    oracle = load(models, "oracle", tmp_path)
    row = {"crop": "basil", "temp_mean": 22, "cycle_days": 35}
    rows = [{**row, "crop": None}, {**row, "crop": float("nan")}, row]
    with pytest.warns(serving.UnseenCategoryWarning) as caught:
        answers = oracle.predict(rows)
    assert answers[0] == answers[1] == oracle.predict({**row, "crop": "tomato"})[0]
    said = str(caught[0].message)
    assert "oracle: crop missing (2 row(s)): the prediction is a guess from basil" in said, said
    assert caught[0].message.unseen == [serving.Unseen("crop", None, 2, ("basil", "lettuce"))]


def test_a_decimal_is_a_number_and_a_repeated_column_is_named(models, tmp_path):
    """Django's DecimalField and database drivers (NUMERIC) give `Decimal('21.5')`: it was
    refused as "expected a number"; a frame with a column twice ended in AttributeError
    ('DataFrame' object has no attribute 'tolist')."""
    from decimal import Decimal

    oracle = load(models, "oracle", tmp_path)
    row = {"crop": "basil", "temp_mean": 21.5, "cycle_days": 35.0}
    expected = oracle.predict(row)[0]
    decimals = {**row, "temp_mean": Decimal("21.5"), "cycle_days": Decimal(35)}
    assert oracle.predict(decimals)[0] == pytest.approx(expected)
    assert oracle.predict({**row, "temp_mean": Decimal("NaN")})[0] == pytest.approx(
        oracle.predict({**row, "temp_mean": None})[0]
    )
    twice = pd.concat([pd.DataFrame([row]), pd.DataFrame({"temp_mean": [22.0]})], axis=1)
    with pytest.raises(VertiflowError, match="oracle: column temp_mean appears 2 times"):
        oracle.predict(twice)
