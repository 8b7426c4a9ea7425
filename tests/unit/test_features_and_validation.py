"""Telemetry cleaning, aggregation, the time split and the validation gate, on small tables."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from vertiflow.data import dataset, validation
from vertiflow.data.features import summarise_telemetry
from vertiflow.data.schemas import SENSORS
from vertiflow.errors import DataError

BATCHES = pl.DataFrame({"batch_id": ["B1", "B2"], "crop": ["basil", "lettuce"]})


def telemetry(rows: list[dict]) -> pl.LazyFrame:
    base = {s: 1.0 for s in SENSORS}
    base.update(air_temp_internal=24.0, air_humidity=60.0, co2_level_ambient=800.0, water_ph=6.0)
    frame = pl.DataFrame([{**base, **r} for r in rows])
    return frame.with_columns(pl.col(s).cast(pl.Float64) for s in SENSORS).lazy()


def test_glitches_are_nulled_and_counted_dropouts_counted():
    rows = [
        {"batch_id": "B1", "air_temp_internal": 22.0, "light_intensity_ppfd": 400.0},
        {"batch_id": "B1", "air_temp_internal": 26.0, "light_intensity_ppfd": 0.0},
        {"batch_id": "B1", "air_temp_internal": 85.0, "light_intensity_ppfd": 400.0},  # spike
        {"batch_id": "B1", **{s: None for s in SENSORS}},  # dropout
        {"batch_id": "B2", "air_temp_internal": 18.0},
        {"batch_id": "B2", "water_temp": None},  # one probe's gap
        {"batch_id": "B2", "light_photoperiod": None},  # and one of a sensor not aggregated
    ]
    summary = summarise_telemetry(telemetry(rows), BATCHES)
    b1 = summary.features.filter(pl.col("batch_id") == "B1").row(0, named=True)
    assert b1["temp_mean"] == pytest.approx(24.0)  # the 85 C spike is excluded
    assert b1["n_readings"] == 4
    assert b1["dropout_fraction"] == pytest.approx(0.25)
    assert b1["photoperiod_h"] == pytest.approx(16.0)  # 2 of 3 valid readings lit
    assert b1["temp_out_of_band"] == pytest.approx(0.0)  # 22 and 26 C sit in basil's band
    assert summary.glitches["air_temp_internal"] == 1
    assert summary.dropout_rows == 1
    # a sensor's own gaps, apart from dropouts (counted above) and glitches (a value)
    assert summary.missing == {s: int(s in ("water_temp", "light_photoperiod")) for s in SENSORS}


def test_a_sensor_the_farm_does_not_have_gives_empty_features_not_nan():
    """An all-empty column (no dissolved-oxygen probe): its aggregates are missing values,
    which model selection leaves out; NaN from 0 / 0 crashed the spline candidates."""
    rows = [
        {"batch_id": b, "dissolved_oxygen": None, "water_temp": t}
        for b in ("B1", "B2")
        for t in (19.0, 21.0)
    ]
    features = summarise_telemetry(telemetry(rows), BATCHES).features
    assert features["dissolved_oxygen_mean"].null_count() == 2
    assert features["water_temp_mean"].to_list() == [20.0, 20.0]
    assert not any(features.select(pl.col(pl.Float64).is_nan().any()).row(0))


def test_telemetry_of_unknown_batches_is_left_out_and_counted():
    """Refused before, though such readings join to no harvest (a deleted batch's logger)."""
    rows = [{"batch_id": "B9"}, {"batch_id": "B9"}, {"batch_id": "B1"}, {"batch_id": "B0"}]
    summary = summarise_telemetry(telemetry(rows), BATCHES)
    assert summary.features["batch_id"].to_list() == ["B1"] and summary.rows == 1
    assert (summary.unknown.rows, summary.unknown.batches) == (3, 2)
    assert summary.unknown.examples == ["B0", "B9"]


def test_repeated_readings_count_once():
    """A reading sent twice weighed twice in its batch's means; with other values, the
    first in the file is kept."""
    at = dt.datetime(2024, 1, 1, 12)
    rows = [
        {"batch_id": "B1", "timestamp": at, "air_temp_internal": 20.0},
        {"batch_id": "B1", "timestamp": at, "air_temp_internal": 20.0},  # re-sent
        {"batch_id": "B1", "timestamp": at, "air_temp_internal": 29.0},  # other values
        {"batch_id": "B1", "timestamp": at + dt.timedelta(hours=1), "air_temp_internal": 22.0},
        {"batch_id": "B2", "timestamp": at, "air_temp_internal": 18.0},  # another batch
    ]
    summary = summarise_telemetry(telemetry(rows), BATCHES)
    b1 = summary.features.filter(pl.col("batch_id") == "B1").row(0, named=True)
    assert b1["temp_mean"] == pytest.approx(21.0) and b1["n_readings"] == 2
    assert (summary.repeats.exact_rows, summary.repeats.conflicting_rows) == (1, 1)
    assert summary.repeats.examples == ["B1 2024-01-01 12:00"]


def test_time_split_has_no_leakage():
    start = dt.datetime(2024, 1, 1)
    table = pl.DataFrame(
        {
            "batch_id": [f"B{i}" for i in range(100)],
            "start_date": [start + dt.timedelta(days=3 * i) for i in range(100)],
            "harvest_date": [start + dt.timedelta(days=3 * i + 35) for i in range(100)],
        }
    )
    train, test, purged = dataset.time_split(table, 0.2)
    assert test.height in (20, 21)  # the cut-off batch itself goes to test
    assert train["harvest_date"].max() < test["start_date"].min()
    assert train.height + test.height + purged == 100
    with pytest.raises(DataError, match="test_fraction"):
        dataset.time_split(table, 1.5)


def test_validation_budget_names_the_sensor_and_the_param():
    checks = {
        "batches": 1,
        "harvested_batches": 1,
        "unharvested_batches": 0,
        "batches_without_telemetry": 0,
        "telemetry_rows": 1000,
        "dropout_rows": 200,
        "glitches": {s: 0 for s in SENSORS} | {"water_ph": 50},
        "missing": {s: 0 for s in SENSORS} | {"dissolved_oxygen": 300},
        "train_rows": 0,
        "test_rows": 0,
        "purged_rows": 0,
    }
    budgets = validation.Budgets(0.01, 0.05, 0, 0, 0.05, 1.0)
    empty = pl.DataFrame(
        schema={
            "batch_id": pl.String,
            "quality_grade": pl.String,
            "start_date": pl.Datetime,
            "harvest_date": pl.Datetime,
        }
    )
    report = validation.validate(empty, empty, checks, budgets)
    assert not report["passed"]
    text = " ".join(report["problems"])
    assert "'water_ph': 5.00%" in text and "max_glitch_fraction" in text
    assert "20.00% of readings are dropouts" in text
    # reported, with no budget: a probe's gaps leave the models what there is
    assert report["telemetry"]["missing_fraction"]["dissolved_oxygen"] == 0.3


def test_a_reading_without_a_batch_id_is_left_out_and_counted_like_an_unknown_batch():
    """A module between cycles whose logger stays on writes readings of no batch: they
    join to no harvest, so they are counted, not a reason to stop the farm's run."""
    rows = [{"batch_id": "B1"}, {"batch_id": None}, {"batch_id": None}, {"batch_id": "B2"}]
    summary = summarise_telemetry(telemetry(rows), BATCHES)
    assert summary.unknown.rows == 2 and summary.unknown.examples == ["(empty)"]
    assert summary.features["batch_id"].to_list() == ["B1", "B2"]


def test_a_batch_with_one_reading_has_no_spread_not_a_missing_one():
    rows = [{"batch_id": "B1", "air_temp_internal": 22.0}, {"batch_id": "B2"}]
    rows.append({"batch_id": "B2", "air_temp_internal": 20.0})
    features = summarise_telemetry(telemetry(rows), BATCHES).features
    b1 = features.filter(pl.col("batch_id") == "B1").row(0, named=True)
    assert b1["temp_std"] == 0.0 and b1["ec_std"] == 0.0


def test_test_batches_of_a_crop_never_trained_on_are_reported():
    day = dt.datetime(2024, 1, 1)

    def table(crops: list[str], start: int) -> pl.DataFrame:
        return pl.DataFrame(
            {
                "batch_id": [f"B{start + i}" for i in range(len(crops))],
                "crop": crops,
                "quality_grade": ["PREMIUM", "REJECT"] * (len(crops) // 2),
                "start_date": [day + dt.timedelta(days=start + i) for i in range(len(crops))],
                "harvest_date": [day + dt.timedelta(days=start + i + 1) for i in range(len(crops))],
            }
        )

    checks = {
        "batches": 6,
        "harvested_batches": 6,
        "unharvested_batches": 0,
        "batches_without_telemetry": 0,
        "telemetry_rows": 100,
        "dropout_rows": 0,
        "glitches": {s: 0 for s in SENSORS},
        "missing": {s: 0 for s in SENSORS},
        "train_rows": 4,
        "test_rows": 2,
        "purged_rows": 0,
    }
    budgets = validation.Budgets(0.01, 0.05, 0, 0, 0.05, 1.0)
    report = validation.validate(
        table(["basil"] * 4, 0), table(["kale", "basil"], 10), checks, budgets
    )
    assert report["test_batches_of_untrained_crops"] == {"kale": 1}


def test_batches_with_days_of_telemetry_missing_are_counted():
    """A trial farm's loggers were down 3-5 days in some cycles: 72-84 % of the readings,
    and nothing said so (dropouts count empty rows, not rows that never came)."""
    frame = pl.DataFrame(
        {
            "batch_id": ["B3", "B1", "B2", "B4"],
            "n_readings": [96 * 28, 96 * 21, 2096, 96 * 25],  # B2: 78 %
            "cycle_days": [28.0, 21.0, 28.0, 25.0],
        }
    )
    gaps = validation.telemetry_gaps(frame.head(2), frame.tail(2))
    assert gaps == {"usual_readings_per_day": 96.0, "batches_with_gaps": 1, "gap_examples": ["B2"]}
