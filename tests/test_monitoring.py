"""Drift monitoring: PSI and tests on simulated drift scenarios, the monitor command."""

from __future__ import annotations

import json
import warnings

import numpy as np
import polars as pl
import pytest
import yaml

from vertiflow.monitoring import drift, monitor
from vertiflow.testing import REPO, run

PARAMS = yaml.safe_load((REPO / "params.yaml").read_text())
COLUMNS = monitor.model_columns(PARAMS)
THRESHOLDS = drift.Thresholds(**PARAMS["monitor"])


@pytest.fixture(scope="module")
def reference() -> pl.DataFrame:
    """Training-distribution reference: a bigger simulated farm than the batches checked."""
    return monitor.simulated_batch("none", seed=1000, racks=20)


def test_psi_is_zero_for_identical_and_large_for_shifted_samples():
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, 5000)
    assert drift.psi_numeric(x, x) == pytest.approx(0, abs=1e-9)
    assert drift.psi_numeric(x, x + 1.0) > 0.25
    a = np.array(["basil"] * 60 + ["lettuce"] * 40)
    assert drift.psi_categorical(a, a) == pytest.approx(0, abs=1e-9)
    assert drift.psi_categorical(a, np.array(["kale"] * 100)) > 1


def test_quiet_on_fresh_batches_from_the_training_distribution(reference):
    """False-alarm rate over 20 seeds: under 5 %, i.e. at most 0 of 20 flagged batches."""
    alarms = [
        drift.detect(reference, monitor.simulated_batch("none", seed), COLUMNS, THRESHOLDS)
        for seed in range(20)
    ]
    flagged = [a["drifted"] for a in alarms if a["severity"] != "ok"]
    assert len(flagged) / len(alarms) < 0.05, flagged


WARMER_WATER = {"water_temp_mean", "dissolved_oxygen_mean"}


@pytest.mark.parametrize(
    ("scenario", "expected"),
    [
        ("co2_sensor", {"co2_mean"}),
        # warmer air warms the nutrient water, and warmer water holds less oxygen
        ("hot_summer", {"temp_mean", "temp_dev", *WARMER_WATER}),
        ("new_cultivar", {"temp_mean", "temp_dev", "ec_mean", "ec_dev", *WARMER_WATER}),
    ],
)
def test_each_scenario_is_flagged_at_its_features(reference, scenario, expected):
    """Critical at exactly the features the scenario shifts; every other input stays ok."""
    report = drift.detect(reference, monitor.simulated_batch(scenario, 7), COLUMNS, THRESHOLDS)
    assert report["severity"] == "critical"
    severity = {name: f["severity"] for name, f in report["features"].items()}
    assert set(severity) >= set(COLUMNS)  # every model input was checked
    assert {n for n, s in severity.items() if s == "critical"} == expected, severity
    assert all(s == "ok" for n, s in severity.items() if n not in expected), severity


def test_rising_missing_values_warn(reference):
    batch = monitor.simulated_batch("none", 3)
    holes = batch.with_columns(
        pl.when(pl.int_range(pl.len()) % 5 == 0).then(None).otherwise("ph_dev").alias("ph_dev")
    )
    report = drift.detect(reference, holes, COLUMNS, THRESHOLDS)
    assert report["features"]["ph_dev"]["severity"] == "warning"
    assert report["features"]["ph_dev"]["missing_current"] == pytest.approx(0.2, abs=0.01)


def test_prediction_log_round_trip(tmp_path):
    inputs = pl.DataFrame({"crop": ["basil", "lettuce"], "temp_dev": [0.5, -1.0]})
    monitor.log_predictions("oracle", "3", inputs, [41.0, 120.5], root=tmp_path)
    monitor.log_predictions("oracle", "4", inputs, [40.0, 121.0], root=tmp_path)
    log = monitor.read_predictions("oracle", root=tmp_path)
    assert log.height == 4
    assert set(log["model_version"]) == {"3", "4"}
    assert {"prediction", "logged_at", "crop", "temp_dev"} <= set(log.columns)
    assert not list(tmp_path.rglob("*.tmp"))


@pytest.mark.pipeline
def test_monitor_command_exits_2_on_critical_drift_and_0_when_quiet(small_copy, reference):
    # The small pipeline's own training table (~80 batches) is too small a reference for
    # the tests to have power at alpha 0.001; a full-size one stands in for it.
    reference.write_parquet(small_copy / "reference.parquet")
    ref = ["--reference", "reference.parquet"]
    quiet = run(["vertiflow", "monitor", "--scenario", "none", "--seed", "1", *ref], small_copy)
    assert "drift: ok" in quiet.stdout
    report = json.loads((small_copy / "metrics" / "monitoring.json").read_text())
    assert report["severity"] == "ok"
    assert {"predicted_yield_g", "predicted_grade"} <= set(report["features"])

    loud = run(["vertiflow", "monitor", "--scenario", "co2_sensor", *ref], small_copy, check=False)
    assert loud.returncode == 2, loud.stdout + loud.stderr
    assert "co2_mean" in loud.stdout
    alerts = list((small_copy / ".monitoring" / "alerts").glob("*-critical.json"))
    alerts += (small_copy / ".monitoring" / "alerts").glob("*-critical-oracle+classifier.json")
    assert len(alerts) == 1 and json.loads(alerts[0].read_text())["model"] != "yolo"
    markdown = (small_copy / "reports" / "monitoring" / "report.md").read_text()
    assert "CRITICAL" in markdown and "co2_mean.png" in markdown
    assert (small_copy / "reports" / "monitoring" / "co2_mean.png").stat().st_size > 1000
    history = (small_copy / ".monitoring" / "history.jsonl").read_text().splitlines()
    assert [json.loads(h)["severity"] for h in history] == ["ok", "critical"]

    bad = small_copy / "bad.csv"
    bad.write_text("crop,temp_dev\nbasil,1.0\n")
    proc = run(["vertiflow", "monitor", "--batch", str(bad), *ref], small_copy, check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "lacks column(s)" in proc.stderr

    # An app logs what it sends the served Oracle: that model's inputs, not the classifier's
    import mlflow.sklearn

    from vertiflow.tabular.modeling import frame

    oracle = mlflow.sklearn.load_model(str(small_copy / "models" / "oracle"))
    sent = monitor.simulated_batch("none", seed=2).select(list(oracle.feature_names_in_))
    answers = oracle.predict(frame(sent, oracle.feature_names_in_))
    monitor.log_predictions("oracle", "1", sent, answers, root=small_copy / ".monitoring")
    logged = run(["vertiflow", "monitor", "--from-log", "oracle", *ref], small_copy, check=False)
    assert logged.returncode == 0 and "drift: ok" in logged.stdout, logged.stderr

    # A farm's next export, as it comes (raw folder): prepared as `prepare` does
    from vertiflow.farm.simulator import SimConfig, write_farm

    write_farm(
        small_copy / "next_export",
        SimConfig(seed=3, racks=2, modules_per_rack=4, cycles_per_module=5),
    )
    export = run(["vertiflow", "monitor", "--batch", "next_export", *ref], small_copy, check=False)
    assert export.returncode == 0 and "drift: ok" in export.stdout, export.stderr
    report = json.loads((small_copy / "metrics" / "monitoring.json").read_text())
    assert report["rows_current"] == 2 * 4 * 5  # every batch: no time split, none purged

    # A crop never trained on warns: a pass by default, a failure with --fail-on warning
    # (the scheduled workflow's setting: it fails on any alert)
    tomato = sent.with_columns(pl.lit("tomato").alias("crop")).head(5)
    monitor.log_predictions("oracle", "1", tomato, answers[:5], root=small_copy / ".monitoring")
    warned = run(["vertiflow", "monitor", "--from-log", "oracle", *ref], small_copy, check=False)
    assert warned.returncode == 0 and "drift: warning in crop" in warned.stdout, warned.stderr
    strict = ["vertiflow", "monitor", "--from-log", "oracle", "--fail-on", "warning", *ref]
    failed = run(strict, small_copy, check=False)
    assert failed.returncode == 2 and "warning-oracle.json" in failed.stdout, failed.stderr


def test_a_logged_request_with_text_or_null_does_not_stop_the_check(reference, tmp_path):
    """One app request with a null (logged as text) broke `monitor --from-log` for good:
    the merged log's column became text and the check ended in a TypeError."""
    batch = monitor.simulated_batch("none", 5).select(COLUMNS)
    monitor.log_predictions("oracle", "1", batch, np.zeros(batch.height), root=tmp_path)
    odd = batch.head(1).with_columns(pl.lit("not a number").alias("temp_mean"))
    monitor.log_predictions("oracle", "1", odd, [0.0], root=tmp_path)
    log = monitor.read_predictions("oracle", root=tmp_path)
    assert log["temp_mean"].dtype == pl.String  # as the app left it
    report = drift.detect(reference, log, COLUMNS, THRESHOLDS)
    temp = report["features"]["temp_mean"]
    assert temp["missing_current"] == pytest.approx(1 / log.height, abs=1e-6)
    assert report["severity"] == "ok", report["drifted"]


def test_a_crop_never_trained_on_is_named():
    """An app asked about 'tomato': answered without a word, and the chi-squared p of 4e-6
    stayed 'ok' (its PSI under the warning level)."""
    rng = np.random.default_rng(0)
    reference = pl.DataFrame({"crop": rng.choice(["basil", "lettuce"], 2000)})
    current = pl.DataFrame({"crop": ["tomato"] * 3 + list(rng.choice(["basil", "lettuce"], 97))})
    report = drift.detect(reference, current, ["crop"], THRESHOLDS)
    crop = report["features"]["crop"]
    assert crop["severity"] == "warning" and crop["unseen"] == {"tomato": 3}
    assert "new: tomato (3 rows)" in monitor.markdown(monitor._stamped(report, THRESHOLDS), {})


def test_a_logged_null_crop_or_text_number_still_gets_its_report_and_alert(tmp_path):
    """An app sent one row with crop null (the Oracle answers it) among rows of a new
    crop: `vertiflow monitor --from-log oracle` found the drift, then ended in a
    traceback drawing the crop chart (None == 'basil'), before report.md and the alert."""
    rng = np.random.default_rng(0)
    reference = pl.DataFrame(
        {"crop": rng.choice(["basil", "lettuce"], 500), "temp_mean": rng.normal(22, 1, 500)}
    )
    current = pl.DataFrame(
        {"crop": ["tomato"] * 40 + [None], "temp_mean": ["30.5"] * 40 + ["warm"]}
    )
    for name in ("crop", "temp_mean"):
        monitor.plot_feature(reference[name], current[name], tmp_path / f"{name}.png")
        assert (tmp_path / f"{name}.png").stat().st_size > 1000


def test_a_feature_whose_values_stopped_is_drawn_without_numpy_warnings(tmp_path):
    """A farm without its dissolved-oxygen probe now: `vertiflow monitor` printed numpy's
    "RuntimeWarning: invalid value encountered in divide" drawing an empty histogram."""
    reference = pl.Series("dissolved_oxygen_mean", np.random.default_rng(0).normal(8, 1, 500))
    for current in (pl.Series("dissolved_oxygen_mean", [None] * 40, pl.Float64), reference[:0]):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            monitor.plot_feature(reference, current, tmp_path / "do.png")
            monitor.plot_feature(current, reference, tmp_path / "do_new.png")
        assert (tmp_path / "do.png").stat().st_size > 1000


def test_a_move_away_from_a_constant_reference_is_scored():
    """Every training image was 128 px wide: the deciles made one bin and 640 px scored
    PSI 0 (KS p 1.6e-57, severity ok)."""
    assert drift.psi_numeric(np.full(500, 128.0), np.full(50, 640.0)) > 1
    assert drift.psi_numeric(np.full(500, 128.0), np.full(50, 128.0)) == pytest.approx(0)


def test_a_feature_empty_on_both_sides_is_not_drift_and_the_report_is_strict_json():
    """A farm of crops without optima (empty `*_dev` features) or without a dissolved-oxygen
    probe: every check, even of the training data against itself, was CRITICAL with
    PSI `Infinity` (not JSON), so a scheduled monitor failed on every run."""
    rng = np.random.default_rng(0)
    empty = pl.Series([None] * 200, dtype=pl.Float64)
    reference = pl.DataFrame({"temp_mean": rng.normal(22, 1, 200), "temp_dev": empty})
    current = pl.DataFrame({"temp_mean": rng.normal(22, 1, 100), "temp_dev": empty[:100]})
    report = monitor._stamped(
        drift.detect(reference, current, ["temp_mean", "temp_dev"], THRESHOLDS), THRESHOLDS
    )
    assert report["severity"] == "ok", report["features"]["temp_dev"]
    assert report["features"]["temp_dev"]["note"] == "no values on either side"
    json.dumps(report, allow_nan=False)
    assert "| temp_dev | ok | - | - | - | no values on either side |" in monitor.markdown(
        report, {}
    )

    # a probe that stopped reporting: the models were trained on its values
    gone = current.with_columns(temp_mean=pl.lit(None, dtype=pl.Float64))
    dead = drift.detect(reference, gone, ["temp_mean"], THRESHOLDS)["features"]["temp_mean"]
    assert dead["severity"] == "critical" and dead["psi"] is None
    # a probe added since training: nothing the models use, so no alarm
    added = drift.detect(
        reference.with_columns(temp_dev=empty),
        current.with_columns(temp_dev=pl.lit(1.0)),
        ["temp_dev"],
        THRESHOLDS,
    )
    assert (
        added["severity"] == "ok"
        and "no values in training" in added["features"]["temp_dev"]["note"]
    )


def test_monitor_from_log_reads_a_window_and_a_quiet_one_is_not_an_error(tmp_path):
    """`--since` limits the check to recent predictions (the whole history diluted a new
    drift); a window or log with too few predictions exits 3 with a notice (a quiet
    period is no fault), and a bad --since is one clear error."""
    root = tmp_path / "mon"
    batch = monitor.simulated_batch("none", 5).select(COLUMNS)
    monitor.log_predictions("oracle", "1", batch, np.zeros(batch.height), root=root)
    cmd = ["vertiflow", "monitor", "--params", str(REPO / "params.yaml"), "--root", str(root)]

    quiet = run([*cmd, "--from-log", "oracle", "--since", "2099-01-01"], tmp_path, check=False)
    assert quiet.returncode == 3, quiet.stdout + quiet.stderr
    assert f"nothing to check: {root}/predictions/oracle: no predictions logged" in quiet.stderr
    assert f"({batch.height} earlier ones)" in quiet.stderr

    none = run([*cmd, "--from-log", "yolo", "--since", "6h"], tmp_path, check=False)
    assert none.returncode == 3 and "no logged predictions for 'yolo'" in none.stderr

    monitor.log_predictions("classifier", "1", batch.head(5), ["A"] * 5, root=root)
    few = run([*cmd, "--from-log", "classifier", "--since", "1h"], tmp_path, check=False)
    assert few.returncode == 3 and "5 prediction(s) logged for 'classifier'" in few.stderr

    bad = run([*cmd, "--from-log", "oracle", "--since", "6 hours"], tmp_path, check=False)
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert "--since '6 hours': expected a duration" in bad.stderr
    alone = run([*cmd, "--scenario", "none", "--since", "6h"], tmp_path, check=False)
    assert alone.returncode == 1 and "use it with --from-log" in alone.stderr
