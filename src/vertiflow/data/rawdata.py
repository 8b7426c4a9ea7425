"""Find and read a farm's raw tables (CSV or Parquet), refusing structural problems early.

Batches and harvests are small and validated in full. Telemetry can be tens of millions
of rows, so it stays a lazy scan here: only its columns and types are checked; its
values are screened during the single aggregation pass in `features`.
"""

from __future__ import annotations

import json
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pandera.errors
import pandera.polars as pa
import polars as pl

from vertiflow.data import schemas
from vertiflow.data.csvfiles import (
    NULL_TEXT,
    READ_ERRORS,
    as_number,
    check_not_empty,
    check_not_utf16,
    file_dialect,
    first_line,
    is_csv,
    not_a_number,
    read_error,
    short_rows,
)
from vertiflow.data.dates import (
    DAY_MONTH,
    check_date_order,
    check_date_type,
    check_not_in_future,
    check_one_time_zone,
    day_month_as_iso,
    parse_dates,
)
from vertiflow.errors import DataError, describe_schema_errors

TABLES = ("batches", "telemetry", "harvests")
# cycle_days against harvest_date - start_date: a date-only harvest (start 09:00, cut on
# day 35 at 00:00) and a local clock against UTC may each take a day off.
CYCLE_SLACK_DAYS = 2


@dataclass
class RawData:
    batches: pl.DataFrame
    harvests: pl.DataFrame
    telemetry: pl.LazyFrame
    telemetry_path: Path
    truth: pl.DataFrame | None  # only the simulator knows it
    world: str | None = None  # the simulated world that made the data (world.json)
    # crop -> the spellings read as it (`Spinach`, `spinach`): `one_spelling_per_crop`
    crop_spellings: dict[str, list[str]] = field(default_factory=dict)
    # harvests rows with every harvest cell empty: batches still growing, read as such
    growing_rows: int = 0
    # harvested batches whose cycle_days was not their dates' days grown: read as the latter
    cycle_days_from_dates: int = 0
    cycle_days_examples: list[str] = field(default_factory=list)
    batches_path: Path | None = None  # named where telemetry's ids do not match its ids
    # CSV telemetry rows with fewer fields than the header: their last cells read as empty
    telemetry_short_rows: dict = field(default_factory=lambda: {"count": 0})


def find_table(raw_dir: Path, name: str, *, required: bool = True) -> Path | None:
    """`<name>.parquet` or `<name>.csv`, in any case (`Batches.CSV` from a Windows tool)."""
    wanted = {f"{name}.parquet", f"{name}.csv"}
    found = sorted(p for p in raw_dir.iterdir() if p.name.lower() in wanted and p.is_file())
    if len(found) > 1:
        raise DataError(f"{raw_dir}: both {found[0].name} and {found[1].name} exist; keep one.")
    if not found:
        if required:
            raise DataError(
                f"{raw_dir}: no {name}.parquet or {name}.csv found; the raw data needs "
                f"{', '.join(t + '.parquet/.csv' for t in TABLES)} (see README, 'Data schema')."
                f"{_other_formats(raw_dir, name)}"
            )
        return None
    return found[0]


def _other_formats(raw_dir: Path, name: str) -> str:
    """Files that look like the table in a form not read (a spreadsheet, a compressed or
    renamed copy): what to do with them."""
    like = sorted(p.name for p in raw_dir.iterdir() if p.name.lower().startswith(name))
    if not like:
        return ""
    if len(like) > 1:  # monthly or per-room exports: one table, in pieces
        return (
            f" Found {len(like)} files like it ({', '.join(like[:3])}"
            f"{', ...' if len(like) > 3 else ''}): if they are parts of one table (a month "
            f"or a room each), concatenate them, with one header row, into {name}.csv "
            f"(UTF-8) or {name}.parquet."
        )
    return (
        f" Found {', '.join(like[:3])}: save it as {name}.csv (UTF-8, one header row) or "
        f"{name}.parquet (uncompressed; the name's case does not matter)."
    )


def _one_column_hint(columns: list[str]) -> str:
    """A header read as a single column: the file's separator is none that is read."""
    if len(columns) != 1:
        return ""
    return (
        f" The header was read as one column ({columns[0][:60]!r}): separate the columns "
        "with ',', ';' or tabs."
    )


def _unexpected_hint(columns: list[str], expected: list[str], missing: list[str]) -> str:
    """A missing column is most often a renamed one: name what came instead, the most
    alike first."""
    from difflib import SequenceMatcher

    def likeness(column: str) -> float:
        return max(SequenceMatcher(None, column.lower(), m.lower()).ratio() for m in missing)

    extra = sorted((c for c in columns if c not in expected), key=likeness, reverse=True)
    if len(columns) == 1 or not extra:
        return ""
    shown = ", ".join(repr(c) for c in extra[:5]) + (" ..." if len(extra) > 5 else "")
    return f" Found instead: {shown}; rename one if it holds the missing column's values."


# Column names of telemetry in long form (one row per reading of one sensor), as IoT
# platforms and time-series databases export it.
LONG_NAMES = (
    {"sensor", "metric", "variable", "measurement", "parameter", "field", "tag"},
    {"value", "reading", "val", "measured_value"},
)


def _long_form_hint(path: Path) -> str:
    """Telemetry with a sensor-name column and a value column: how to make it wide."""
    try:
        if is_csv(path):
            header = pl.scan_csv(
                path, separator=file_dialect(path)[0], n_rows=1, infer_schema=False
            )
            columns = header.collect_schema().names()
        else:
            columns = list(pl.read_parquet_schema(path))
    except READ_ERRORS:
        return ""
    names = {c.strip().lstrip("\ufeff").lower(): c for c in columns}
    sensor = next((names[n] for n in sorted(LONG_NAMES[0]) if n in names), None)
    value = next((names[n] for n in sorted(LONG_NAMES[1]) if n in names), None)
    if sensor is None or value is None:
        return ""
    read = "pl.read_csv(path)" if is_csv(path) else "pl.read_parquet(path)"
    return (
        f" It looks like long-form telemetry, one row per sensor reading ({sensor!r}, "
        f"{value!r}): pivot it to one column per sensor, each named as above, e.g. "
        f"{read}.pivot(on={sensor!r}, index=['batch_id', 'timestamp'], values={value!r}, "
        "aggregate_function='first')."
    )


def _check_has_rows(path: Path, rows: pl.DataFrame) -> None:
    """`rows`: the table's first rows (or all). A header-only telemetry passed prepare,
    and the gate then blamed the batch ids (every batch without telemetry)."""
    if rows.is_empty():
        raise DataError(f"{path}: has a header but no rows; expected at least one row.")


def _normalise_header(path: Path, lazy: pl.LazyFrame) -> pl.LazyFrame:
    """`Batch_ID`, ` crop `: a header's case and padding are not part of its name. A name
    repeated is refused, for telemetry as for batches and harvests: polars reads the second
    copy as `<name>_duplicated_0`, and telemetry, which selects its columns by name, used
    the first copy and dropped the other without a word (an empty legacy column over the
    real sensor)."""
    names = lazy.collect_schema().names()
    repeated = sorted({n.split("_duplicated_")[0] for n in names if "_duplicated_" in n})
    if repeated:
        raise DataError(
            f"{path}: column(s) {', '.join(repeated)} appear more than once in the header; "
            "each column must be named once."
        )
    wanted = {n: n.strip().lower() for n in names}
    clashes = sorted({v for v in wanted.values() if list(wanted.values()).count(v) > 1})
    if clashes:
        same = [repr(n) for n in names if wanted[n] in clashes]
        raise DataError(
            f"{path}: the header names {', '.join(same)}, which differ only in case or "
            "spaces; each column must be named once."
        )
    if all(k == v for k, v in wanted.items()):
        return lazy
    return lazy.rename(wanted)


def _scan(path: Path, dates: bool = True) -> pl.LazyFrame:
    """`dates=False`: date columns stay text, for `parse_dates` (polars would read
    03/04/2024 as 3 April on its own, whatever the rest of the column says)."""
    check_not_empty(path)
    if is_csv(path):
        check_not_utf16(path)
        separator, decimal_comma = file_dialect(path)

        def scan(overrides: dict[str, pl.DataType] | None = None) -> pl.LazyFrame:
            return pl.scan_csv(
                path,
                separator=separator,
                decimal_comma=decimal_comma,
                null_values=NULL_TEXT,
                try_parse_dates=dates,
                infer_schema_length=10_000,
                schema_overrides=overrides,
            )

        lazy = scan()
        overrides = _csv_overrides(lazy.collect_schema(), decimal_comma)
        if overrides:
            lazy = scan(overrides)
    else:
        lazy = pl.scan_parquet(path)
    return _normalise_header(path, lazy)


def _csv_overrides(inferred: pl.Schema, decimal_comma: bool = False) -> dict[str, pl.DataType]:
    """Types polars would guess wrong from a CSV's first 10,000 rows: ids that look like
    numbers are labels (`0017` stays `0017`, as in a Parquet export), and a numeric
    column of whole numbers so far (CO2 `800`) is read as decimals (`800.4` further down).
    With a decimal comma, numbers are read as text and then by `as_number`: polars there
    reads a thousands-grouped `1.100` as 1.1."""
    overrides: dict[str, pl.DataType] = {}
    for raw, dtype in inferred.items():
        name = raw.strip().lower()
        as_text = name in schemas.LABELS or (name in schemas.DECIMALS and decimal_comma)
        if as_text and dtype != pl.String:
            overrides[raw] = pl.String
        elif name in schemas.DECIMALS and dtype.is_integer():
            overrides[raw] = pl.Float64
    return overrides


def _validate(path: Path, frame: pl.DataFrame | pl.LazyFrame, schema: pa.DataFrameSchema):
    try:
        return schema.validate(frame, lazy=True)
    except pandera.errors.SchemaErrors as err:
        raise describe_schema_errors(str(path), err) from None
    except pandera.errors.SchemaError as err:  # raised for frame-level problems
        raise DataError(f"{path}: {first_line(err)}") from None


def _check_types(
    path: Path, frame: pl.DataFrame, schema: pa.DataFrameSchema, decimal_comma: bool
) -> None:
    """Text where a number or a date belongs, or a fraction where an integer does: name
    the column, the rows and the values.

    pandera reports a failed coercion for the whole table at once; this says which cells.
    It also truncated a fraction read as a decimal (cycle_days 40.9 became 40).
    """
    problems = []
    for name, column in schema.columns.items():
        target = column.dtype.type
        if name not in frame.columns or target == pl.String:
            continue
        text = frame[name]
        if target.is_temporal():
            check_date_type(path, frame.lazy(), name, column.nullable)  # numbers: refused
            if text.dtype != pl.String:
                continue
            check_date_order(path, text.to_frame().lazy(), name)
            bad = (parse_dates(text).is_null() & text.is_not_null()).arg_true()
            kind = "a date-time (ISO 8601, or dd/mm/yyyy or mm/dd/yyyy with a 4-digit year)"
        elif text.dtype == pl.String:
            wrong = not_a_number(pl.col(name), decimal_comma, target.is_integer())
            bad = frame.select(wrong).to_series().arg_true()
            kind = "an integer" if target.is_integer() else "a number"
        elif target.is_integer() and text.dtype.is_float():  # 42.0 is an integer, 40.9 not
            bad = (text.round(0) != text).arg_true()
            kind = "an integer"
        else:
            continue
        if len(bad):
            rows = ", ".join(str(i + 1) for i in bad.head(5).to_list())
            values = ", ".join(repr(v) for v in text.gather(bad.head(3)).to_list())
            problems.append(
                f"column '{name}' expects {kind} but {len(bad)} value(s) are not "
                f"(data rows {rows}); found {values}"
            )
    if problems:
        raise DataError(f"{path}: " + "; ".join(problems) + ".")


def _parse_temporal(frame: pl.DataFrame, schema: pa.DataFrameSchema) -> pl.DataFrame:
    """Date-time columns read as text (CSV, or text in Parquet) become date-times; those
    with a time zone become plain UTC times."""
    temporal = [n for n, c in schema.columns.items() if c.dtype.type.is_temporal()]
    present = [n for n in temporal if n in frame.columns]
    text = [n for n in present if frame[n].dtype == pl.String]
    zoned = [n for n in present if getattr(frame[n].dtype, "time_zone", None)]
    return frame.with_columns(
        *(parse_dates(frame[n]) for n in text),
        *(pl.col(n).dt.convert_time_zone("UTC").dt.replace_time_zone(None) for n in zoned),
    )


def _keys_as_text(frame: pl.DataFrame, schema: pa.DataFrameSchema) -> pl.DataFrame:
    """Ids exported as numbers (batch 17, rack 2) are labels: read them as text, without
    the padding of fixed-width exports (` 17 ` is batch 17, `  basil` is basil)."""
    labels = [n for n, c in schema.columns.items() if c.dtype.type == pl.String]
    present = [n for n in labels if n in frame.columns]
    # pandas' `category` columns arrive as Categorical/Enum: their values are the labels
    numbers = [n for n in present if frame[n].dtype.is_integer()]
    numbers += [n for n in present if isinstance(frame[n].dtype, pl.Categorical | pl.Enum)]
    frame = frame.with_columns(pl.col(numbers).cast(pl.String))
    text = [n for n in present if frame[n].dtype == pl.String]
    return frame.with_columns(pl.col(text).str.strip_chars())


def _without_trailing_empty_rows(frame: pl.DataFrame) -> pl.DataFrame:
    """The table without the rows of empty cells after its last row (`,,,,`), which Excel
    writes for cells below the table once edited or formatted: they hold nothing, and were
    refused as rows without a batch_id, crop, dates... (every column named). Empty rows
    between rows are kept, and refused, so that data row numbers stay the file's."""
    held = frame.select(~pl.all_horizontal(pl.all().is_null())).to_series().arg_true()
    return frame.head(int(held[-1]) + 1 if len(held) else 0)


def read_frame(path: Path, dates: bool = True) -> pl.DataFrame:
    """Read a whole small CSV or Parquet table, with errors that name the file."""
    if not path.is_file():
        raise DataError(f"{path}: file not found.")
    try:
        frame = _scan(path, dates).collect()
    except READ_ERRORS as exc:
        raise read_error(path, exc) from None
    frame = _without_trailing_empty_rows(frame)
    _check_has_rows(path, frame)
    return frame.with_columns(pl.col(pl.Float32, pl.Float64).fill_nan(None))  # NaN = missing


def _pending_rows(path: Path, frame: pl.DataFrame, columns: tuple[str, ...]) -> pl.DataFrame:
    """Empty cells (blank or padding) of `columns` as null; refuses a row with some of
    them empty and others not, naming its data row and what it holds."""

    def empty(name: str) -> pl.Expr:
        if frame[name].dtype == pl.String:
            return pl.col(name).is_null() | (pl.col(name).str.strip_chars() == "")
        return pl.col(name).is_null()

    frame = frame.with_columns(pl.when(~empty(c)).then(pl.col(c)).alias(c) for c in columns)
    blank = [pl.col(c).is_null() for c in columns]
    partial = (
        frame.with_row_index("row", offset=1)
        .filter(pl.any_horizontal(blank) & ~pl.all_horizontal(blank))
        .select("row", "batch_id", *columns)
    )
    if partial.height:
        rows = ", ".join(str(r) for r in partial["row"].head(5).to_list())
        first = partial.row(0, named=True)
        cells = ", ".join(
            f"{c} {'empty' if first[c] is None else repr(str(first[c]))}" for c in columns
        )
        raise DataError(
            f"{path}: {partial.height} row(s) have some of {', '.join(columns)} empty but not "
            f"all (data rows {rows}; row {first['row']}, batch {first['batch_id']}: {cells}). "
            "A harvested batch needs all of them; a batch still growing leaves all of them "
            "empty (or has no row)."
        )
    return frame


HARVEST_SHOWN = ("harvest_date", "fresh_weight_g", "quality_grade")


def _cell(value: object) -> str:
    return "empty" if value is None or str(value).strip() == "" else str(value).strip()


def _one_harvest_per_batch(path: Path, frame: pl.DataFrame) -> None:
    """Refuses a batch with more than one harvests row, naming the batch, its rows and what
    they hold, and how to export it.

    A crop cut twice (a first cut and a regrowth cut) comes as two rows; pandera named the
    rows only ('field_uniqueness'). They are not summed here: which cut's grade stands for
    the batch is the farm's call, and a row exported twice would count double."""
    rows = frame.with_row_index("row", offset=1).filter(
        pl.col("batch_id").is_not_null() & pl.col("batch_id").is_duplicated()
    )
    if rows.is_empty():
        return
    shown = []
    for (batch,), cuts in rows.group_by("batch_id", maintain_order=True):
        if len(shown) == 3:
            break
        held = [
            f"{r['row']} ({', '.join(_cell(r[c]) for c in HARVEST_SHOWN)})"
            for r in cuts.head(4).iter_rows(named=True)
        ]
        copies = cuts.drop("row").n_unique() == 1
        shown.append(
            f"{batch} in data rows {', '.join(held)}"
            + (" (the same row twice: keep one)" if copies else "")
        )
    batches = rows["batch_id"].n_unique()
    raise DataError(
        f"{path}: {batches} batch(es) have more than one harvest row; column 'batch_id' must "
        f"be unique, one harvest row per batch: {'; '.join(shown)}. A batch harvested in "
        "several cuts (a first cut and a regrowth cut) is exported as one row: "
        "fresh_weight_g the cuts' weights summed, harvest_date the last cut's, "
        "quality_grade the main (heaviest) cut's, energy_kwh the whole cycle's. They are "
        "not merged here, as which cut's grade stands for the batch is the farm's call."
    )


def read_table(
    path: Path, schema: pa.DataFrameSchema, pending: tuple[str, ...] = ()
) -> pl.DataFrame:
    """Read a whole small table and validate it against its schema.

    `pending`: columns that a row leaves all empty while its record is not made yet (a
    harvest sheet's row for a batch still growing); such rows come back with them null,
    and a row with only some of them empty is refused (`_pending_rows`)."""
    frame = read_frame(path, dates=False)  # its dates are parsed here, each column as a whole
    optional = schemas.OPTIONAL_COLUMNS
    missing = [c for c in schema.columns if c not in frame.columns and c not in optional]
    if missing:
        raise DataError(
            f"{path}: missing column(s) {', '.join(repr(c) for c in missing)}; "
            f"expected columns {', '.join(schema.columns)}.{_one_column_hint(frame.columns)}"
            f"{_unexpected_hint(frame.columns, list(schema.columns), missing)}"
        )
    frame = frame.with_columns(  # an optional column left out: empty
        pl.lit(None, pl.Float64).alias(c) for c in schema.columns if c not in frame.columns
    )
    frame = _keys_as_text(frame, schema)
    if schema is schemas.HARVESTS:
        _one_harvest_per_batch(path, frame)
    if "quality_grade" in schema.columns and frame["quality_grade"].dtype == pl.String:
        # "Premium", " standard": the grade's name is what counts, not how it is cased
        frame = frame.with_columns(pl.col("quality_grade").str.strip_chars().str.to_uppercase())
    if pending:
        frame = _pending_rows(path, frame, pending)
        schema = schema.update_columns({c: {"nullable": True} for c in pending})
    decimal_comma = file_dialect(path)[1]
    _check_types(path, frame, schema, decimal_comma)
    as_text = [  # numbers polars left as text: padded, or a blank among them
        n
        for n, c in schema.columns.items()
        if n in frame.columns and frame[n].dtype == pl.String and c.dtype.type.is_numeric()
    ]
    frame = frame.with_columns(as_number(pl.col(n), decimal_comma).alias(n) for n in as_text)
    return _validate(path, _parse_temporal(frame, schema), schema).select(list(schema.columns))


def scan_telemetry(path: Path) -> pl.LazyFrame:
    """A lazy, type-checked view of telemetry: nothing is loaded into memory here.

    Its checks read the file's first rows (timestamps, numbers), where a row polars cannot
    read (a Windows-1252 `é` in a CSV) raised a traceback: named here as any read error."""
    try:
        return _scan_telemetry(path)
    except READ_ERRORS as exc:
        raise read_error(path, exc) from None


def _scan_telemetry(path: Path) -> pl.LazyFrame:
    lazy = _scan(path, dates=False)  # timestamps as text: `_text_timestamps` reads them
    _check_has_rows(path, lazy.head(1).collect())
    columns = lazy.collect_schema()
    missing = [c for c in schemas.TELEMETRY.columns if c not in columns]
    if missing:
        needed = [c for c in missing if c in schemas.RECIPE_SENSORS]
        advice = long_form = _long_form_hint(path)
        renamed = _unexpected_hint(columns.names(), list(schemas.TELEMETRY.columns), missing)
        if set(missing) <= set(schemas.SENSORS) and not advice:
            advice = (
                f" {', '.join(needed)} measure(s) what a recipe sets: the models and Cortex "
                "need it."
                if needed
                else " A farm without one of these sensors: add its column with no values "
                "(its features are then left out)."
            )
        raise DataError(
            f"{path}: missing column(s) {', '.join(repr(c) for c in missing)}; "
            f"expected columns {', '.join(schemas.TELEMETRY.columns)}.{advice}"
            f"{_one_column_hint(columns.names())}"
            f"{'' if long_form else renamed}"
        )
    wrong = {
        name: dtype
        for name, dtype in columns.items()
        if name in schemas.SENSOR_UNITS and not dtype.is_numeric() and dtype != pl.Null
    }
    decimal_comma = file_dialect(path)[1]
    problems = _not_numbers(lazy, wrong, decimal_comma)
    if problems:
        raise DataError(f"{path}: sensor columns must be numeric; {problems}.")
    check_date_type(path, lazy, "timestamp")
    timestamp = pl.col("timestamp").cast(pl.Datetime("us"))
    if columns["timestamp"] == pl.String:  # text: a CSV's, or a Parquet's
        timestamp = _text_timestamps(path, lazy)
    return (
        lazy.select(list(schemas.TELEMETRY.columns))
        .with_columns(
            pl.col("batch_id").cast(pl.String).str.strip_chars(),
            timestamp,
            *(as_number(pl.col(s), decimal_comma).alias(s) for s in wrong),  # padded, blanks
        )
        .with_columns(pl.col(schemas.SENSORS).cast(pl.Float64).fill_nan(None))  # NaN: no reading
    )


def _text_timestamps(path: Path, lazy: pl.LazyFrame) -> pl.Expr:
    """The expression that reads telemetry's text timestamps: ISO 8601 (an offset: its UTC
    time), or dd/mm or mm/dd date-times in the order the whole column shows, decided as
    for batches' and harvests' dates (`check_date_order`). A file's first 1,000 values
    must parse here; a bad value further down stops the streamed read in `features`."""
    sample = lazy.select("timestamp").drop_nulls().head(1000).collect()["timestamp"]
    stripped = sample.str.strip_chars()
    order = None
    if stripped.str.contains(DAY_MONTH).any():  # the order needs the whole column
        order = check_date_order(path, lazy, "timestamp")
    timestamp = (
        day_month_as_iso(pl.col("timestamp").str.strip_chars(), order)
        .str.to_datetime(time_unit="us", time_zone="UTC")  # an offset: its UTC time
        .dt.replace_time_zone(None)
        .alias("timestamp")
    )
    head = lazy.select("timestamp").head(1000).collect()["timestamp"]  # rows as in the file
    check_one_time_zone(path, head, "timestamp")
    iso = pl.select(day_month_as_iso(pl.lit(stripped), order)).to_series()
    parses = iso.str.contains(r"^\d{4}-\d\d-\d\d").all()
    try:
        sample.to_frame().select(timestamp)
    except pl.exceptions.PolarsError:
        parses = False
    if not parses:
        found = ", ".join(repr(v) for v in sample.head(3))
        raise DataError(
            f"{path}: column 'timestamp' holds text that is no date-time ({found}); "
            "expected ISO 8601 date-times (e.g. 2024-03-01T14:00:00), or day/month "
            "date-times in one order for the whole column (25/03/2024 14:00 or "
            "03/25/2024 14:00)."
        ) from None
    return timestamp


def _not_numbers(lazy: pl.LazyFrame, columns: dict[str, pl.DataType], decimal_comma: bool) -> str:
    """Which cells of text columns are no number; empty when every cell is one (see
    `as_number`). One scan per text column, and only for columns polars read as text."""
    text = [n for n, t in columns.items() if t == pl.String]
    if text:  # one streamed pass for all; the rows are looked up only where a cell is bad
        flags = lazy.select(not_a_number(pl.col(n), decimal_comma).any() for n in text)
        bad_columns = flags.collect(engine="streaming").row(0, named=True)
        columns = {n: t for n, t in columns.items() if t != pl.String or bad_columns[n]}
    parts = []
    for name, dtype in columns.items():
        if dtype != pl.String:
            parts.append(f"'{name}' is {dtype}")
            continue
        bad = (
            lazy.select(name)
            .with_row_index("row", offset=1)
            .filter(not_a_number(pl.col(name), decimal_comma))
            .head(3)
            .collect()
        )
        if bad.height:
            found = ", ".join(f"{v!r} (data row {r})" for r, v in bad.iter_rows())
            parts.append(f"'{name}' holds text: {found}; leave a cell empty for no reading")
    return "; ".join(parts)


def load(raw_dir: Path) -> RawData:
    """Read and check the raw tables in `raw_dir`, including keys across tables."""
    if not raw_dir.is_dir():
        raise DataError(f"{raw_dir}: raw data folder not found (params: prepare.raw_dir).")
    batches_path = find_table(raw_dir, "batches")
    harvests_path = find_table(raw_dir, "harvests")
    telemetry_path = find_table(raw_dir, "telemetry")
    batches, spellings = one_spelling_per_crop(read_table(batches_path, schemas.BATCHES))
    harvests = read_table(harvests_path, schemas.HARVESTS, schemas.HARVEST_RESULTS)
    growing = harvests.filter(pl.col("harvest_date").is_null())  # not harvested yet
    harvests = harvests.filter(pl.col("harvest_date").is_not_null())
    check_not_in_future(harvests_path, harvests, "harvest_date")
    telemetry = scan_telemetry(telemetry_path)
    try:
        short = short_rows(telemetry_path)
    except READ_ERRORS as exc:
        raise read_error(telemetry_path, exc) from None

    unknown = harvests.join(batches, on="batch_id", how="anti")["batch_id"]
    if len(unknown):
        hint = zeros_hint(unknown, batches["batch_id"], harvests_path.name, batches_path.name)
        raise DataError(
            f"{harvests_path}: {len(unknown)} harvest row(s) refer to batches not in "
            f"{batches_path.name} (e.g. {', '.join(unknown.head(3).to_list())}); "
            f"every harvest needs its batch.{hint}"
        )
    early = harvests.join(batches.select("batch_id", "start_date"), on="batch_id").filter(
        pl.col("harvest_date") < pl.col("start_date")
    )
    if early.height:
        first = early.row(0, named=True)
        raise DataError(
            f"{harvests_path}: {early.height} harvest(s) dated before their batch started "
            f"(e.g. {first['batch_id']}: harvested {first['harvest_date']}, started "
            f"{first['start_date']} in {batches_path.name}); harvest_date must not precede "
            "start_date."
        )
    batches, regrown, regrown_examples = _days_grown(harvests_path, batches_path, batches, harvests)
    truth_path = find_table(raw_dir, "truth", required=False)
    truth = read_table(truth_path, schemas.TRUTH) if truth_path else None
    world = _world(raw_dir, truth)
    return RawData(
        batches,
        harvests,
        telemetry,
        telemetry_path,
        truth,
        world,
        spellings,
        growing.height,
        regrown,
        regrown_examples,
        batches_path,
        short,
    )


# How one id comes to be written two ways (`zeros_hint`): what differs, the part of an id
# that does (a regex), and what writes it so.
ID_SPELLINGS = (
    ("leading zeros", r"^0+", "a spreadsheet that opened one of the files drops them"),
    ("a trailing .0", r"\.0+$", "pandas writes an integer column with an empty cell as decimals"),
)


def zeros_hint(unknown: pl.Series, known: pl.Series, here: str, there: str) -> str:
    """Ids in `here` that match ids in `there` but for leading zeros (`001017` and
    `1017`: a spreadsheet that opened one export as numbers dropped them) or a trailing
    `.0` (`17.0` and `17`: pandas wrote an id column with a gap as decimals). Which form
    is right only the farm knows. Said for harvests' ids (refused) and telemetry's (left
    out, and the gate then counts the batches without telemetry)."""
    for differ, pattern, why in ID_SPELLINGS:
        key = pl.col("batch_id").str.replace(pattern, "")
        pairs = (
            unknown.to_frame("batch_id")
            .with_columns(key.alias("key"))
            .join(
                known.to_frame("batch_id").with_columns(key.alias("key")),
                on="key",
                maintain_order="left",
            )
        )
        if pairs.height:
            first = pairs.row(0)
            return (
                f" {pairs['batch_id'].n_unique()} of the {unknown.n_unique()} differ from an "
                f"id in {there} only in {differ} ({first[0]} in {here}, {first[2]} in "
                f"{there}; {why}): write the ids the same way in both files."
            )
    return ""


def _days_grown(
    harvests_path: Path, batches_path: Path, batches: pl.DataFrame, harvests: pl.DataFrame
) -> tuple[pl.DataFrame, int, list[str]]:
    """Batches with `cycle_days` the days from start to harvest where the two disagree by
    more than CYCLE_SLACK_DAYS; how many, and a few with both.

    An ERP that keeps the *planned* cycle length there (35 days for kale, whenever it was
    cut) had passed without a word: the models learnt yield from the plan while the batch
    grew a week more or less (its telemetry is read up to the harvest), and batches cut
    early were reported as loggers down. The dates say what was grown; a count and
    examples say it was read so. Days grown outside cycle_days' range point at a wrong
    date, which is refused."""
    grown = (
        harvests.select("batch_id", "harvest_date")
        .join(batches.select("batch_id", "start_date", "cycle_days"), on="batch_id")
        .with_columns(
            ((pl.col("harvest_date") - pl.col("start_date")).dt.total_seconds() / 86_400)
            .round(1)
            .alias("grown")
        )
        .filter((pl.col("grown") - pl.col("cycle_days")).abs() > CYCLE_SLACK_DAYS)
    )
    if grown.is_empty():
        return batches, 0, []
    shown = [
        f"{r['batch_id']}: cycle_days {r['cycle_days']}, started {r['start_date']:%Y-%m-%d}, "
        f"harvested {r['harvest_date']:%Y-%m-%d} ({r['grown']:g} days)"
        for r in grown.head(3).iter_rows(named=True)
    ]
    lo, hi = (int(v) for v in schemas.FEATURE_RANGES["cycle_days"])
    wrong = grown.filter(~pl.col("grown").round().is_between(lo, hi))
    if wrong.height:
        first = wrong.row(0, named=True)
        raise DataError(
            f"{harvests_path}: {wrong.height} harvested batch(es) were grown for a number of "
            f"days outside {lo}-{hi} by their dates (e.g. {first['batch_id']}: started "
            f"{first['start_date']:%Y-%m-%d} in {batches_path.name}, harvested "
            f"{first['harvest_date']:%Y-%m-%d}, {first['grown']:g} days, cycle_days "
            f"{first['cycle_days']}): correct the harvest_date or start_date."
        )
    days = grown.select("batch_id", pl.col("grown").round().cast(pl.Int64).alias("days"))
    batches = (
        batches.join(days, on="batch_id", how="left", maintain_order="left")
        .with_columns(pl.coalesce("days", "cycle_days").alias("cycle_days"))
        .drop("days")
    )
    return batches, grown.height, shown


def _crop_key(name: str) -> str:
    """What two spellings of one crop share: `Spinach`, `spinach`, `e` + a combining
    accent for `é` (as macOS writes it) all give one key."""
    return " ".join(unicodedata.normalize("NFC", name).casefold().split())


def one_spelling_per_crop(batches: pl.DataFrame) -> tuple[pl.DataFrame, dict[str, list[str]]]:
    """Crop names that differ only in case, inner spaces or Unicode form name one crop.

    A farm system that let operators type `Spinach` some years and `spinach` others made
    two crops of one: each trained on part of its batches, each with its own recipe, and
    nothing said so. Each crop is spelt as most of its batches spell it (on a tie, the
    first in sort order), in Unicode's composed form; returns the merges made, for the
    validation report."""
    counts = Counter(batches["crop"].to_list())
    groups: dict[str, list[str]] = {}
    for name in sorted(counts):
        groups.setdefault(_crop_key(name), []).append(name)
    rename, merged = {}, {}
    for names in groups.values():
        chosen = unicodedata.normalize("NFC", min(names, key=lambda n: (-counts[n], n)))
        rename |= {n: chosen for n in names if n != chosen}
        if len(names) > 1:
            merged[chosen] = names
    if rename:
        batches = batches.with_columns(pl.col("crop").replace(rename))
    return batches, dict(sorted(merged.items()))


def _world(raw_dir: Path, truth: pl.DataFrame | None) -> str | None:
    """Which simulated world made the data (its truth judges Cortex); None for a farm."""
    path = raw_dir / "world.json"
    if truth is None:
        return None
    if not path.is_file():
        return "agronomy"  # simulated data from before world.json: the built-in world
    try:
        world = json.loads(path.read_text())["world"]
    except (ValueError, KeyError, TypeError):
        raise DataError(f'{path}: expected {{"world": "<name>"}}.') from None
    return str(world)
