"""The README's bring-your-own-data steps, followed literally, on a farm export of a crop
the built-in agronomy does not know (arugula, grown by the second world, with a 7-batch
spinach trial beside it), run `dvc repro` to the end with no params edit beyond raw_dir.
The export is written as farms write them: CSV as French Excel saves it (`;` and decimal
commas), numbered batches, UTC dates, the crop under the farm's own name (capitals,
spaces, brackets), no REJECT grade (rejected batches never recorded), no
dissolved-oxygen probe (an empty column), no energy per batch, and a file named
`Harvests.CSV`."""

from __future__ import annotations

import json

import mlflow
import polars as pl
import pytest

from vertiflow.farm import simple_model
from vertiflow.farm.simulator import SimConfig, write_farm
from vertiflow.testing import SMALL, clone_checkout, run, set_params

CROP = "Roquette (Eruca sativa)"  # a crop name as a farm writes it: capitals, spaces, brackets


@pytest.mark.pipeline
def test_readme_steps_on_an_export_of_another_crop(tmp_path):
    repo = clone_checkout(tmp_path / "repo")
    set_params(repo, SMALL)  # the CI-sized pipeline; the farm's params stay as shipped
    farm = repo / "data" / "farm"
    crops = {"arugula": 0.95, "spinach": 0.05}  # spinach: a trial, 7 batches
    cfg = SimConfig(world=simple_model.NAME, crops=crops, racks=2, modules_per_rack=4)
    write_farm(farm, SimConfig(**{**cfg.__dict__, "cycles_per_module": 16}))
    for known_only_to_simulators in ("truth.parquet", "world.json"):
        (farm / known_only_to_simulators).unlink()  # a real farm's export has neither
    batches, harvests = (pl.read_parquet(farm / f"{t}.parquet") for t in ("batches", "harvests"))
    batches = batches.with_columns(pl.col("crop").replace({"arugula": CROP}))  # farm's name
    harvests = harvests.filter(pl.col("quality_grade") != "REJECT").drop("energy_kwh")
    number = {b: i + 1 for i, b in enumerate(batches["batch_id"])}
    for name, table, date, file in (
        ("batches", batches, "start_date", "batches.csv"),
        ("harvests", harvests, "harvest_date", "Harvests.CSV"),  # as a Windows tool names it
    ):
        (farm / f"{name}.parquet").unlink()
        table.with_columns(
            pl.col("batch_id").replace_strict(number),
            pl.col(date).dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
            pl.col(pl.Float64).cast(pl.String).str.replace(r"\.", ","),  # French Excel
        ).write_csv(farm / file, separator=";")
    telemetry = pl.read_parquet(farm / "telemetry.parquet")
    telemetry.with_columns(
        pl.col("batch_id").replace_strict(number),
        pl.lit(None, pl.Float64).alias("dissolved_oxygen"),  # a farm with no oxygen probe
    ).write_parquet(farm / "telemetry.parquet")

    run(["dvc", "add", "data/farm"], repo)
    run(["git", "add", "data/farm.dvc", "data/.gitignore"], repo)
    params = (repo / "params.yaml").read_text()
    (repo / "params.yaml").write_text(params.replace("raw_dir: data/raw", "raw_dir: data/farm"))
    repro = run(["dvc", "repro"], repo, timeout=900)
    said = (repro.stdout + repro.stderr).splitlines()  # no optimum in params for its crops
    assert any(CROP in line and "no entry in prepare.crop_optima" in line for line in said)

    cortex = json.loads((repo / "metrics" / "cortex.json").read_text())
    assert list(cortex) == [CROP]  # the crop came from the data; the trial crop has no recipe
    skipped = json.loads((repo / "models" / "cortex" / "skipped.json").read_text())
    assert list(skipped) == ["spinach"] and "min_training_batches" in skipped["spinach"]
    assert 25 <= cortex[CROP]["cycle_days"] <= 31  # and its cycle length too
    low, high = (
        cortex[CROP]["predicted_margin_low"],
        cortex[CROP]["predicted_margin_high"],
    )
    assert low <= cortex[CROP]["predicted_margin_per_m2_day"] <= high
    assert "regret" not in cortex[CROP]  # no truth for a real farm
    crops = json.loads((repo / "data" / "prepared" / "crops.json").read_text())
    assert crops[CROP]["optimum"] is None  # absolute climate features
    # MLflow refuses brackets in keys: the crop's part of keys and file names is sanitised
    assert (repo / "metrics" / "cortex_plots" / "trace_Roquette _Eruca sativa_.csv").is_file()
    train = pl.read_parquet(repo / "data" / "prepared" / "train.parquet")
    assert train["energy_kwh"].null_count() == train.height  # metered per building: none
    validation = json.loads((repo / "metrics" / "validation.json").read_text())
    assert validation["grades_absent_from_training"] == ["REJECT"]
    assert validation["features_absent"] == ["dissolved_oxygen_mean"]
    classifier = json.loads((repo / "metrics" / "classifier.json").read_text())
    assert 0 < classifier["accuracy"] <= 1 and 0.5 <= classifier["roc_auc_ovr"] <= 1

    # The pipeline run holds this farm's figures only. Logged after prepare, the built-in
    # data's metrics files (not yet rewritten) had left their gaps to the Bayes limits and
    # their crops' keys in it, beside this farm's own accuracy: MLflow keeps a metric once
    # logged, so those files wait until their stages run.
    client = mlflow.MlflowClient(f"sqlite:///{repo / '.mlflow' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("vertiflow-models")
    (pipeline,) = client.search_runs(
        [experiment.experiment_id], "tags.run_kind = 'pipeline'", max_results=5
    )
    keys = set(pipeline.data.metrics)
    assert {"classifier_accuracy", "oracle_r2"} <= keys
    tabular = ("oracle_", "classifier_", "cortex_")  # YOLO's images are still the built-in
    stale = {k for k in keys if k.startswith(tabular) and k.endswith("_gap")}
    assert not stale | {k for k in keys if "basil" in k or "lettuce" in k}, keys
    assert pipeline.data.tags["stages_ran"].split(",")[:2] == ["evaluate", "optimise_cortex"]
