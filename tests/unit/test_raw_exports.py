"""A farm's raw tables as exports write them: dates (text that is no date, UTC offsets,
harvests in the future), numbered ids, grades in any case, a sensor the farm lacks."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import polars as pl
import pytest

from vertiflow.data import csvfiles, dataset, rawdata
from vertiflow.errors import DataError
from vertiflow.farm.simulator import SimConfig, write_farm


@pytest.fixture(scope="module")
def farm(tmp_path_factory) -> Path:
    """A tiny simulated export with batches and harvests as CSV (dates as text)."""
    folder = tmp_path_factory.mktemp("farm")
    write_farm(folder, SimConfig(racks=1, modules_per_rack=2, cycles_per_module=4))
    for name in ("batches", "harvests"):
        pl.read_parquet(folder / f"{name}.parquet").write_csv(folder / f"{name}.csv")
        (folder / f"{name}.parquet").unlink()
    return folder


def _copy(farm: Path, tmp: Path) -> None:
    for f in farm.iterdir():
        (tmp / f.name).write_bytes(f.read_bytes())


def _copy_with(farm: Path, tmp: Path, table: str, column: str, rows: list[int], value) -> Path:
    _copy(farm, tmp)
    frame = pl.read_csv(tmp / f"{table}.csv", infer_schema_length=0)  # all text
    index = pl.int_range(pl.len())
    frame = frame.with_columns(
        pl.when(index.is_in(rows)).then(pl.lit(value)).otherwise(pl.col(column)).alias(column)
    )
    frame.write_csv(tmp / f"{table}.csv")
    return tmp


@pytest.mark.parametrize(
    ("table", "column"), [("batches", "start_date"), ("harvests", "harvest_date")]
)
def test_a_column_of_text_that_is_no_date_is_named_with_its_rows(farm, tmp_path, table, column):
    # Every cell bad: polars' format inference raised a ComputeError traceback here.
    n = pl.read_csv(farm / f"{table}.csv").height
    raw = _copy_with(farm, tmp_path, table, column, list(range(n)), "not-a-date")
    with pytest.raises(DataError) as err:
        rawdata.load(raw)
    text = str(err.value)
    assert f"{table}.csv" in text and f"'{column}'" in text
    assert "data rows 1, 2, 3" in text and "'not-a-date'" in text


def test_one_bad_date_among_good_ones_is_named(farm, tmp_path):
    raw = _copy_with(farm, tmp_path, "batches", "start_date", [4], "2023-13-45")
    with pytest.raises(DataError, match=r"batches.csv: column 'start_date'.*data rows 5"):
        rawdata.load(raw)


def test_date_only_and_space_separated_iso_dates_parse(farm, tmp_path):
    raw = _copy_with(farm, tmp_path, "batches", "start_date", [0], "2015-03-01")
    raw = _copy_with(raw, tmp_path, "harvests", "harvest_date", [0], "2015-04-05 10:30")
    data = rawdata.load(raw)
    assert data.batches["start_date"][0] == dt.datetime(2015, 3, 1)
    assert data.harvests["harvest_date"][0] == dt.datetime(2015, 4, 5, 10, 30)


def test_dates_with_a_utc_offset_become_utc_times(farm, tmp_path):
    # One offset cell among plain ones: the column stays text and the cell was refused.
    raw = _copy_with(farm, tmp_path, "batches", "start_date", [0], "2015-03-01T14:00:00+02:00")
    raw = _copy_with(raw, tmp_path, "harvests", "harvest_date", [0], "2015-04-05T10:30:00Z")
    data = rawdata.load(raw)
    assert data.batches["start_date"][0] == dt.datetime(2015, 3, 1, 12)
    assert data.harvests["harvest_date"][0] == dt.datetime(2015, 4, 5, 10, 30)


@pytest.mark.parametrize("written", ["%d/%m/%Y %H:%M", "%m/%d/%Y %H:%M:%S", "%d.%m.%Y"])
def test_spreadsheet_dates_read_in_the_order_the_column_shows(farm, tmp_path, written):
    """25/03/2024 and 03/25/2024 both occur in exports; a day above 12 tells which field is
    the day, for the whole column (polars alone reads 03/04 as 3 April whatever follows)."""
    reference = rawdata.load(farm)
    for name, column in (("batches", "start_date"), ("harvests", "harvest_date")):
        dates = getattr(reference, name)[column]
        assert (dates.dt.day() > 12).any() and (dates.dt.day() <= 12).any()  # both kinds
        if "%H" not in written:
            reference = _at_midnight(reference, name, column)
        table = getattr(reference, name).with_columns(pl.col(column).dt.strftime(written))
        table.write_csv(tmp_path / f"{name}.csv")
    (tmp_path / "telemetry.parquet").write_bytes((farm / "telemetry.parquet").read_bytes())
    raw = rawdata.load(tmp_path)
    assert raw.batches.equals(reference.batches) and raw.harvests.equals(reference.harvests)


def _at_midnight(data: rawdata.RawData, name: str, column: str) -> rawdata.RawData:
    table = getattr(data, name).with_columns(pl.col(column).dt.truncate("1d"))
    setattr(data, name, table)
    return data


def test_dates_whose_day_and_month_cannot_be_told_apart_are_refused(farm, tmp_path):
    raw = _copy_with(farm, tmp_path, "batches", "start_date", list(range(100)), "03/04/2015")
    with pytest.raises(DataError) as err:
        rawdata.load(raw)
    text = str(err.value)
    assert "batches.csv: column 'start_date'" in text and "'03/04/2015'" in text
    assert "ISO 8601" in text


def test_numeric_ids_are_read_as_labels(farm, tmp_path):
    """Exports often number their batches, racks and modules (polars reads them as ints)."""
    ids = {b: i + 1 for i, b in enumerate(pl.read_csv(farm / "batches.csv")["batch_id"])}
    for f in farm.iterdir():
        if f.suffix not in (".csv", ".parquet"):
            (tmp_path / f.name).write_bytes(f.read_bytes())
            continue
        frame = pl.read_csv(f) if f.suffix == ".csv" else pl.read_parquet(f)
        if "batch_id" in frame.columns:
            frame = frame.with_columns(pl.col("batch_id").replace_strict(ids))
        if f.name == "batches.csv":
            frame = frame.with_columns(pl.int_range(pl.len()).alias("rack_id"))
        getattr(frame, "write_csv" if f.suffix == ".csv" else "write_parquet")(tmp_path / f.name)
    data = rawdata.load(tmp_path)
    assert data.batches["batch_id"].dtype == pl.String and data.batches["batch_id"][0] == "1"
    assert data.batches["rack_id"].dtype == pl.String
    assert data.harvests["batch_id"].dtype == pl.String
    assert set(data.harvests["batch_id"]) <= set(data.batches["batch_id"])


def test_harvests_dated_in_the_future_are_refused(farm, tmp_path):
    future = (dt.datetime.now() + dt.timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%S")
    raw = _copy_with(farm, tmp_path, "harvests", "harvest_date", [1, 2], future)
    with pytest.raises(DataError) as err:
        rawdata.load(raw)
    text = str(err.value)
    assert "harvests.csv" in text and "'harvest_date'" in text and "future" in text
    assert "data rows 2, 3" in text


def test_the_built_in_farm_ends_before_today():
    """The default simulated farm (120 cycles per module) must pass the future check."""
    from vertiflow import params

    p = params.load(Path(__file__).resolve().parents[2] / "params.yaml")["simulate"]
    start = dt.datetime.fromisoformat(p["start_date"])
    longest = p["cycles_per_module"] * (45 + 1) + 21  # cycle + 3 days, turnaround, stagger
    assert start + dt.timedelta(days=longest) < dt.datetime.now()


def test_a_farm_without_a_sensor_is_told_how_to_say_so(farm, tmp_path):
    _copy(farm, tmp_path)
    telemetry = pl.read_parquet(farm / "telemetry.parquet")
    telemetry.drop("dissolved_oxygen").write_parquet(tmp_path / "telemetry.parquet")
    with pytest.raises(DataError, match=r"'dissolved_oxygen'.*add its column with no values"):
        rawdata.load(tmp_path)
    telemetry.drop("co2_level_ambient").write_parquet(tmp_path / "telemetry.parquet")
    with pytest.raises(DataError, match=r"co2_level_ambient measure\(s\) what a recipe sets"):
        rawdata.load(tmp_path)  # but not for a sensor that measures the recipe
    empty = telemetry.with_columns(pl.lit(None, pl.Float64).alias("dissolved_oxygen"))
    empty.write_parquet(tmp_path / "telemetry.parquet")
    rawdata.load(tmp_path)  # the advice works


def test_a_renamed_column_is_named_with_what_came_instead(farm, tmp_path):
    """The error named the missing `air_humidity`, not the `relative_humidity` found."""
    _copy(farm, tmp_path)
    telemetry = pl.read_parquet(farm / "telemetry.parquet")
    renamed = telemetry.rename({"air_humidity": "relative_humidity"})
    renamed.write_parquet(tmp_path / "telemetry.parquet")
    with pytest.raises(DataError, match=r"'air_humidity'.* Found instead: 'relative_humidity'"):
        rawdata.load(tmp_path)
    harvests = pl.read_csv(farm / "harvests.csv").rename({"fresh_weight_g": "weight"})
    harvests.write_csv(tmp_path / "harvests.csv")
    with pytest.raises(DataError, match=r"'fresh_weight_g'.* Found instead: 'weight'"):
        rawdata.load(tmp_path)


def test_grades_are_read_whatever_their_case(farm, tmp_path):
    raw = _copy_with(farm, tmp_path, "harvests", "quality_grade", [0], "Premium")
    raw = _copy_with(raw, tmp_path, "harvests", "quality_grade", [1], " standard ")
    data = rawdata.load(raw)
    assert data.harvests["quality_grade"].head(2).to_list() == ["PREMIUM", "STANDARD"]
    bad = _copy_with(raw, tmp_path, "harvests", "quality_grade", [2], "gold")
    with pytest.raises(DataError, match=r"harvests.csv: column 'quality_grade'.*GOLD"):
        rawdata.load(bad)


def test_spreadsheet_exports_of_comma_decimal_locales_read_as_the_same_data(farm, tmp_path):
    """Excel in French or German saves `;`-separated CSV with `1,5` for 1.5, often with a
    BOM; headers may be cased and padded. The same farm must come out cell for cell."""
    reference = rawdata.load(farm)
    tables = {n: pl.read_csv(farm / f"{n}.csv") for n in ("batches", "harvests")}
    tables["telemetry"] = pl.read_parquet(farm / "telemetry.parquet")
    for name, frame in tables.items():
        frame = frame.with_columns(pl.col(pl.Float64).cast(pl.String).str.replace(r"\.", ","))
        if name == "telemetry":  # a few cells padded, one a padded NA, one padded blank
            ph = [v for v in frame["water_ph"]]
            ph[1], ph[2], ph[3] = f"  {ph[1]} ", " NA ", "   "
            frame = frame.with_columns(pl.Series("water_ph", ph))
        frame = frame.rename({c: f" {c.title()}" for c in frame.columns})
        frame.write_csv(tmp_path / f"{name}.csv", separator=";")
        text = (tmp_path / f"{name}.csv").read_bytes()
        (tmp_path / f"{name}.csv").write_bytes(b"\xef\xbb\xbf" + text.replace(b"\n", b"\r\n"))
    raw = rawdata.load(tmp_path)
    assert raw.batches.equals(reference.batches) and raw.harvests.equals(reference.harvests)
    ph, expected = raw.telemetry.collect()["water_ph"], reference.telemetry.collect()["water_ph"]
    assert ph[1] == expected[1] and ph[2] is None and ph[3] is None
    assert ph.slice(4).equals(expected.slice(4))


def test_header_names_that_differ_only_in_case_are_named(farm, tmp_path):
    _copy(farm, tmp_path)
    harvests = pl.read_csv(farm / "harvests.csv")
    harvests.with_columns(pl.col("energy_kwh").alias("Energy_kWh ")).write_csv(
        tmp_path / "harvests.csv"
    )
    with pytest.raises(DataError, match=r"harvests.csv: the header names 'energy_kwh', 'Energy"):
        rawdata.load(tmp_path)


@pytest.mark.parametrize(
    ("sample", "expected"),
    [
        ("a,b\n1.5,2\n", (",", False)),
        ("a;b\n1.5;2\n", (";", False)),
        ("a;b\nx;1,5\n", (";", True)),
        ("a\tb\n-0,25\t2\n", ("\t", True)),
        ("a;b\n2024-01-01 10:00;3\n", (";", False)),
        ("id;v\n3,1;1.5\n4;2.25\n", (";", False)),  # an id with a comma is no vote
    ],
)
def test_csv_dialect_from_the_header_and_the_numbers(sample, expected):
    assert csvfiles.csv_dialect(sample) == expected


def test_na_cells_are_missing_readings_and_other_text_is_named(farm, tmp_path):
    """`NA`, `N/A`, `null` mean no reading (pandas reads them so); a `-` is named by row."""
    _copy(farm, tmp_path)
    telemetry = pl.read_parquet(farm / "telemetry.parquet")
    cells = [None if v is None else str(v) for v in telemetry["water_ph"]]
    cells[0], cells[5], cells[9] = "NA", "N/A", "null"
    marked = telemetry.with_columns(pl.Series("water_ph", cells))
    (tmp_path / "telemetry.parquet").unlink()
    marked.write_csv(tmp_path / "telemetry.csv")
    read = rawdata.load(tmp_path).telemetry.collect()
    missing = rawdata.load(farm).telemetry.collect()["water_ph"].is_null()
    expected = missing | pl.int_range(len(cells), eager=True).is_in([0, 5, 9])
    assert read["water_ph"].is_null().equals(expected)
    cells[7] = "-"
    marked.with_columns(pl.Series("water_ph", cells)).write_csv(tmp_path / "telemetry.csv")
    with pytest.raises(DataError, match=r"'water_ph' holds text: '-' \(data row 8\)"):
        rawdata.load(tmp_path)


def test_numbers_padded_with_spaces_are_numbers(farm, tmp_path):
    _copy(farm, tmp_path)
    telemetry = pl.read_parquet(farm / "telemetry.parquet")
    (tmp_path / "telemetry.parquet").unlink()
    padded = telemetry.with_columns(pl.format("  {} ", pl.col("water_ph")).alias("water_ph"))
    padded.write_csv(tmp_path / "telemetry.csv")  # fixed-width exports pad their fields
    batches = pl.read_csv(farm / "batches.csv")
    batches.with_columns(
        pl.format(" {} ", pl.col("ec_setpoint")).alias("ec_setpoint"),
        pl.format("  {}", pl.col("cycle_days")).alias("cycle_days"),
        pl.format("  {} ", pl.col("crop")).alias("crop"),  # labels are padded too
    ).write_csv(tmp_path / "batches.csv")
    read, reference = rawdata.load(tmp_path), rawdata.load(farm)
    assert read.telemetry.collect()["water_ph"].equals(reference.telemetry.collect()["water_ph"])
    assert read.batches.equals(reference.batches)


def test_a_batch_whose_logger_recorded_nothing_is_left_out_within_budget(farm, tmp_path):
    """A logger down for a whole cycle stopped the pipeline; now the batch is left out and
    counted, and only a share beyond validate.max_batches_without_telemetry fails the gate."""
    from vertiflow.data import dataset, validation

    _copy(farm, tmp_path)
    telemetry = pl.read_parquet(farm / "telemetry.parquet")
    lost = sorted(set(telemetry["batch_id"]))[:1]
    telemetry.filter(~pl.col("batch_id").is_in(lost)).write_parquet(tmp_path / "telemetry.parquet")
    full = dataset.build(rawdata.load(farm), 0.2)
    prepared = dataset.build(rawdata.load(tmp_path), 0.2)
    kept = pl.concat([prepared.train, prepared.test])["batch_id"]
    assert lost[0] not in kept.to_list() and prepared.checks["batches_without_telemetry"] == 1
    assert kept.len() + prepared.checks["purged_rows"] + 1 == full.checks["harvested_batches"]
    one_in = 1 / prepared.checks["harvested_batches"]
    for budget, passes in ((one_in * 1.01, True), (one_in * 0.99, False)):
        gate = validation.validate(
            prepared.train,
            prepared.test,
            prepared.checks,
            validation.Budgets(1, 1, 1, 1, budget, 1.0),
        )
        said = " ".join(gate["problems"])
        assert ("max_batches_without_telemetry" not in said) == passes, said


def test_weights_exported_in_kilograms_fail_the_gate_naming_the_crop(farm):
    """A kg export (a lettuce of 0.15) passed every range check and R2, which ignores
    scale; its model became champion and Cortex optimised a crop that weighs nothing."""
    from vertiflow.data import dataset, validation

    prepared = dataset.build(rawdata.load(farm), 0.2)
    budgets = validation.Budgets(1, 1, 1, 1, 1, min_median_fresh_weight_g=1.0)
    grams = validation.validate(prepared.train, prepared.test, prepared.checks, budgets)
    assert grams["passed"], grams["problems"]
    kilos = [
        t.with_columns(pl.col("fresh_weight_g") / 1000) for t in (prepared.train, prepared.test)
    ]
    gate = validation.validate(*kilos, prepared.checks, budgets)
    said = " ".join(gate["problems"])
    assert not gate["passed"] and "min_median_fresh_weight_g" in said and "kilograms" in said
    for crop in prepared.train["crop"].unique():
        assert f"crop '{crop}'" in said
    # an export that turned to kg lately: only the latest batches, the test split
    lately = validation.validate(prepared.train, kilos[1], prepared.checks, budgets)
    said = " ".join(lately["problems"])
    assert not lately["passed"] and "in the test batches" in said, said
    # A crop that light on purpose (microgreens) gets its own bar; the others keep theirs.
    light, *others = sorted(prepared.train["crop"].unique())
    assert others
    assert f"{{default: 1.0, {light}: " in said, said
    own = validation.Budgets(1, 1, 1, 1, 1, {"default": 1.0, light.upper(): 0.001})
    said = " ".join(validation.validate(*kilos, prepared.checks, own)["problems"])
    assert f"crop '{light}'" not in said and all(f"crop '{c}'" in said for c in others), said


def test_csv_ids_keep_their_leading_zeros_as_in_parquet(farm, tmp_path):
    """`0001` in a CSV is a label: read as the number 1 it no longer matched the same id
    in a Parquet table of the same export."""
    ids = {b: f"{i:04d}" for i, b in enumerate(pl.read_csv(farm / "batches.csv")["batch_id"])}
    for f in farm.iterdir():
        if f.suffix not in (".csv", ".parquet"):
            (tmp_path / f.name).write_bytes(f.read_bytes())
            continue
        frame = pl.read_csv(f) if f.suffix == ".csv" else pl.read_parquet(f)
        frame = frame.with_columns(pl.col("batch_id").replace_strict(ids))
        getattr(frame, "write_csv" if f.suffix == ".csv" else "write_parquet")(tmp_path / f.name)
    data = rawdata.load(tmp_path)  # telemetry.parquet holds "0000", ... as text
    assert data.batches["batch_id"][0] == "0000"
    assert set(data.harvests["batch_id"]) <= set(data.batches["batch_id"])


def test_a_sensor_logged_in_whole_numbers_at_first_reads_as_decimals(farm, tmp_path):
    """Type inference sees the first 10,000 rows: CO2 logged as `800` there and `800.4`
    further down was refused as 'could not parse 800.4 as i64'."""
    _copy(farm, tmp_path)
    telemetry = pl.read_parquet(farm / "telemetry.parquet")
    telemetry = pl.concat([telemetry, telemetry])  # read only: repeats are no matter here
    assert telemetry.height > 10_500
    whole = pl.int_range(pl.len()) < 10_500
    co2 = pl.col("co2_level_ambient").fill_nan(None)  # dropouts stay empty cells
    telemetry = telemetry.with_columns(
        pl.when(whole)
        .then(co2.round(0).cast(pl.Int64).cast(pl.String))
        .otherwise(co2.round(1).cast(pl.String))
    )
    (tmp_path / "telemetry.parquet").unlink()
    telemetry.write_csv(tmp_path / "telemetry.csv")
    data = rawdata.load(tmp_path)
    co2 = data.telemetry.select("co2_level_ambient").collect()["co2_level_ambient"]
    assert co2.dtype == pl.Float64
    assert (co2.tail(100) != co2.tail(100).round(0)).any()  # the decimals were kept


def test_pandas_category_columns_read_as_labels(farm, tmp_path):
    """pandas writes its `category` dtype to Parquet as a dictionary: crop and grade were
    refused as 'found Categorical'."""
    _copy(farm, tmp_path)
    for name, column in (("batches", "crop"), ("harvests", "quality_grade")):
        frame = pl.read_csv(farm / f"{name}.csv")
        frame.with_columns(pl.col(column).cast(pl.Categorical)).write_parquet(
            tmp_path / f"{name}.parquet"
        )
        (tmp_path / f"{name}.csv").unlink()
    data = rawdata.load(tmp_path)
    assert data.batches["crop"].dtype == pl.String
    assert data.harvests["quality_grade"].dtype == pl.String


def test_a_probe_installed_partway_through_passes_the_gate_and_is_reported(farm, tmp_path):
    """Dissolved oxygen measured from the fourth batch on: the gate refused the earlier
    batches' empty values ('not_nullable'); the models take missing values."""
    from vertiflow import params
    from vertiflow.data import dataset, validation

    _copy(farm, tmp_path)
    first = sorted(pl.read_csv(farm / "batches.csv")["batch_id"])[:3]
    telemetry = pl.read_parquet(farm / "telemetry.parquet")
    before = pl.col("batch_id").is_in(first)
    telemetry.with_columns(
        pl.when(before).then(None).otherwise(pl.col("dissolved_oxygen")).alias("dissolved_oxygen")
    ).write_parquet(tmp_path / "telemetry.parquet")
    p = params.load(Path(__file__).resolve().parents[2] / "params.yaml")
    prepared = dataset.build(rawdata.load(tmp_path), p["prepare"]["test_fraction"], {})
    budgets = validation.Budgets(**{**p["validate"], "min_train_rows": 1, "min_test_rows": 1})
    report = validation.validate(prepared.train, prepared.test, prepared.checks, budgets)
    assert report["passed"], report["problems"]
    assert report["features_absent"] == []
    share = report["features_partial"]["dissolved_oxygen_mean"]
    assert 0 < share < 1


def test_a_crop_spelt_with_another_case_keeps_its_optimum_and_prices(farm, tmp_path):
    """`Basil` in the export, `basil` in params: its optimum was silently dropped (the *_dev
    features became absolute) and Cortex priced it at the default."""
    from vertiflow import cortex, params
    from vertiflow.data import dataset, features

    _copy(farm, tmp_path)
    batches = pl.read_csv(farm / "batches.csv")
    batches.with_columns(pl.col("crop").str.replace("basil", "Basil")).write_csv(
        tmp_path / "batches.csv"
    )
    p = params.load(Path(__file__).resolve().parents[2] / "params.yaml")
    optima = features.optima_from_params(p["prepare"]["crop_optima"])
    prepared = dataset.build(rawdata.load(tmp_path), p["prepare"]["test_fraction"], optima)
    assert prepared.crops["Basil"]["optimum"] is not None
    rows = pl.concat([prepared.train, prepared.test]).filter(pl.col("crop") == "Basil")
    assert rows["temp_out_of_band"].null_count() == 0
    assert (rows["temp_dev"] != rows["temp_mean"]).all()
    econ = cortex.Economics.from_params(p["optimise_cortex"])
    assert list(econ.grade_prices("Basil")) == list(econ.grade_prices("basil"))
    assert econ.plants("Basil") == econ.plants("basil")


def test_readings_dated_outside_their_batch_are_left_out_and_counted(farm, tmp_path):
    """A logger that keeps tagging the last batch while the module is cleaned, or a clock
    years off: such readings were averaged into the batch's climate."""
    from vertiflow.data import dataset

    def prepared(folder: Path) -> dataset.Prepared:
        return dataset.build(rawdata.load(folder), 0.25, {})

    before = prepared(farm)
    _copy(farm, tmp_path)
    telemetry = pl.read_parquet(farm / "telemetry.parquet")
    batch = before.train["batch_id"][0]
    stray = telemetry.filter(pl.col("batch_id") == batch).with_columns(
        pl.col("timestamp") + pl.duration(days=400), pl.lit(35.0).alias("air_temp_internal")
    )
    pl.concat([telemetry, stray]).write_parquet(tmp_path / "telemetry.parquet")
    after = prepared(tmp_path)
    first = [t.train.row(0, named=True) for t in (before, after)]
    assert first[0]["batch_id"] == batch and first[0]["temp_mean"] == first[1]["temp_mean"]
    assert after.checks["telemetry_rows_outside_batch_days"] == stray.height > 0
    assert after.checks["telemetry_rows"] == before.checks["telemetry_rows"]


def test_a_date_typed_in_the_other_order_is_named_with_its_row(farm, tmp_path):
    """One `02/14/2021` in a day-first column: the error showed the column's first date."""
    n = pl.read_csv(farm / "batches.csv").height
    raw = _copy_with(farm, tmp_path, "batches", "start_date", list(range(n)), "15/01/2020")
    raw = _copy_with(raw, tmp_path, "batches", "start_date", [5], "02/14/2021")
    with pytest.raises(DataError) as err:
        rawdata.load(raw)
    text = str(err.value)
    assert "'02/14/2021' (data row 6) has the month first" in text
    assert "'15/01/2020' (data row 1) has the day first" in text


def test_telemetry_mixing_times_with_and_without_an_offset_is_refused_by_row(farm, tmp_path):
    """Two loggers' exports pasted together: the column was called no date-time at all."""
    _copy(farm, tmp_path)
    telemetry = pl.read_parquet(farm / "telemetry.parquet")
    zoned = pl.col("timestamp").dt.strftime("%Y-%m-%dT%H:%M:%S+02:00")
    bare = pl.col("timestamp").dt.strftime("%Y-%m-%d %H:%M:%S")
    first = pl.int_range(pl.len()) < 3
    telemetry = telemetry.with_columns(pl.when(first).then(zoned).otherwise(bare))
    telemetry.write_parquet(tmp_path / "telemetry.parquet")
    with pytest.raises(DataError) as err:
        rawdata.load(tmp_path)
    text = str(err.value)
    assert "column 'timestamp' mixes date-times with a UTC offset and without one" in text
    assert "3 with one" in text and "(data row 1)" in text and "(data row 4)" in text


def test_a_utc_offset_without_seconds_parses(farm, tmp_path):
    raw = _copy_with(farm, tmp_path, "batches", "start_date", [0], "2010-01-01T10:00+02:00")
    assert rawdata.load(raw).batches["start_date"][0] == dt.datetime(2010, 1, 1, 8, 0)


def test_telemetry_timestamps_stored_as_text_in_parquet_parse(farm, tmp_path):
    _copy(farm, tmp_path)
    telemetry = pl.read_parquet(farm / "telemetry.parquet")
    text = pl.col("timestamp").dt.strftime("%Y-%m-%dT%H:%M:%S+00:00")
    telemetry.with_columns(text).write_parquet(tmp_path / "telemetry.parquet")
    read = rawdata.load(tmp_path).telemetry.select("timestamp").collect()["timestamp"]
    assert read.to_list() == telemetry["timestamp"].to_list()
    telemetry.with_columns(pl.lit("soon").alias("timestamp")).write_parquet(
        tmp_path / "telemetry.parquet"
    )
    with pytest.raises(DataError, match=r"'timestamp' holds text that is no date-time \('soon'"):
        rawdata.load(tmp_path)


def test_the_row_of_a_cell_that_cannot_be_read_is_named(farm, tmp_path):
    """polars names the column of a cell it cannot parse, not its row: an unquoted comma
    in a batch's cell (a field too many), or text deep in a telemetry file, which shows
    only while streaming it."""
    _copy(farm, tmp_path)
    lines = (tmp_path / "batches.csv").read_text().splitlines()
    lines[1] = lines[1].rsplit(",", 1)[0]  # a field short: polars reads it, the cell empty
    lines[3] = lines[3].replace(",", ",R01 rack B,", 1)
    (tmp_path / "batches.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"batches\.csv: .* Data row 3 has 14 fields where "):
        rawdata.load(tmp_path)

    _copy(farm, tmp_path)
    (tmp_path / "telemetry.parquet").unlink()
    telemetry = pl.read_parquet(farm / "telemetry.parquet")
    pl.concat([telemetry, telemetry]).write_csv(tmp_path / "telemetry.csv")  # past 10,000
    lines = (tmp_path / "telemetry.csv").read_text().splitlines()
    cells = lines[12_000].split(",")
    lines[12_000] = ",".join([*cells[:4], '"n/a?"', *cells[5:]])  # quoted, as some write
    (tmp_path / "telemetry.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(
        DataError, match=r"telemetry\.csv: .*n/a\?.*'air_humidity'.* Data row 12000\."
    ):
        dataset.build(rawdata.load(tmp_path), 0.2)


def test_a_telemetry_row_with_a_field_too_many_is_refused_not_shifted(farm, tmp_path):
    """An unquoted decimal comma (`21,7` for 21.7) in a comma-separated telemetry file makes
    a row one field too long. polars checks a row's fields only when every column is read,
    and no feature reads module_id: the row's values moved one column along (temperature
    21, humidity 7, ...), the last one dropped, and it was aggregated without a word."""
    _copy(farm, tmp_path)
    (tmp_path / "telemetry.parquet").unlink()
    telemetry = pl.read_parquet(farm / "telemetry.parquet")
    columns = telemetry.columns
    assert "module_id" in columns  # read by no feature
    telemetry.write_csv(tmp_path / "telemetry.csv")
    lines = (tmp_path / "telemetry.csv").read_text().splitlines()
    cells = lines[3_000].split(",")
    at = columns.index("air_temp_internal")
    cells[at] = cells[at].replace(".", ",", 1) if "." in cells[at] else cells[at] + ",5"
    lines[3_000] = ",".join(cells)
    (tmp_path / "telemetry.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(
        DataError,
        match=rf"telemetry\.csv: .* Data row 3000 has {len(columns) + 1} fields where the "
        rf"header has {len(columns)}",
    ):
        dataset.build(rawdata.load(tmp_path), 0.2)


def test_an_export_without_energy_per_batch_prepares(farm, tmp_path):
    """Many farms meter energy per building, not per module: an export without
    energy_kwh (or with it empty) was refused, though nothing trains on it."""
    _copy(farm, tmp_path)
    harvests = pl.read_csv(farm / "harvests.csv")
    harvests.drop("energy_kwh").write_csv(tmp_path / "harvests.csv")
    reference = dataset.build(rawdata.load(farm), 0.2)
    prepared = dataset.build(rawdata.load(tmp_path), 0.2)
    assert prepared.train["energy_kwh"].null_count() == prepared.train.height
    assert prepared.train.drop("energy_kwh").equals(reference.train.drop("energy_kwh"))
    blank = harvests.with_columns(
        pl.when(pl.int_range(pl.len()) < 3).then(None).otherwise("energy_kwh").alias("energy_kwh")
    )
    blank.write_csv(tmp_path / "harvests.csv")
    assert rawdata.load(tmp_path).harvests["energy_kwh"].null_count() == 3


def test_table_files_are_found_whatever_their_case_and_others_are_named(farm, tmp_path):
    """A Windows export writes `Harvests.CSV`; a spreadsheet user leaves `batches.xlsx`."""
    _copy(farm, tmp_path)
    (tmp_path / "harvests.csv").rename(tmp_path / "Harvests.CSV")
    assert rawdata.load(tmp_path).harvests.equals(rawdata.load(farm).harvests)
    (tmp_path / "batches.csv").rename(tmp_path / "batches.xlsx")
    with pytest.raises(DataError, match=r"no batches.parquet or batches.csv.*Found batches.xlsx"):
        rawdata.load(tmp_path)


def test_telemetry_exported_in_monthly_files_is_told_to_concatenate(farm, tmp_path):
    """A logger exporting a file a month was told to "save it as telemetry.csv"."""
    _copy(farm, tmp_path)
    telemetry = pl.read_parquet(tmp_path / "telemetry.parquet")
    (tmp_path / "telemetry.parquet").unlink()
    half = telemetry.height // 2
    telemetry.head(half).write_parquet(tmp_path / "telemetry_2024-01.parquet")
    telemetry.tail(telemetry.height - half).write_parquet(tmp_path / "telemetry_2024-02.parquet")
    with pytest.raises(
        DataError, match=r"Found 2 files like it .*concatenate them, with one header row"
    ):
        rawdata.load(tmp_path)


def test_long_form_telemetry_is_told_how_to_pivot(farm, tmp_path):
    """IoT platforms export one row per sensor reading; the advice must work as given."""
    _copy(farm, tmp_path)
    wide = pl.read_parquet(farm / "telemetry.parquet")
    sensors = [c for c in wide.columns if c not in ("batch_id", "module_id", "timestamp")]
    long = wide.unpivot(sensors, index=["batch_id", "timestamp"], variable_name="Sensor")
    long = pl.concat([long, long.head(3)])  # a reading sent twice, as loggers do
    long.write_csv(tmp_path / "telemetry.csv")
    (tmp_path / "telemetry.parquet").unlink()
    with pytest.raises(DataError, match=r"long-form telemetry.*pivot\(on='Sensor'") as error:
        rawdata.load(tmp_path)
    advice = re.search(r"(pl\.read_csv\(path\)\.pivot\(.*\))\.$", str(error.value)).group(1)
    path = tmp_path / "telemetry.csv"
    eval(advice, {"pl": pl, "path": path}).write_csv(path)  # the advice, as given
    assert rawdata.load(tmp_path).telemetry.collect().height == wide.height  # the twice-sent once


@pytest.mark.parametrize(
    ("sensor", "factor", "setpoint"),
    [
        ("air_humidity", 0.01, "humidity_setpoint"),  # relative humidity as a fraction, 0..1
        ("light_intensity_ppfd", 0.22, "ppfd_setpoint"),  # W/m2, not umol/m2/s
    ],
)
def test_a_sensor_logged_in_another_unit_than_its_setpoint_is_refused(
    farm, tmp_path, sensor, factor, setpoint
):
    """Humidity logged as 0.65 (inside 0..100) passed every bound: the models trained on a
    humidity 100 times smaller than the recipes Cortex then fed them, and only Cortex
    stopped, blaming its params' bounds."""
    _copy(farm, tmp_path)
    telemetry = pl.read_parquet(farm / "telemetry.parquet")
    telemetry.with_columns(pl.col(sensor) * factor).write_parquet(tmp_path / "telemetry.parquet")
    with pytest.raises(DataError) as err:
        dataset.build(rawdata.load(tmp_path), 0.25)
    text = str(err.value)
    assert "telemetry.parquet" in text and f"'{sensor}'" in text and f"'{setpoint}'" in text
    assert re.search(r"\d+ of \d+ batches", text) and "B0000" in text  # how many, which


def test_readings_near_their_setpoints_pass_the_unit_check(farm, tmp_path):
    """The built-in farm's climate wanders around its setpoints (HVAC, drift, noise); a
    cycle whose CO2 doser failed (ambient air under a setpoint 3.5 times higher) is a real
    cycle, not a unit: a farm's whole history must not be refused for it."""
    prepared = dataset.build(rawdata.load(farm), 0.25)
    assert prepared.train.height > 0
    _copy(farm, tmp_path)
    telemetry = pl.read_parquet(farm / "telemetry.parquet")
    failed = telemetry["batch_id"].unique().sort()[0]
    telemetry.with_columns(
        pl.when(pl.col("batch_id") == failed)
        .then(pl.col("co2_level_ambient") / 3.5)
        .otherwise(pl.col("co2_level_ambient"))
        .alias("co2_level_ambient")
    ).write_parquet(tmp_path / "telemetry.parquet")
    built = dataset.build(rawdata.load(tmp_path), 0.25)
    rows = pl.concat([built.train, built.test])
    assert rows.filter(pl.col("batch_id") == failed)["co2_mean"][0] < 450


def test_crop_names_that_differ_only_in_case_or_accents_are_one_crop(farm, tmp_path):
    """`Spinach` in some years and `spinach` in others were two crops: two recipes, each
    trained on half the batches, without a word. They are one crop, spelt as most batches
    spell it, and the merge is counted."""
    _copy(farm, tmp_path)
    batches = pl.read_csv(farm / "batches.csv")
    assert (batches["crop"].value_counts()["count"] >= 2).all()
    first = pl.int_range(pl.len()).over("crop") == 0  # each crop's first batch
    crop = pl.col("crop")
    batches.with_columns(
        pl.when(first & (crop == "basil"))
        .then(pl.lit("Basil "))
        .when(crop == "lettuce")
        .then(pl.when(first).then(pl.lit("Laitue\u0301")).otherwise(pl.lit("laitué")))
        .otherwise(crop)
        .alias("crop")
    ).write_csv(tmp_path / "batches.csv")  # `Laitue` + a combining accent is `Laitué`
    prepared = dataset.build(rawdata.load(tmp_path), 0.25)
    rows = pl.concat([prepared.train, prepared.test])
    assert set(rows["crop"]) == {"basil", "laitué"}, set(rows["crop"])
    merged = prepared.checks["crop_spellings_merged"]
    assert merged["basil"] == ["Basil", "basil"]
    assert merged["laitué"] == ["Laitue\u0301", "laitué"]


def test_a_batch_whose_recipe_sensor_never_read_right_is_left_out_and_named(farm, tmp_path):
    """A humidity probe stuck at 150 % for one batch: every reading a glitch, within the
    glitch budget, and the gate failed on `data/prepared/train.parquet: column
    'humidity_mean' breaks rule 'not_nullable' (data rows 11)`, naming no batch or sensor.
    Now the batch is left out like one with no telemetry, and named."""
    from vertiflow.data import validation

    _copy(farm, tmp_path)
    telemetry = pl.read_parquet(farm / "telemetry.parquet")
    full = dataset.build(rawdata.load(farm), 0.25)
    stuck = full.train["batch_id"][0]
    telemetry.with_columns(
        pl.when(pl.col("batch_id") == stuck)
        .then(150.0)
        .otherwise(pl.col("air_humidity"))
        .alias("air_humidity")
    ).write_parquet(tmp_path / "telemetry.parquet")
    prepared = dataset.build(rawdata.load(tmp_path), 0.25)
    kept = pl.concat([prepared.train, prepared.test])["batch_id"].to_list()
    assert stuck not in kept and len(kept) == full.train.height + full.test.height - 1
    unread = prepared.checks["batches_without_valid_readings"]
    assert unread == {"count": 1, "by_sensor": {"air_humidity": 1}, "examples": [stuck]}
    harvested = prepared.checks["harvested_batches"]
    for budget, passes in ((1.01 / harvested, True), (0.99 / harvested, False)):
        budgets = validation.Budgets(1, 1, 1, 1, budget, 1.0)
        report = validation.validate(prepared.train, prepared.test, prepared.checks, budgets)
        said = " ".join(report["problems"])
        assert report["passed"] == passes, said
        assert report["batches"]["batches_without_valid_readings"] == unread  # the stage's
        assert passes or ("air_humidity" in said and stuck in said and "not_nullable" not in said)


def test_a_yield_of_zero_is_refused_with_a_rule_it_breaks(farm, tmp_path):
    """A crop failure (0 g) was refused as breaking 'in_range(0.0, 2000.0)', found 0.0:
    a value inside the range the message showed (the bound was exclusive, unsaid)."""
    raw = _copy_with(farm, tmp_path, "harvests", "fresh_weight_g", [2], "0")
    with pytest.raises(DataError) as err:
        rawdata.load(raw)
    text = str(err.value)
    assert "'fresh_weight_g' breaks rule 'greater_than(0.0)'" in text, text
    assert "data rows 3" in text and "found 0.0" in text


def _grouped(value: float | None) -> str:
    """A number as Excel in a German locale saves it: `1.234,56`."""
    if value is None:
        return ""
    return (
        f"{value:,.{0 if value == round(value) else 2}f}".replace(",", " ")
        .replace(".", ",")
        .replace(" ", ".")
    )


def test_thousands_separators_of_comma_decimal_locales_read_as_the_same_data(farm, tmp_path):
    """A German export of a formatted sheet writes 1100 ppm as `1.100` and 1234.5 kWh as
    `1.234,50`. They were read as 1.1 and refused (1.1 ppm is no setpoint), or, where the
    range let them through (a PPFD setpoint, a reading), taken as decimals without a word;
    a column whose first 10,000 rows had no grouped number was parsed by polars itself,
    which reads `1.100` as 1.1 too."""
    plain, german = tmp_path / "plain", tmp_path / "german"
    plain.mkdir(), german.mkdir()
    tables = {n: pl.read_csv(farm / f"{n}.csv") for n in ("batches", "harvests")}
    telemetry = pl.read_parquet(farm / "telemetry.parquet")
    telemetry = pl.concat([telemetry, telemetry])  # past polars' 10,000-row type inference
    assert telemetry.height > 10_500
    first = pl.int_range(pl.len()) < 10_500  # no grouped number there: inferred as floats
    co2 = pl.col("co2_level_ambient")
    tables["telemetry"] = telemetry.with_columns(
        pl.when(first)
        .then(co2.clip(upper_bound=999.0))
        .otherwise(co2 * 1.5)
        .alias(co2.meta.output_name())
    )
    tables["harvests"] = tables["harvests"].with_columns(pl.col("energy_kwh") * 20)
    setpoints = pl.col("co2_setpoint", "ppfd_setpoint")  # `1.100`: no decimals written
    tables["batches"] = tables["batches"].with_columns(setpoints.round(0))
    for name, frame in tables.items():
        frame = frame.with_columns(pl.col(pl.Float64).fill_nan(None).round(2))
        frame.write_csv(plain / f"{name}.csv")
        floats = [c for c, t in frame.schema.items() if t == pl.Float64]
        frame = frame.with_columns(
            pl.col(c).map_elements(_grouped, return_dtype=pl.String) for c in floats
        )
        frame.write_csv(german / f"{name}.csv", separator=";")
        assert re.search(r";\d{1,3}\.\d{3}(,\d\d)?[;\r\n]", (german / f"{name}.csv").read_text())
    reference, read = rawdata.load(plain), rawdata.load(german)
    assert read.batches.equals(reference.batches) and read.harvests.equals(reference.harvests)
    sensors = ["co2_level_ambient", "light_intensity_ppfd", "water_ph"]
    got = read.telemetry.select(sensors).collect()
    assert got.equals(reference.telemetry.select(sensors).collect())
    assert got["co2_level_ambient"].max() > 1000


def test_cycle_days_that_are_not_the_days_grown_are_read_as_the_days_grown(farm, tmp_path):
    """An ERP that keeps the planned cycle length in cycle_days (35 days, whenever the kale
    was cut) passed without a word: on a 525-batch export harvested up to a week early or
    late, the Oracle's R2 was 0.73 on the planned days against 0.93 on the days grown, and
    92 batches cut early were reported as loggers down. The dates say what was grown: read
    so, counted and named. A day off (a date-only harvest, a local clock) is left as is;
    days grown outside cycle_days' range are a wrong date, refused."""
    batches = pl.read_csv(farm / "batches.csv")
    _copy(farm, tmp_path)
    batches.with_columns(pl.col("cycle_days") + 1).write_csv(tmp_path / "batches.csv")
    near = rawdata.load(tmp_path)  # within the slack: as written
    assert near.cycle_days_from_dates == 0
    assert near.batches["cycle_days"].to_list() == (batches["cycle_days"] + 1).to_list()
    planned = batches.with_columns(
        pl.when(pl.int_range(pl.len()).is_in([1, 4]))
        .then(pl.col("cycle_days") + 7)
        .otherwise(pl.col("cycle_days"))
        .alias("cycle_days")
    )
    planned.write_csv(tmp_path / "batches.csv")
    read = rawdata.load(tmp_path)
    assert read.batches["cycle_days"].to_list() == batches["cycle_days"].to_list()
    first = planned.row(1, named=True)
    assert read.cycle_days_from_dates == 2
    assert read.cycle_days_examples[0].startswith(
        f"{first['batch_id']}: cycle_days {first['cycle_days']}, started "
    )
    checks = dataset.build(read, 0.25).checks
    assert checks["cycle_days_from_dates"]["count"] == 2
    assert any("2 harvested batch(es) with a cycle_days" in n for n in dataset.notices(checks))
    early = batches.with_columns(  # a start date typed a year early
        pl.when(pl.int_range(pl.len()) == 1)
        .then(pl.col("start_date").str.to_datetime() - dt.timedelta(days=365))
        .otherwise(pl.col("start_date").str.to_datetime())
        .alias("start_date")
    )
    early.write_csv(tmp_path / "batches.csv")
    with pytest.raises(DataError, match=r"grown for a number of days outside 1-120 .*correct"):
        rawdata.load(tmp_path)


def test_a_batch_harvested_in_two_cuts_is_refused_saying_how_to_export_it(farm, tmp_path):
    """A first cut and a regrowth cut as two rows of one batch were refused by pandera's
    'field_uniqueness' with the rows only: nothing said one row per batch is the contract,
    nor how to write a batch cut twice. They are not summed here (whose grade?)."""
    _copy(farm, tmp_path)
    lines = (farm / "harvests.csv").read_text().splitlines()
    regrowth = lines[3].split(",")  # data row 3's batch, cut again
    regrowth[1:4] = ["2010-04-10T00:00:00", "12.5", "STANDARD"]
    (tmp_path / "harvests.csv").write_text("\n".join([*lines[:4], ",".join(regrowth), *lines[4:]]))
    with pytest.raises(DataError) as err:
        rawdata.load(tmp_path)
    said = str(err.value)
    batch, date, weight, grade = lines[3].split(",")[:4]
    assert (
        f"{batch} in data rows 3 ({date}, {weight}, {grade}), 4 (2010-04-10T00:00:00, 12.5" in said
    )
    assert "one harvest row per batch" in said
    assert "weights summed" in said and "main (heaviest) cut's" in said


def test_a_harvest_row_exported_twice_is_named_as_a_copy(farm, tmp_path):
    _copy(farm, tmp_path)
    lines = (farm / "harvests.csv").read_text().splitlines()
    (tmp_path / "harvests.csv").write_text("\n".join([*lines, lines[1]]) + "\n")
    batch = lines[1].split(",")[0]
    with pytest.raises(
        DataError, match=rf"{batch} in data rows 1 .*\(the same row twice: keep one\)"
    ):
        rawdata.load(tmp_path)


def _numbered(farm: Path, tmp_path: Path, padded: str, spelt=lambda ids: ids.str.zfill(6)):
    """The farm with batches numbered 17, 18, ... and `padded`'s ids `spelt` otherwise:
    `000017` by default, as a spreadsheet that opened the other file as numbers leaves them."""
    _copy(farm, tmp_path)
    numbers = {b: str(i + 17) for i, b in enumerate(pl.read_csv(farm / "batches.csv")["batch_id"])}
    for name in ("batches", "harvests", "telemetry", "truth"):
        parquet = tmp_path / f"{name}.parquet"
        frame = pl.read_parquet(parquet) if parquet.exists() else pl.read_csv(farm / f"{name}.csv")
        frame = frame.with_columns(pl.col("batch_id").replace_strict(numbers))
        if name == padded:
            frame = frame.with_columns(spelt(pl.col("batch_id")))
        parquet.unlink(missing_ok=True)
        frame.write_csv(tmp_path / f"{name}.csv")


@pytest.mark.parametrize(
    ("spelt", "table", "said"),
    [  # a harvest sheet with `000017` for the ERP's batch `17`; pandas' `17.0` for `17`
        (
            lambda ids: ids.str.zfill(6),
            "harvests",
            r"leading zeros \(000017 in harvests.csv, 17 in",
        ),
        (lambda ids: ids + ".0", "batches", r"a trailing \.0 \(17 in harvests.csv, 17\.0 in"),
    ],
    ids=["leading_zeros", "trailing_point_zero"],
)
def test_harvest_ids_spelt_otherwise_are_named_as_such(farm, tmp_path, spelt, table, said):
    """Refused as harvests of unknown batches, without a word on why they did not match."""
    _numbered(farm, tmp_path, table, spelt)
    with pytest.raises(
        DataError,
        match=r"refer to batches not in batches.csv \(e.g. .*8 of the 8 differ from an id in "
        r"batches.csv only in " + said,
    ):
        rawdata.load(tmp_path)


def test_telemetry_ids_that_differ_only_in_leading_zeros_are_named_as_such(farm, tmp_path):
    """Telemetry tagged `000017` for batch `17` is left out as readings of unknown batches,
    and the gate then fails for batches without telemetry: neither said why the ids did not
    match, which the harvests' refusal says (`zeros_hint`)."""
    _numbered(farm, tmp_path, "telemetry")
    prepared = dataset.build(rawdata.load(tmp_path), 0.2)
    pair = r"8 of the 8 differ from an id in batches.csv only in leading zeros \(000017 in "
    pair += r"telemetry.csv, 17 in batches.csv"
    assert re.search(pair, " ".join(dataset.notices(prepared.checks)))
    from vertiflow.data import validation

    budgets = validation.Budgets(1, 1, 1, 1, 0.05, 1.0)
    gate = validation.validate(prepared.train, prepared.test, prepared.checks, budgets)
    assert re.search(r"have no telemetry at all .*" + pair, " ".join(gate["problems"]))


def test_a_csv_saved_as_windows_1252_is_named_with_its_row_and_how_to_save_it(farm, tmp_path):
    """Excel's 'CSV (Comma delimited)' on Windows writes `épinard` in Windows-1252: polars
    said 'invalid utf-8 sequence', with no row and no way out."""
    _copy(farm, tmp_path)
    lines = (farm / "batches.csv").read_text().splitlines()
    lines[2] = lines[2].replace(",lettuce,", ",épinard,").replace(",basil,", ",épinard,")
    (tmp_path / "batches.csv").write_bytes("\n".join(lines).encode("cp1252") + b"\n")
    with pytest.raises(
        DataError,
        match=r"batches.csv: .*not UTF-8: data row 2 holds byte e9 \('é' in Windows-1252.*"
        r"épinard.*Save it as 'CSV UTF-8",
    ):
        rawdata.load(tmp_path)


def test_telemetry_not_in_utf8_is_named_not_a_traceback(farm, tmp_path):
    """A Windows-1252 byte in telemetry's first rows raised polars' ComputeError from the
    timestamp check, a traceback; it is named as a read error, with its row."""
    _copy(farm, tmp_path)
    telemetry = pl.read_parquet(farm / "telemetry.parquet")
    (tmp_path / "telemetry.parquet").unlink()
    text = telemetry.write_csv().splitlines()
    text[3] = text[3].replace(",R01-M1,", ",Serre-É,").replace(",R01-M2,", ",Serre-É,")
    (tmp_path / "telemetry.csv").write_bytes("\n".join(text).encode("cp1252") + b"\n")
    with pytest.raises(DataError, match=r"telemetry.csv: .*not UTF-8: data row 3 holds byte c9"):
        rawdata.load(tmp_path)


def test_rows_of_empty_cells_after_the_table_are_no_rows(farm, tmp_path):
    """Excel writes `,,,,` rows for cells below the table once edited: they were refused
    as rows with no batch_id, crop, dates and setpoints, every column named."""
    _copy(farm, tmp_path)
    for name in ("batches", "harvests"):
        text = (farm / f"{name}.csv").read_text()
        commas = text.splitlines()[0].count(",")
        (tmp_path / f"{name}.csv").write_text(text + ("," * commas + "\r\n") * 3)
    read, reference = rawdata.load(tmp_path), rawdata.load(farm)
    assert read.batches.equals(reference.batches) and read.harvests.equals(reference.harvests)
    assert read.growing_rows == 0


def _telemetry_csv(farm: Path, tmp: Path) -> tuple[list[str], list[str]]:
    _copy(farm, tmp)
    (tmp / "telemetry.parquet").unlink()
    telemetry = pl.read_parquet(farm / "telemetry.parquet")
    telemetry.write_csv(tmp / "telemetry.csv")
    return telemetry.columns, (tmp / "telemetry.csv").read_text().splitlines()


def test_a_telemetry_row_with_a_field_too_few_is_named_not_read_silently(farm, tmp_path):
    """A row that lost a value mid-row is read by polars with its values one column early
    and its last cell empty, exactly like an export that leaves out trailing empty cells:
    prepare cannot tell them apart, so it names the rows instead of saying nothing."""
    columns, lines = _telemetry_csv(farm, tmp_path)
    cells = lines[2_000].split(",")
    del cells[columns.index("air_humidity")]
    lines[2_000] = ",".join(cells)
    (tmp_path / "telemetry.csv").write_text("\n".join(lines) + "\n")
    checks = dataset.build(rawdata.load(tmp_path), 0.2).checks
    short = checks["telemetry_short_rows"]
    assert short == {
        "count": 1,
        "first_row": 2000,
        "first": lines[2_000],
        "fields": len(columns),
    }
    (said,) = [n for n in dataset.notices(checks) if "fewer fields" in n]
    assert "data row 2000" in said and "one column early" in said


def test_quoted_cells_with_separators_and_line_breaks_are_no_short_rows(farm, tmp_path):
    columns, lines = _telemetry_csv(farm, tmp_path)
    at = columns.index("module_id")
    cells = lines[5].split(",")
    cells[at] = '"rack 1,\nmodule 2"'  # a separator and a line break, quoted
    lines[5] = ",".join(cells)
    (tmp_path / "telemetry.csv").write_text("\n".join(lines) + "\n")
    assert csvfiles.short_rows(tmp_path / "telemetry.csv") == {"count": 0}
    assert csvfiles.short_rows(farm / "telemetry.parquet") == {"count": 0}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a,b,c\n1,2,3\n4,5\n", (1, 2, "4,5")),  # the last line, cut off
        ("a,b,c\r\n1,2\r\n4,5,6\r\n", (1, 1, "1,2")),  # Windows line ends
        ("a;b;c\n1,5;2\n3,1;4,2;5\n", (1, 1, "1,5;2")),  # semicolons and decimal commas
        ('a,b,c\n1,"x,y"\n4,5,6\n7,8', (2, 1, '1,"x,y"')),  # a quoted separator; no newline
        ('a,b,c\n1,"x,\ny",3\n4,5\n', (1, 2, "4,5")),  # a quoted line break: the csv module
        ("a,b,c\n\n1,2,3\n", (0, None, None)),  # a blank line is no short row
        ('"a,1",b,c\n1,2,3\n', (0, None, None)),  # a quoted header name with a comma
    ],
)
def test_short_rows_are_counted_as_a_csv_reader_counts_them(tmp_path, text, expected):
    path = tmp_path / "telemetry.csv"
    path.write_bytes(text.encode())
    found = csvfiles.short_rows(path)
    assert (found["count"], found.get("first_row"), found.get("first")) == expected


def test_a_column_repeated_in_telemetry_is_refused_as_in_batches(farm, tmp_path):
    """A second `water_temp` in a telemetry CSV was dropped without a word, the first copy
    read even when it was an empty legacy column (the real sensor's features then gone);
    batches and harvests refused the same header."""
    columns, lines = _telemetry_csv(farm, tmp_path)
    at = columns.index("water_temp")
    rows = [line.split(",") for line in lines]
    rows = [[*r[:at], "water_temp" if i == 0 else "", *r[at:]] for i, r in enumerate(rows)]
    (tmp_path / "telemetry.csv").write_text("\n".join(",".join(r) for r in rows) + "\n")
    with pytest.raises(
        DataError, match=r"telemetry.csv: column\(s\) water_temp appear more than once"
    ):
        rawdata.load(tmp_path)


@pytest.mark.parametrize(
    ("table", "column", "dtype", "suffix"),
    [
        ("batches", "start_date", pl.Int64, "csv"),
        ("harvests", "harvest_date", pl.Float64, "csv"),
        ("batches", "start_date", pl.Int64, "parquet"),
    ],
)
def test_excel_serial_dates_are_named_as_numbers(farm, tmp_path, table, column, dtype, suffix):
    """A date cell formatted as a number saves Excel's serial days (40182 for 2010-01-04):
    read as microseconds since 1970, they were refused for days grown or a harvest before
    its start, which named neither the column nor the numbers."""
    _copy(farm, tmp_path)
    days = (pl.col(column).str.slice(0, 10).str.to_date() - pl.date(1899, 12, 30)).dt.total_days()
    frame = pl.read_csv(farm / f"{table}.csv").with_columns(days.cast(dtype).alias(column))
    (tmp_path / f"{table}.csv").unlink()
    getattr(frame, f"write_{suffix}")(tmp_path / f"{table}.{suffix}")
    with pytest.raises(DataError) as err:
        rawdata.load(tmp_path)
    said = str(err.value)
    assert f"{table}.{suffix}: column '{column}' is {dtype}" in said
    assert "Excel" in said and f"{frame[column][0]!r} (data row 1)" in said
    assert "expected ISO 8601" in said


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
@pytest.mark.parametrize("table", ["batches", "harvests", "telemetry"])
def test_a_csv_saved_as_utf16_is_named_with_how_to_save_it(farm, tmp_path, table, encoding):
    """Excel's 'Unicode Text' is UTF-16, tab-separated: read as UTF-8, its header was
    refused as missing every column, 'found instead' a name like '\\x00b\\x00a...'.
    Other tools write it without the byte-order mark (`utf-16-le`)."""
    _telemetry_csv(farm, tmp_path)
    path = tmp_path / f"{table}.csv"
    path.write_bytes(path.read_text().replace(",", "\t").encode(encoding))
    with pytest.raises(DataError, match=rf"{table}.csv: .*UTF-16.*Save it as 'CSV UTF-8"):
        rawdata.load(tmp_path)


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_telemetry_with_a_header_but_no_rows_is_refused_as_batches_are(farm, tmp_path, suffix):
    """It passed prepare, and the gate then blamed the batch ids: every batch without
    telemetry, 'do the telemetry's batch ids match the batches table's?'."""
    _copy(farm, tmp_path)
    (tmp_path / "telemetry.parquet").unlink()
    empty = pl.read_parquet(farm / "telemetry.parquet").clear()
    getattr(empty, f"write_{suffix}")(tmp_path / f"telemetry.{suffix}")
    with pytest.raises(DataError, match=rf"telemetry.{suffix}: has a header but no rows"):
        rawdata.load(tmp_path)


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_a_fractional_cycle_days_is_refused_not_truncated(farm, tmp_path, suffix):
    """40.9 in a column read as decimals became 40 (the integer check read text cells
    only), within the days-grown slack of the dates, so nothing said so. 42.0 is 42."""
    _copy(farm, tmp_path)
    (tmp_path / "batches.csv").unlink()
    path = tmp_path / f"batches.{suffix}"
    batches = pl.read_csv(farm / "batches.csv").with_columns(pl.col("cycle_days").cast(pl.Float64))
    getattr(batches, f"write_{suffix}")(path)
    assert rawdata.load(tmp_path).batches["cycle_days"].to_list() == batches["cycle_days"].to_list()
    third = pl.int_range(pl.len()) == 2
    fraction = pl.when(third).then(pl.col("cycle_days") + 0.9).otherwise(pl.col("cycle_days"))
    getattr(batches.with_columns(fraction), f"write_{suffix}")(path)
    value = batches["cycle_days"][2] + 0.9
    with pytest.raises(
        DataError,
        match=rf"batches.{suffix}: column 'cycle_days' expects an integer .*data rows 3\); "
        rf"found {value!r}",
    ):
        rawdata.load(tmp_path)
