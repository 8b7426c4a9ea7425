"""User-facing failures: one clear paragraph, a non-zero exit, no traceback."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rich.console import Console

if TYPE_CHECKING:  # imported by the data stages anyway; the others need not pay for it
    import pandera.errors


class VertiflowError(Exception):
    """A problem the user can fix (bad data, bad params); printed without a traceback."""


class DataError(VertiflowError):
    """Input data breaks the contract in `vertiflow.data.schemas`."""


def _rows(index: list[int]) -> str:
    shown = ", ".join(str(i + 1) for i in index[:5])
    return shown + (f" and {len(index) - 5} more" if len(index) > 5 else "")


def describe_schema_errors(source: str, err: pandera.errors.SchemaErrors) -> DataError:
    """Turn pandera's failure table into sentences naming file, column, rule and rows."""
    import polars as pl

    cases = err.failure_cases
    if not isinstance(cases, pl.DataFrame):
        cases = pl.from_pandas(cases)
    problems = []
    for (column, check), group in cases.group_by(["column", "check"], maintain_order=True):
        values = [str(v) for v in group["failure_case"].to_list()[:3]]
        index = [int(i) for i in group["index"].to_list() if i is not None]
        where = f" in {len(group)} row(s) (data rows {_rows(index)})" if index else ""
        what = f"column '{column}'" if column and column != source else "the table"
        seen = f"; found {', '.join(values)}" if values and values != ["None"] else ""
        problems.append(f"{what} breaks rule '{check}'{where}{seen}")
    return DataError(f"{source}: " + "; ".join(problems) + ".")


def exit_cleanly(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a stage command: user errors print as a red paragraph and exit with code 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except VertiflowError as exc:
            Console(stderr=True, soft_wrap=True).print(
                f"[bold red]error:[/] {exc}", highlight=False
            )
            sys.exit(1)

    return wrapper
