"""Dates and date-times as farm exports write them: ISO 8601 with or without a UTC offset,
and spreadsheet dates (25/03/2024 or 03/25/2024) whose day-month order the whole column
decides. Read as text first, because polars on its own guesses per value."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl

from vertiflow.errors import DataError

# ISO 8601 as exports write it; tried in this order, the first that parses a cell wins.
ISO_FORMATS = (
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d",
)
OFFSET_FORMATS = (  # ...Z, ...+02:00, also without seconds
    "%Y-%m-%dT%H:%M:%S%.f%z",
    "%Y-%m-%d %H:%M:%S%.f%z",
    "%Y-%m-%dT%H:%M%z",
    "%Y-%m-%d %H:%M%z",
)
OFFSET_SUFFIX = r"\d(?:[Zz]|[+-]\d\d:?\d\d)$"  # 14:00Z, 14:00+02:00, 14:00-0500
# Spreadsheet dates, 25/03/2024 or 03/25/2024 (also with . or -, and a time): which field
# is the day is decided once per column, by the values above 12 (`date_order`).
DAY_MONTH = r"^(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})(?:[ T](\d{1,2}:\d{2}(?::\d{2})?))?$"
FUTURE_TOLERANCE = dt.timedelta(days=1)  # time zones: an export's "today" may be our tomorrow


def check_one_time_zone(path: Path, text: pl.Series, column: str) -> None:
    """Refuses date-times some with a UTC offset (`+02:00`, `Z`) and some without: the
    bare ones have no known zone, so they cannot be put on one clock with the others (two
    systems' exports pasted together). Telemetry's hours need one clock (the light
    schedule, the hour of day); its parser called such a column no date-time at all.
    Batches' and harvests' dates count days: a cell with an offset there becomes its UTC
    time, whatever the others hold."""
    stripped = text.str.strip_chars()
    zoned = stripped.str.contains(OFFSET_SUFFIX)
    bare = stripped.str.contains(r"\d:\d\d") & ~zoned  # a time, but no offset
    if not (zoned.any() and bare.any()):
        return

    def where(mask: pl.Series, kind: str) -> str:
        rows = mask.fill_null(False).arg_true()
        shown = [f"{text[i]!r} (data row {i + 1})" for i in rows.head(2)]
        return f"{len(rows)} {kind}, e.g. {', '.join(shown)}"

    raise DataError(
        f"{path}: column '{column}' mixes date-times with a UTC offset and without one "
        f"({where(zoned, 'with one')}; {where(bare, 'without')}); a time without an offset "
        "has no known zone. Export the whole column one way: every time with its offset, or "
        "every time local."
    )


def check_date_type(path: Path, lazy: pl.LazyFrame, column: str, nullable: bool = False) -> None:
    """Refuses a date column that is neither text nor date-times, naming a few values.

    Numbers are most often Excel's serial days (a date cell formatted as a number) or epoch
    times: batches' and harvests' were taken as microseconds since 1970, and refused for
    their days grown or order, which named neither the column nor the numbers. An empty
    column where empty dates are allowed (harvests of batches still growing) passes."""
    dtype = lazy.collect_schema()[column]
    if dtype == pl.String or dtype.is_temporal():
        return
    found = lazy.select(column).with_row_index("row", offset=1).drop_nulls(column).head(3).collect()
    if nullable and found.is_empty():
        return
    said = ""
    if found.height:
        what = "values"
        if dtype.is_numeric():
            what = "numbers (Excel's serial days, 40182 for 2010-01-04? epoch times?)"
        shown = ", ".join(f"{v!r} (data row {r})" for r, v in found.iter_rows())
        said = f"; it holds {what}: {shown}. Format the column as dates before exporting"
    raise DataError(
        f"{path}: column '{column}' is {dtype}, expected ISO 8601 date-times (e.g. "
        f"2024-03-01T14:00:00){said}."
    )


def _first_two_fields(text: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """The first and second numbers of each dd/mm or mm/dd date (null for other text)."""
    fields = text.str.strip_chars().str.extract_groups(DAY_MONTH).struct
    return tuple(fields.field(k).cast(pl.Int32) for k in ("1", "2"))


def column_date_order(lazy: pl.LazyFrame, column: str) -> str | None:
    """How a column writes its dd/mm or mm/dd dates: "day-first", "month-first", or
    "ambiguous" (no field above 12) or "mixed" (both); None when it has none.

    One streamed pass over the column, so that telemetry (millions of rows, never loaded)
    and batches and harvests (small frames) are read by the same rule."""
    first, second = _first_two_fields(pl.col(column))
    dated, day_first, month_first = (
        lazy.select(
            first.is_not_null().any().alias("dated"),
            (first > 12).any().alias("day_first"),
            (second > 12).any().alias("month_first"),
        )
        .collect(engine="streaming")
        .row(0)
    )
    if not dated:
        return None
    if day_first == month_first:
        return "mixed" if day_first else "ambiguous"
    return "day-first" if day_first else "month-first"


def date_order(text: pl.Series) -> str | None:
    """`column_date_order` of a column in memory."""
    return column_date_order(text.to_frame().lazy(), text.name)


def check_date_order(path: Path, lazy: pl.LazyFrame, column: str) -> str | None:
    """The column's `column_date_order`; refuses one whose day and month cannot be told
    apart, naming a value and its data row."""
    order = column_date_order(lazy, column)
    if order not in ("ambiguous", "mixed"):
        return order
    first, second = _first_two_fields(pl.col(column))

    def first_row(mask: pl.Expr) -> tuple[int, str]:
        rows = lazy.select(column).with_row_index("row", offset=1).filter(mask).head(1)
        return rows.collect(engine="streaming").row(0)

    row, example = first_row(first.is_not_null())
    if order == "ambiguous":
        why = "no value has a day above 12, so 03/04 could be 3 April or 4 March"
    else:  # name a value of each order, with its data row: one of them is the typo
        shown = []
        for which, mask in (("the day", first > 12), ("the month", second > 12)):
            row, value = first_row(mask)
            shown.append(f"{value!r} (data row {row}) has {which} first")
        why = "; ".join(shown)
    raise DataError(
        f"{path}: column '{column}' has dates like {example!r} whose day and month cannot be "
        f"told apart ({why}); write dates as ISO 8601 (2024-04-03)."
    )


def day_month_as_iso(text: pl.Expr, order: str | None) -> pl.Expr:
    """dd/mm or mm/dd dates (and times) in a column of `order` rewritten as ISO 8601 text;
    other cells (ISO already, or no date) as they were."""
    if order not in ("day-first", "month-first"):
        return text
    day, month = ("1", "2") if order == "day-first" else ("2", "1")
    fields = text.str.extract_groups(DAY_MONTH).struct
    iso = pl.concat_str(
        fields.field("3"),
        fields.field(month).str.zfill(2),
        fields.field(day).str.zfill(2),
        separator="-",
    ) + pl.when(fields.field("4").is_null()).then(pl.lit("")).otherwise(
        " " + fields.field("4").str.zfill(5)
    )
    return iso.fill_null(text).alias(text.meta.output_name())


def parse_dates(text: pl.Series) -> pl.Series:
    """ISO 8601 text, or spreadsheet dates in one order (`date_order`) -> date-times, null
    where a cell is not one (never raises).

    polars' own inference raises when no cell fits the format it guessed (a column of
    `not-a-date`); explicit formats parse each cell on its own. A cell with a UTC offset
    (`Z`, `+02:00`) becomes its UTC time, as a column that is all offsets does.
    """
    stripped = pl.select(day_month_as_iso(pl.lit(text).str.strip_chars(), date_order(text)))
    stripped = stripped.to_series()
    tries = [stripped.str.strptime(pl.Datetime("us"), f, strict=False) for f in ISO_FORMATS]
    zulu = stripped.str.replace(r"[Zz]$", "+00:00")
    tries += [
        zulu.str.strptime(pl.Datetime("us", "UTC"), f, strict=False).dt.replace_time_zone(None)
        for f in OFFSET_FORMATS
    ]
    return pl.select(pl.coalesce(tries)).to_series().alias(text.name)


def check_not_in_future(path: Path, frame: pl.DataFrame, column: str) -> None:
    """A date after the export was made (after now) is a clock or typing error."""
    now = dt.datetime.now() + FUTURE_TOLERANCE
    late = frame[column].cast(pl.Datetime("us")) > now
    bad = late.arg_true()
    if len(bad):
        rows = ", ".join(str(i + 1) for i in bad.head(5).to_list())
        values = ", ".join(str(v) for v in frame[column].gather(bad.head(3)).to_list())
        raise DataError(
            f"{path}: column '{column}' has {len(bad)} date(s) in the future (data rows {rows}); "
            f"found {values}, but it is now {dt.datetime.now():%Y-%m-%d %H:%M}. A harvest "
            "cannot be recorded before it happens: check the export's clock and date format."
        )
