"""Where runs go, what they carry, and how models are built and saved."""

from __future__ import annotations

import mlflow
import numpy as np
import polars as pl
import pytest

from vertiflow import params, runtime
from vertiflow.errors import VertiflowError
from vertiflow.lifecycle import tracking
from vertiflow.tabular import modeling


def test_queued_experiment_copies_resolve_to_the_owning_checkout(tmp_path):
    inside = tmp_path / "repo" / ".dvc" / "tmp" / "exps" / "tmpab12cd" / "stages"
    inside.mkdir(parents=True)
    assert runtime.checkout_root(inside) == (tmp_path / "repo").resolve()
    assert runtime.checkout_root(tmp_path) == tmp_path.resolve()


def test_local_store_is_sqlite_in_the_checkout(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    assert tracking.tracking_uri() == f"sqlite:///{tmp_path.resolve() / '.mlflow' / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert tracking.tracking_uri() == "http://127.0.0.1:5000"


def test_dvc_experiment_env_becomes_tags(monkeypatch):
    monkeypatch.setenv("DVC_EXP_NAME", "sweep-1")
    monkeypatch.setenv("DVC_EXP_BASELINE_REV", "abc123")
    monkeypatch.setenv("VERTIFLOW_PIPELINE_RUN_ID", "run-7")
    tags = tracking.run_tags("train_oracle")
    assert tags["dvc_exp_name"] == "sweep-1" and tags["dvc_exp_baseline_rev"] == "abc123"
    assert tags["pipeline_run_id"] == "run-7" and tags["stage"] == "train_oracle"


def test_the_pipeline_run_is_running_while_a_stage_runs(tmp_path, monkeypatch):
    """Mid-sweep, a pipeline run showed FINISHED (its last stage's end) while its next
    stage was still running."""
    import mlflow

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("VERTIFLOW_PIPELINE_RUN_ID", "run-8")
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".mlflow").mkdir()
    for stage in ("simulate", "prepare"):
        with tracking.stage_run(stage, {}) as run:
            client = mlflow.MlflowClient()
            pipeline = client.get_run(run.data.tags["pipeline_mlflow_run_id"])
            assert pipeline.info.status == "RUNNING", stage
    assert client.get_run(pipeline.info.run_id).info.status == "FINISHED"


def test_flatten_gives_dotted_names():
    assert params.flatten({"a": {"b": 1, "c": {"d": [1, 2]}}}) == {"a.b": 1, "a.c.d": [1, 2]}
    # a crop added to the prices under the farm's name: MLflow refuses brackets in keys
    prices = {"prices": {"Roquette (Eruca)": 1, "pak choi/bok choy": 2}}
    assert params.flatten(prices) == {"prices.Roquette _Eruca_": 1, "prices.pak choi_bok choy": 2}


def _table(n: int = 300) -> pl.DataFrame:
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, n)
    return pl.DataFrame(
        {
            "crop": rng.choice(["basil", "lettuce"], n),
            "x": x,
            "y": np.exp(1 + x + rng.normal(0, 0.05, n)),
            "grade": np.where(x > 0.66, "PREMIUM", np.where(x > 0.33, "STANDARD", "REJECT")),
        }
    )


SECTION = {
    "estimator": "hist_gradient_boosting",
    "seed": 0,
    "features": {"categorical": ["crop"], "numeric": ["x"]},
    "hyperparams": {"max_iter": 50},
    "selection": {"folds": 3, "candidates": {}},  # unused with a fixed estimator
}


def test_bad_estimator_and_hyperparams_are_user_errors():
    with pytest.raises(VertiflowError, match="not one of"):
        modeling.train("regression", _table(), "y", {**SECTION, "estimator": "xgboost"})
    with pytest.raises(VertiflowError, match="hyperparams"):
        modeling.train("regression", _table(), "y", {**SECTION, "hyperparams": {"n_trees": 3}})
    with pytest.raises(VertiflowError, match="not columns"):
        modeling.train(
            "regression",
            _table(),
            "y",
            {**SECTION, "features": {"categorical": [], "numeric": ["z"]}},
        )


@pytest.mark.parametrize("estimator", ["hist_gradient_boosting", "ordinal_boosting"])
def test_saved_model_is_skops_with_pinned_requirements_and_predicts(
    tmp_path, monkeypatch, estimator
):
    monkeypatch.chdir(tmp_path)
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'm.db'}")
    section = {**SECTION, "estimator": estimator}
    model, x, seconds, _ = modeling.train("classification", _table(), "grade", section)
    assert seconds > 0
    with mlflow.start_run():
        modeling.save_and_log(model, tmp_path / "clf", x)
    mlmodel = (tmp_path / "clf" / "MLmodel").read_text()
    assert "skops" in mlmodel
    requirements = (tmp_path / "clf" / "requirements.txt").read_text()
    assert "scikit-learn==" in requirements and "skops==" in requirements
    loaded = mlflow.pyfunc.load_model(str(tmp_path / "clf"))
    answered = loaded.predict(x.head(5))
    assert list(answered) == list(model.predict(x.head(5)))
    # the signature declares what the served model answers: one grade per row
    outputs = loaded.metadata.get_output_schema().to_dict()
    assert [o["type"] for o in outputs] == ["string"] and isinstance(answered[0], str), outputs
    assert not (tmp_path / ".clf.saving").exists()
    if estimator == "ordinal_boosting":  # our class: the served environment needs the package
        assert "vertiflow==" in requirements


def test_log_target_regression_predicts_on_the_original_scale():
    model, x, _, _ = modeling.train("regression", _table(), "y", {**SECTION, "log_target": True})
    assert np.all(model.predict(x) > 1.0)


def test_a_saved_blend_loads_and_predicts_as_fitted(tmp_path, monkeypatch):
    """A blend is our own class: skops must trust it, and the served model needs vertiflow."""
    from vertiflow.tabular.blend import Blend

    monkeypatch.chdir(tmp_path)
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'm.db'}")
    spec = modeling.FeatureSpec(["crop"], ["x"])
    members = [
        modeling.build("classification", name, {}, spec, 0)
        for name in ("hist_gradient_boosting", "spline_ordinal")
    ]
    x = modeling.frame(_table(), spec)
    model = Blend(members, [spec.columns, spec.columns], weight=0.3).fit(x, _table()["grade"])
    with mlflow.start_run():
        modeling.save_and_log(model, tmp_path / "clf", x)
    assert "vertiflow==" in (tmp_path / "clf" / "requirements.txt").read_text()
    loaded = mlflow.sklearn.load_model(str(tmp_path / "clf"))
    assert np.allclose(loaded.predict_proba(x), model.predict_proba(x))
    served = mlflow.pyfunc.load_model(str(tmp_path / "clf"))
    assert list(served.predict(x.head(5))) == list(model.predict(x.head(5)))
