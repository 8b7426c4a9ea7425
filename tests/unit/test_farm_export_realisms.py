"""A farm's export as its systems write it, on the second world (`simple_model`): readings
of batches the batches table lacks, readings sent twice, month-first timestamps, and a
harvest sheet with a row for every batch, growing ones included."""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
import pytest

from vertiflow.data import dataset, dates, rawdata, validation
from vertiflow.errors import DataError
from vertiflow.farm import simple_model
from vertiflow.farm.simulator import SimConfig, write_farm

HARVEST_CELLS = ["harvest_date", "fresh_weight_g", "quality_grade", "energy_kwh"]


@pytest.fixture(scope="module")
def farm(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("simple_farm")
    config = SimConfig(
        racks=1,
        modules_per_rack=3,
        cycles_per_module=6,
        crops=simple_model.DEFAULT_CROPS,
        yield_noise=simple_model.YIELD_NOISE,
        world=simple_model.NAME,
    )
    write_farm(folder, config)
    return folder


@pytest.fixture(scope="module")
def prepared(farm) -> dataset.Prepared:
    return dataset.build(rawdata.load(farm), 0.25)


def _copy(farm: Path, tmp: Path) -> Path:
    for f in farm.iterdir():
        shutil.copy(f, tmp / f.name)
    return tmp


def _with_telemetry(farm: Path, tmp: Path, telemetry: pl.DataFrame) -> Path:
    _copy(farm, tmp)
    telemetry.write_parquet(tmp / "telemetry.parquet")
    return tmp


def _report(prepared: dataset.Prepared) -> dict:
    budgets = validation.Budgets(1, 1, 1, 1, 1, 1.0)
    return validation.validate(prepared.train, prepared.test, prepared.checks, budgets)


def test_readings_of_batches_not_in_batches_are_left_out_and_named(farm, prepared, tmp_path):
    """A logger keeps logging a module after its batch is deleted, or before it is entered:
    prepare stopped, naming the ids but not the rows, though such readings join to no
    harvest. Now they are left out, counted, and a few of their ids named."""
    telemetry = pl.read_parquet(farm / "telemetry.parquet")
    deleted = telemetry.head(30).with_columns(pl.lit("B-DELETED").alias("batch_id"))
    early = telemetry.tail(12).with_columns(pl.lit("B-NEW").alias("batch_id"))
    raw = _with_telemetry(farm, tmp_path, pl.concat([telemetry, deleted, early]))
    after = dataset.build(rawdata.load(raw), 0.25)
    assert after.train.equals(prepared.train) and after.test.equals(prepared.test)
    assert after.checks["telemetry_rows_of_unknown_batches"] == 42
    assert after.checks["unknown_batch_ids"] == {"count": 2, "examples": ["B-DELETED", "B-NEW"]}
    assert after.checks["telemetry_rows"] == prepared.checks["telemetry_rows"]
    telemetry_report = _report(after)["telemetry"]
    assert telemetry_report["rows_of_unknown_batches"] == 42
    assert telemetry_report["unknown_batch_ids"]["examples"] == ["B-DELETED", "B-NEW"]
    said = " ".join(dataset.notices(after.checks))
    assert "42 telemetry row(s) of 2 batch id(s) not in batches" in said and "B-DELETED" in said


@pytest.mark.filterwarnings("error::UserWarning")  # polars' "comparison with None" on no rows
def test_no_matching_batch_id_still_fails_the_gate_naming_the_ids(farm, tmp_path):
    """Ids that match nowhere (`1` for `B000001`) leave every batch without telemetry:
    the gate's budget still stops it, now naming the telemetry's ids (and nothing else
    is printed on the way: no polars warning about splitting no rows)."""
    telemetry = pl.read_parquet(farm / "telemetry.parquet")
    renamed = telemetry.with_columns(pl.col("batch_id").str.strip_chars_start("B0"))
    after = dataset.build(rawdata.load(_with_telemetry(farm, tmp_path, renamed)), 0.25)
    budgets = validation.Budgets(1, 1, 1, 1, 0.05, 1.0)
    report = validation.validate(after.train, after.test, after.checks, budgets)
    said = " ".join(report["problems"])
    assert not report["passed"] and "batch id(s) not in batches, e.g. 1, 10" in said, said


def test_repeated_readings_are_dropped_and_counted(farm, prepared, tmp_path):
    """2 % of readings sent twice weighed twice: on a larger export they moved a cycle's
    daily light integral by up to 0.27 mol/m2/d. Exact copies are dropped; a reading with
    the batch and timestamp of an earlier one but other values is dropped, the first kept."""
    telemetry = pl.read_parquet(farm / "telemetry.parquet")
    copies = telemetry.sample(fraction=0.02, seed=1)
    clashes = telemetry.sample(n=5, seed=2).with_columns(
        pl.col("light_intensity_ppfd") + 100.0, pl.col("air_temp_internal") + 3.0
    )
    mixed = pl.concat([telemetry, copies, clashes]).sort("batch_id", maintain_order=True)
    after = dataset.build(rawdata.load(_with_telemetry(farm, tmp_path, mixed)), 0.25)
    assert after.train.equals(prepared.train) and after.test.equals(prepared.test)
    assert after.checks["telemetry_repeated_rows"] == copies.height > 0
    assert after.checks["telemetry_conflicting_rows"] == 5
    first = clashes.sort("batch_id", "timestamp").row(0, named=True)
    example = f"{first['batch_id']} {first['timestamp']:%Y-%m-%d %H:%M}"
    assert after.checks["telemetry_conflict_examples"][0] == example
    report = _report(after)["telemetry"]
    assert (report["repeated_rows_dropped"], report["conflicting_rows_dropped"]) == (
        copies.height,
        5,
    )
    assert after.checks["telemetry_rows"] == prepared.checks["telemetry_rows"]


def test_the_first_of_two_differing_readings_is_kept_whatever_comes_first(farm, tmp_path):
    """The rule is the file's order, not the values: a corrected re-send placed first wins."""
    telemetry = pl.read_parquet(farm / "telemetry.parquet")
    batch = telemetry["batch_id"][0]
    hot = telemetry.filter(pl.col("batch_id") == batch).with_columns(
        pl.col("air_temp_internal") + 5.0
    )
    before = pl.concat([hot, telemetry])  # every reading of the batch: a hotter copy first
    after = dataset.build(rawdata.load(_with_telemetry(farm, tmp_path, before)), 0.25)
    table = pl.concat([after.train, after.test])
    clean = dataset.build(rawdata.load(farm), 0.25)
    original = pl.concat([clean.train, clean.test])
    row, base = (t.filter(pl.col("batch_id") == batch) for t in (table, original))
    assert row["temp_mean"][0] == pytest.approx(base["temp_mean"][0] + 5.0, abs=0.01)
    differing = hot.filter(pl.col("air_temp_internal").is_not_nan()).height  # a dropout
    assert after.checks["telemetry_conflicting_rows"] == differing  # stays the same: a copy
    assert after.checks["telemetry_repeated_rows"] == hot.height - differing


@pytest.mark.parametrize("written", ["%m/%d/%Y %H:%M", "%d/%m/%Y %H:%M", "%m/%d/%Y %H:%M:%S"])
def test_day_month_telemetry_timestamps_read_in_the_order_the_column_shows(
    farm, prepared, tmp_path, written
):
    """`03/25/2024 14:00` from a US logger was 'no date-time'; batches' and harvests'
    dates already read either order, decided by the values above 12."""
    _copy(farm, tmp_path)
    telemetry = pl.read_parquet(farm / "telemetry.parquet")
    telemetry.with_columns(pl.col("timestamp").dt.strftime(written)).write_csv(
        tmp_path / "telemetry.csv"
    )
    (tmp_path / "telemetry.parquet").unlink()
    after = dataset.build(rawdata.load(tmp_path), 0.25)
    assert after.train.equals(prepared.train) and after.test.equals(prepared.test)


def test_telemetry_timestamps_in_both_orders_are_named_with_their_rows(farm, tmp_path):
    _copy(farm, tmp_path)
    telemetry = pl.read_parquet(farm / "telemetry.parquet")
    text = telemetry.with_columns(pl.col("timestamp").dt.strftime("%d/%m/%Y %H:%M"))
    row = int(telemetry["timestamp"].dt.day().gt(12).arg_true()[0])  # 13th: day-first
    month_first = f"{telemetry['timestamp'][row]:%m/%d/%Y %H:%M}"
    text = text.with_columns(
        pl.when(pl.int_range(pl.len()) == row)
        .then(pl.lit(month_first))
        .otherwise(pl.col("timestamp"))
        .alias("timestamp")
    )
    text.write_csv(tmp_path / "telemetry.csv")
    (tmp_path / "telemetry.parquet").unlink()
    with pytest.raises(DataError) as err:
        rawdata.load(tmp_path)
    said = str(err.value)
    assert "telemetry.csv: column 'timestamp'" in said and "cannot be told apart" in said
    assert f"{month_first!r} (data row {row + 1}) has the month first" in said, said


def test_date_order_is_one_rule_for_tables_in_memory_and_streamed():
    column = pl.Series("d", ["03/04/2024", "03/25/2024 14:00", None, "2024-01-01"])
    assert dates.date_order(column) == "month-first"
    assert dates.column_date_order(column.to_frame().lazy(), "d") == "month-first"
    assert dates.date_order(pl.Series("d", ["25.03.2024", "03.04.2024"])) == "day-first"
    assert dates.date_order(pl.Series("d", ["03/04/2024"])) == "ambiguous"
    assert dates.date_order(pl.Series("d", ["2024-03-04"])) is None


def _harvest_sheet(farm: Path, tmp: Path, blank: dict[int, list[str]]) -> Path:
    """harvests.csv with a row per batch, the cells named in `blank` emptied per row."""
    _copy(farm, tmp)
    harvests = pl.read_parquet(farm / "harvests.parquet").with_columns(
        pl.col("harvest_date").dt.strftime("%Y-%m-%d")
    )
    row = pl.int_range(pl.len())
    for index, columns in blank.items():
        harvests = harvests.with_columns(
            pl.when(row == index).then(None).otherwise(pl.col(c)).alias(c) for c in columns
        )
    harvests.write_csv(tmp / "harvests.csv")
    (tmp / "harvests.parquet").unlink()
    return tmp


def test_harvest_rows_of_batches_still_growing_are_read_as_not_harvested(farm, tmp_path):
    """A harvest sheet with a row per batch leaves a growing batch's cells empty: such
    rows were refused as breaking 'not_nullable'."""
    n = pl.read_parquet(farm / "harvests.parquet").height
    growing = {n - 1: HARVEST_CELLS, n - 2: HARVEST_CELLS[:3]}  # energy so far, or none
    raw = rawdata.load(_harvest_sheet(farm, tmp_path, growing))
    assert raw.growing_rows == 2 and raw.harvests.height == n - 2
    after = dataset.build(raw, 0.25)
    assert after.checks["harvest_rows_still_growing"] == 2
    assert after.checks["unharvested_batches"] == 2
    assert _report(after)["batches"]["harvest_rows_still_growing"] == 2
    assert "2 harvests row(s) with every harvest cell empty" in " ".join(
        dataset.notices(after.checks)
    )


@pytest.mark.parametrize(
    ("blank", "said"),
    [
        (["fresh_weight_g"], "harvest_date '20"),  # a date but no yield
        (["harvest_date"], "harvest_date empty, fresh_weight_g '"),  # a yield but no date
    ],
)
def test_a_harvest_row_with_only_some_cells_empty_is_named(farm, tmp_path, blank, said):
    raw = _harvest_sheet(farm, tmp_path, {3: blank})
    with pytest.raises(DataError) as err:
        rawdata.load(raw)
    text = str(err.value)
    assert "harvests.csv: 1 row(s) have some of harvest_date, fresh_weight_g" in text
    assert "data rows 4;" in text and said in text and "still growing" in text, text
