"""Model registry: champion/challenger promotion through real `dvc repro` runs and MLflow."""

from __future__ import annotations

import json
import shutil
import subprocess
import time

import mlflow
import numpy as np
import pytest
import yaml

from vertiflow.lifecycle import registry
from vertiflow.testing import run, set_params


def test_paired_bootstrap_separates_better_from_noise():
    rng = np.random.default_rng(0)
    champion = rng.gamma(2.0, 1.0, 500)
    same = registry.paired_bootstrap(champion, champion, 1000, 0.95, 0)
    assert same.ci_low == same.ci_high == 0.0
    noisy = registry.paired_bootstrap(champion, champion + rng.normal(0, 0.5, 500), 1000, 0.95, 0)
    assert noisy.ci_low < 0 < noisy.ci_high
    better = registry.paired_bootstrap(champion, champion * 0.8, 1000, 0.95, 0)
    assert better.ci_low > 0 and better.improvement == pytest.approx(0.2 * champion.mean())


NOISE = np.random.default_rng(0).gamma(2.0, 1.0, 80)  # per-row losses of a good model
SECTION = {"bootstrap_samples": 500, "confidence": 0.95, "seed": 0, "min_improvement": {}}


def _judge(tmp_path, units, rows, passes_gate=True, baseline=None):
    """Register the model `units` (a folder whose file says its units) through the gate,
    in a real MLflow store under tmp_path, scored on rows in `rows` units: a model of the
    other units is 50 times worse."""
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    folder = tmp_path / units
    folder.mkdir(exist_ok=True)
    (folder / "model.txt").write_text(units)

    def loss(uri):  # read back from the model's files, as registered
        with registry.local_folder(uri) as where:
            return NOISE * (1.0 if (where / "model.txt").read_text() == rows else 50.0)

    section = {**SECTION, "min_improvement": {"oracle": 0.0}}
    with mlflow.start_run():
        return registry.register_and_promote(
            "oracle", folder, "sklearn", {}, passes_gate, loss, section, {}, baseline
        )


def test_a_version_come_back_to_is_judged_again_and_wins_its_alias_back(tmp_path, monkeypatch):
    """Weights exported in kg instead of g: the kg model rightly beats the gram champion on
    kg rows. Once the export is fixed, the retrain is the gram model's very bytes: not
    registered again, but judged again on the fixed rows, so it takes the alias back (it
    once kept it with the kg model). The kg model is below the quality gate and still
    replaces a champion that is worse on those rows."""
    monkeypatch.chdir(tmp_path)
    assert _judge(tmp_path, "g", "g")["promoted"]
    kg = _judge(tmp_path, "kg", "kg", passes_gate=False)
    assert kg["promoted"] and "it fails the floors" in kg["reason"], kg
    fixed = _judge(tmp_path, "g", "g")
    assert fixed["version"] == 1 and fixed["reused"] and fixed["promoted"], fixed
    client = mlflow.MlflowClient()
    assert len(client.search_model_versions("name = 'oracle'")) == 2
    assert int(client.get_model_version_by_alias("oracle", "champion").version) == 1
    assert client.get_model_version("oracle", "1").tags["judged_again_run"]  # which run, last
    again = _judge(tmp_path, "g", "g")
    assert again["unchanged"] and not again["promoted"]
    worse = _judge(tmp_path, "kg", "g", passes_gate=False)  # below the gate, and worse
    assert not worse["promoted"] and worse["champion"] == 1
    assert int(client.get_model_version_by_alias("oracle", "challenger").version) == 2
    # The pipeline comes back to the champion's bytes: no candidate is open any more, so an
    # app shadowing `@challenger` must not keep scoring the rejected kg model.
    back = _judge(tmp_path, "g", "g")
    assert back["unchanged"] and back["challenger_dropped"] == 2, back
    assert "challenger" not in client.get_registered_model("oracle").aliases


def test_a_first_champion_must_clearly_beat_the_no_skill_baseline(tmp_path, monkeypatch):
    """A floor on accuracy (0.6) kept a farm's classifier from ever being champion where the
    best possible was 0.66; knowing only the crop is a bar that means the same anywhere."""
    monkeypatch.chdir(tmp_path)
    jitter = np.random.default_rng(1).normal(0.0, 1.0, NOISE.size)
    as_good = _judge(tmp_path, "g", "g", baseline=NOISE + jitter - jitter.mean())  # as good
    assert not as_good["promoted"] and "no-skill baseline" in as_good["reason"], as_good
    assert as_good["over_no_skill"]["ci_low"] <= 0
    better = _judge(tmp_path, "g", "g", baseline=NOISE * 1.5)
    assert better["reused"] and better["promoted"], better
    assert better["over_no_skill"]["ci_low"] > 0


def test_the_no_skill_baseline_knows_each_crops_mean_and_grade_shares():
    import polars as pl

    from vertiflow.tabular import evaluation

    train = pl.DataFrame(
        {
            "crop": ["a", "a", "b", "b"],
            "fresh_weight_g": [10.0, 20.0, 100.0, 100.0],
            "quality_grade": ["PREMIUM", "PREMIUM", "REJECT", "STANDARD"],
        }
    )
    test = pl.DataFrame(
        {
            "crop": ["a", "b", "new"],
            "fresh_weight_g": [15.0, 90.0, 57.5],
            "quality_grade": ["PREMIUM", "REJECT", "STANDARD"],
        }
    )
    losses = evaluation.no_skill_losses(train, test)
    assert losses["oracle"].tolist() == [0.0, 100.0, 0.0]  # a new crop: the farm's mean
    # the farm's shares P 1/2, S 1/4, R 1/4 smooth each crop's by one batch: a's PREMIUM
    # (2 + 1/2) / 3, b's REJECT (1 + 1/4) / 3; a new crop has the farm's STANDARD 1/4
    assert losses["classifier"] == pytest.approx(-np.log([2.5 / 3, 1.25 / 3, 1 / 4]))
    # A grade the farm never recorded costs the baseline what it costs a model trained on
    # the farm (which gives it 0): one such test batch alone kept a first champion out.
    never = train.filter(pl.col("quality_grade") != "REJECT")
    rejected = evaluation.no_skill_losses(never, test.head(2))["classifier"][1]
    model = evaluation.log_losses(np.array([[0.5, 0.5, 0.0]]), ["REJECT"])[0]
    assert rejected == pytest.approx(model)


def _aliases(repo, name):
    mlflow.set_tracking_uri(f"sqlite:///{repo / '.mlflow' / 'mlflow.db'}")
    client = mlflow.MlflowClient()
    model = client.get_registered_model(name)
    return {alias: int(v) for alias, v in model.aliases.items()}


def _repro_with_oracle_iterations(repo, iterations):
    set_params(repo, {"train_oracle.hyperparams.max_iter": iterations})
    run(["dvc", "repro"], repo, timeout=600)
    return json.loads((repo / "metrics" / "registry.json").read_text())["oracle"]


@pytest.mark.pipeline
def test_champion_moves_only_for_a_clearly_better_model(small_copy):
    repo = small_copy
    shutil.rmtree(repo / ".mlflow")  # a fresh registry
    # A classifier that takes the Oracle's yield holds the Oracle, and would be a new
    # version with each one: here only the Oracle is to change.
    set_params(repo, {"train_classifier.oracle_input": False})
    first = _repro_with_oracle_iterations(repo, 3)  # a weak first model, past the gate
    assert first["promoted"] and first["reason"].startswith("first version")
    assert _aliases(repo, "oracle") == {"champion": 1}

    better = _repro_with_oracle_iterations(repo, 100)
    assert better["promoted"], better
    assert better["comparison"]["ci_low"] > 0  # less squared error, beyond the noise
    assert _aliases(repo, "oracle") == {"champion": 2}

    worse = _repro_with_oracle_iterations(repo, 4)
    assert not worse["promoted"] and "not better" in worse["reason"]
    assert worse["comparison"]["ci_high"] < 0
    assert _aliases(repo, "oracle") == {"champion": 2, "challenger": 3}

    # A sweep that comes back to the first params trains version 1's bytes again: no
    # fourth version; version 1 is judged again, and is the challenger again.
    again = _repro_with_oracle_iterations(repo, 3)
    assert again["reused"] and again["version"] == 1 and not again["promoted"], again
    assert _aliases(repo, "oracle") == {"champion": 2, "challenger": 1}

    client = mlflow.MlflowClient()
    version = client.get_model_version("oracle", "3")
    assert version.tags["data_version"] and version.tags["git_commit"]
    assert float(version.tags["metric.r2"]) < float(
        client.get_model_version("oracle", "2").tags["metric.r2"]
    )
    # Models that did not change are not registered again.
    assert len(client.search_model_versions("name = 'oracle'")) == 3
    assert _aliases(repo, "classifier") == {"champion": 1}
    assert len(client.search_model_versions("name = 'classifier'")) == 1
    yolo = client.get_model_version_by_alias("YOLO-SkinDetection", "champion")
    assert yolo.tags["data_version"] != "None"


@pytest.mark.pipeline
def test_a_first_model_below_the_quality_gate_is_not_champion(small_copy):
    repo = small_copy
    shutil.rmtree(repo / ".mlflow")
    set_params(repo, {"register.gates.classifier_accuracy": 0.999})
    run(["dvc", "repro"], repo, timeout=600)
    decision = json.loads((repo / "metrics" / "registry.json").read_text())["classifier"]
    assert not decision["promoted"] and "register.gates" in decision["reason"]
    assert _aliases(repo, "classifier") == {"challenger": 1}
    # It holds the Oracle (oracle_input, the default): the version says which one.
    lock = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    oracle = next(o["md5"] for o in lock["train_oracle"]["outs"] if o["path"] == "models/oracle")
    assert mlflow.MlflowClient().get_model_version("classifier", "1").tags["oracle_version"] == (
        oracle
    )


@pytest.mark.pipeline
def test_loader_and_mlflow_models_serve_use_the_champion(small_repo, tmp_path):
    """`models:/oracle@champion` behind a real `mlflow models serve` on a loopback port."""
    import polars as pl
    import requests

    from vertiflow.lifecycle import serving
    from vertiflow.lifecycle.stack import free_port
    from vertiflow.tabular import modeling
    from vertiflow.testing import env

    store = f"sqlite:///{small_repo / '.mlflow' / 'mlflow.db'}"
    mlflow.set_tracking_uri(store)
    test = pl.read_parquet(small_repo / "data" / "prepared" / "test.parquet")
    oracle = serving.load_model("oracle", use_registry=True, log_root=tmp_path / "log")
    local = serving.load_model("oracle", use_registry=False, models_dir=small_repo / "models")
    x = modeling.frame(test, oracle.metadata.get_input_schema().input_names())
    expected = np.asarray(local.predict(x))
    assert np.array_equal(np.asarray(oracle.predict(x)), expected)
    logged = pl.read_parquet(next((tmp_path / "log" / "predictions" / "oracle").glob("*.parquet")))
    assert logged.height == len(x) and logged["model_version"][0] == oracle.version

    port = free_port()
    server = subprocess.Popen(
        [
            "mlflow",
            "models",
            "serve",
            "-m",
            "models:/oracle@champion",
            "--env-manager",
            "local",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        env={**env(), "MLFLOW_TRACKING_URI": store},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{url}/ping", timeout=2).ok:
                    break
            except requests.ConnectionError:
                time.sleep(1)
        head = x.head(20)
        ok = requests.post(f"{url}/invocations", json={"dataframe_split": head.to_dict("split")})
        assert ok.status_code == 200, ok.text
        assert np.allclose(ok.json()["predictions"], expected[:20])
        # the README's curl: the body MLflow saved with the model
        example = (small_repo / "models" / "oracle" / "serving_input_example.json").read_bytes()
        readme = requests.post(
            f"{url}/invocations", data=example, headers={"Content-Type": "application/json"}
        )
        assert readme.status_code == 200 and len(readme.json()["predictions"]) == 3, readme.text

        missing = head.drop(columns=["temp_dev"])
        bad = requests.post(
            f"{url}/invocations", json={"dataframe_split": missing.to_dict("split")}
        )
        assert 400 <= bad.status_code < 500 and "temp_dev" in bad.text

        typed = head.astype({"co2_mean": object})
        typed["co2_mean"] = "high"
        bad = requests.post(f"{url}/invocations", json={"dataframe_split": typed.to_dict("split")})
        assert 400 <= bad.status_code < 500 and "co2_mean" in bad.text
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_an_empty_registry_says_how_to_register(tmp_path, monkeypatch):
    """A fresh clone's store is empty (DVC restores evaluate instead of running it): the
    loader says so and names the command that registers the models."""
    from vertiflow.errors import VertiflowError
    from vertiflow.lifecycle import serving

    empty = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", empty)
    mlflow.set_tracking_uri(empty)  # an earlier test in this process may have set another
    with pytest.raises(VertiflowError, match=r"no alias 'champion'.*dvc repro -f -s evaluate"):
        serving.load_model("oracle", use_registry=True)


def test_each_decision_reads_as_one_sentence():
    """What evaluate prints and the pull-request report lists, for each record shape."""
    from vertiflow.lifecycle.report import decision_sentence

    cases = {
        "same files as version 3, the champion; nothing registered": {
            "name": "oracle",
            "version": 3,
            "unchanged": True,
            "champion": 3,
        },
        "version 1 registered; no champion yet: fails": {
            "name": "oracle",
            "version": 1,
            "promoted": False,
            "champion": None,
            "reason": "fails to beat the no-skill baseline",
        },
        "version 2 (same files, not registered again) and promoted to champion: judged": {
            "name": "oracle",
            "version": 2,
            "reused": True,
            "promoted": True,
            "champion": 2,
            "reason": "judged again: beats the champion",
        },
        "version 4 registered; champion stays version 2: not better": {
            "name": "oracle",
            "version": 4,
            "promoted": False,
            "champion": 2,
            "reason": "not better than the champion by more than the noise",
        },
        "(loss reduction +9,206, 95% interval [+7,237, +11,220] over 125 rows)": {
            "name": "oracle",
            "version": 2,
            "promoted": True,
            "champion": 2,
            "reason": "beats the champion",
            "comparison": {
                "improvement": 9206.2,
                "ci_low": 7237.4,
                "ci_high": 11220.0,
                "confidence": 0.95,
                "rows": 125,
            },
        },
    }
    for expected, record in cases.items():
        said = decision_sentence("oracle", record)
        assert expected in said and said.count("same files") <= 1, said
    assert registry.reaches(0.3, None) and registry.reaches(0.5, 0.5)
    assert not registry.reaches(0.4, 0.5) and not registry.reaches(None, 0.5)
