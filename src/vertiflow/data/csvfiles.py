"""Exported CSV files as spreadsheets and loggers write them: the encoding, the separator
and decimal mark, numbers held as text, and read errors that name the row at fault (which
polars' own messages do not)."""

from __future__ import annotations

import codecs
import csv
import re
from collections.abc import Iterator
from pathlib import Path

import polars as pl

from vertiflow.errors import DataError

READ_ERRORS = (pl.exceptions.PolarsError, OSError, ValueError)
# Cells that mean "no value" in exports: pandas' default `na_values`, so that a CSV reads
# here as it reads in pandas (`NA` in a sensor column is a dropout, not text).
NULL_TEXT = ["#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND"]
NULL_TEXT += ["1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"]
# A number whose points group thousands in a decimal-comma file (`1.100`, `-12.345,6`).
GROUPED = r"^-?\d{1,3}(?:\.\d{3})+(?:,\d*)?$"


def is_csv(path: Path) -> bool:
    return path.suffix.lower() == ".csv"


def read_error(path: Path, exc: Exception) -> DataError:
    """The error for a file that cannot be read, with the CSV row at fault, which
    polars' message does not name: a row with more fields than the header, or a cell
    that is no number."""
    fmt = "CSV" if is_csv(path) else "Parquet"
    message = first_line(exc)
    row = ""
    unparsed = re.search(r"could not parse `(.*)` as dtype .* at column '(.*)'", message)
    if is_csv(path) and unparsed:
        row = _unparsed_row(path, *unparsed.groups())
    elif is_csv(path) and "more fields than defined" in message:
        row = _ragged_row(path)
    elif is_csv(path) and "invalid utf-8" in message:
        row = _not_utf8_row(path)
    return DataError(f"{path}: cannot be read as {fmt}: {message}.{row}")


def _unparsed_row(path: Path, cell: str, column: str) -> str:
    quoted = re.fullmatch(r'"(.*)"', cell, re.DOTALL)  # polars shows a quoted cell quoted
    cell = quoted.group(1).replace('""', '"') if quoted else cell
    text = pl.scan_csv(path, separator=file_dialect(path)[0], infer_schema=False)
    try:
        found = (
            text.select(pl.col(column))
            .with_row_index("row", offset=1)
            .filter(pl.col(column) == cell)
            .head(1)
            .collect()
        )
    except READ_ERRORS:  # the message's column is not the header's: no row to add
        return ""
    return f" Data row {found['row'][0]}." if found.height else ""


def _data_rows(path: Path, separator: str) -> Iterator[tuple[int, list[str], int]]:
    """Each non-blank data row as the csv module reads it (quotes honoured), numbered as
    polars numbers them (from 1 after the header, a blank line counted), with the
    header's field count."""
    with path.open(encoding="utf-8", errors="replace", newline="") as f:
        rows = csv.reader(f, delimiter=separator)
        width = len(next(rows, []))
        for number, row in enumerate(rows, start=1):
            if row:
                yield number, row, width


def _ragged_row(path: Path) -> str:
    """The first row with more fields than the header (one with fewer: `short_rows`)."""
    try:
        separator = file_dialect(path)[0]
        for number, row, width in _data_rows(path, separator):
            if len(row) > width:
                return (
                    f" Data row {number} has {len(row)} fields where the header has "
                    f"{width}: {separator.join(row)[:120]!r}."
                )
    except (OSError, csv.Error):
        pass
    return ""


def short_rows(path: Path) -> dict:
    """CSV rows with fewer fields than the header, counted and the first named: polars
    reads one with its last cells empty. That is right for an export that leaves out a
    row's trailing empty cells, and wrong for a row that lost a value mid-row (its values
    then sit one column early) or a file cut off mid-row, which polars cannot tell apart;
    so such rows are reported, not refused. One streamed pass counts each line's
    separators outside quoted cells; a quoted cell with a line break in it (a line with an
    odd number of quotes) makes lines and rows differ, and the csv module reads the file
    instead."""
    if not is_csv(path):
        return {"count": 0}
    separator = file_dialect(path)[0]
    with path.open(encoding="utf-8", errors="replace", newline="") as f:
        width = len(next(csv.reader(f, delimiter=separator), []))
    line = pl.col("line")
    lines = pl.scan_lines(path, row_index_name="row").filter(pl.col("row") > 0)
    quoted = line.str.contains('"', literal=True)

    def short(text: pl.Expr) -> pl.Expr:
        fields = text.str.count_matches(separator, literal=True) + 1
        return (line.str.strip_chars() != "") & (fields < width)

    def first_short(rows: pl.LazyFrame, text: pl.Expr, broken: pl.Expr) -> pl.LazyFrame:
        return rows.select(
            short(text).sum().alias("count"),
            pl.col("row").filter(short(text)).first(),
            line.filter(short(text)).first(),
            broken.any().alias("broken"),
        )

    plain, with_quotes = pl.collect_all(  # quoted cells' separators removed only where quoted
        [
            first_short(lines.filter(~quoted), line, pl.lit(False)),
            first_short(
                lines.filter(quoted),
                line.str.replace_all('"[^"]*"', ""),
                line.str.count_matches('"', literal=True) % 2 == 1,  # a quoted line break
            ),
        ],
        engine="streaming",
    )
    count, row, text, _ = plain.row(0)
    if with_quotes["broken"][0]:
        count, row, text = _short_rows_quoted(path, separator)
    elif with_quotes["count"][0]:
        count += with_quotes["count"][0]
        if row is None or with_quotes["row"][0] < row:
            row, text = with_quotes["row"][0], with_quotes["line"][0]
    if not count:
        return {"count": 0}
    return {"count": count, "first_row": row, "first": text.rstrip("\r")[:120], "fields": width}


def _short_rows_quoted(path: Path, separator: str) -> tuple[int, int | None, str]:
    count, first_row, first = 0, None, ""
    for number, row, width in _data_rows(path, separator):
        if len(row) < width:
            count += 1
            if first_row is None:
                first_row, first = number, separator.join(row)
    return count, first_row, first


def _not_utf8_row(path: Path) -> str:
    """The first line that is not UTF-8, with what it holds read as Windows-1252: Excel's
    'CSV (Comma delimited)' on Windows writes that, and polars said only 'invalid utf-8
    sequence', with no row and no way out."""
    try:
        with path.open("rb") as f:
            for number, line in enumerate(f):  # line 0 is the header
                try:
                    line.decode("utf-8")
                except UnicodeDecodeError as err:
                    byte = line[err.start : err.start + 1]
                    text = line.decode("cp1252", errors="replace").strip()[:120]
                    where = f"data row {number}" if number else "the header"
                    return (
                        f" The file is not UTF-8: {where} holds byte {byte.hex()} "
                        f"({byte.decode('cp1252', errors='replace')!r} in Windows-1252, as "
                        f"Excel's 'CSV (Comma delimited)' writes it): {text!r}. Save it as "
                        "'CSV UTF-8 (Comma delimited)', or convert it (iconv -f CP1252 -t "
                        "UTF-8)."
                    )
    except OSError:
        pass
    return ""


def first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def check_not_empty(path: Path) -> None:
    if path.stat().st_size == 0:
        kind = "a CSV file with a header row" if is_csv(path) else "a Parquet file"
        raise DataError(f"{path}: the file is empty (0 bytes); expected {kind}.")


def check_not_utf16(path: Path) -> None:
    """A CSV in UTF-16, told by its byte-order mark (Excel's 'Unicode Text' saves it so,
    tab-separated) or, without one, by the zero byte beside every ASCII letter. Read as
    UTF-8, its header was refused as missing every column, 'found instead' names like
    '\\x00b\\x00a...', which said nothing of the encoding."""
    with path.open("rb") as f:
        head = f.read(64)
    halves = head[0::2], head[1::2]  # one of them all zeros: ASCII text in UTF-16
    unmarked = len(head) >= 8 and any(h and h.count(0) == len(h) for h in halves)
    if head[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE) or unmarked:
        raise DataError(
            f"{path}: the file is UTF-16 (as Excel's 'Unicode Text' saves it), not UTF-8. "
            "Save it as 'CSV UTF-8 (Comma delimited)', or convert it (iconv -f UTF-16 -t "
            "UTF-8)."
        )


def csv_dialect(sample: str) -> tuple[str, bool]:
    """(separator, decimal comma) of a CSV from its first lines.

    Spreadsheets in comma-decimal locales (French, German, ...) save `;`-separated files
    with `1,5` for 1.5; some tools save tabs. The header decides the separator (column
    names hold none of them); a number with a comma decides the decimal mark.
    """
    lines = sample.splitlines()
    header = lines[0] if lines else ""
    separator = max((",", ";", "\t"), key=header.count)
    if separator == "," or not header.count(separator):
        return ",", False
    cells = [c.strip() for line in lines[1:] for c in line.split(separator)]
    comma = sum(bool(re.fullmatch(r"-?\d+,\d+", c)) for c in cells)
    point = sum(bool(re.fullmatch(r"-?\d+\.\d+", c)) for c in cells)
    return separator, comma > point  # the mark most numbers use: an id `3,1` is no vote


def file_dialect(path: Path) -> tuple[str, bool]:
    """`csv_dialect` of a file (Parquet: no separator to guess, no decimal comma)."""
    if not is_csv(path):
        return ",", False
    with path.open(encoding="utf-8", errors="replace") as f:
        return csv_dialect(f.read(65_536))


def as_number(text: pl.Expr, decimal_comma: bool) -> pl.Expr:
    """Text cells (a column polars could not read as numbers) as the file's numbers:
    padding stripped (fixed-width exports), blanks and the null words missing, the file's
    decimal mark (and, with a decimal comma, points grouping thousands, as Excel in a
    German locale writes 1100 `1.100`); null where a cell is no number, which
    `not_a_number` then names."""
    cell = text.str.strip_chars()
    cell = pl.when(_blank(cell)).then(None).otherwise(cell)
    if decimal_comma:  # `1.234,5`: the point groups thousands where the comma is decimal
        grouped = cell.str.contains(GROUPED)
        cell = pl.when(grouped).then(cell.str.replace_all(".", "", literal=True)).otherwise(cell)
        cell = cell.str.replace(",", ".", literal=True)
    return cell.cast(pl.Float64, strict=False)


def _blank(stripped: pl.Expr) -> pl.Expr:
    return (stripped == "") | stripped.is_in(NULL_TEXT)


def not_a_number(text: pl.Expr, decimal_comma: bool, integer: bool = False) -> pl.Expr:
    """Cells that hold something, but no number (or, for `integer`, a fraction)."""
    number = as_number(text, decimal_comma)
    wrong = number.is_null() | ((number.round(0) != number) if integer else pl.lit(False))
    return text.is_not_null() & ~_blank(text.str.strip_chars()) & wrong
