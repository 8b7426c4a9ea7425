"""Bad input through real `dvc repro`: a clear error, non-zero exit, nothing lost."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest

from vertiflow.testing import run, set_params, tree_digest


def _farm(repo: Path) -> Path:
    """A user's own data folder, starting as a faithful copy of the simulated raw tables."""
    farm = repo / "data" / "farm"
    farm.mkdir()
    for name in ("batches", "telemetry", "harvests"):
        pl.read_parquet(repo / "data" / "raw" / f"{name}.parquet").write_parquet(
            farm / f"{name}.parquet"
        )
    return farm


ROW = pl.int_range(pl.len())  # each row's index: corruptions pick rows by it


def _set(frame: pl.DataFrame, column: str, where: pl.Expr, value) -> pl.DataFrame:
    """`column` with `value` on the rows where `where` holds (a literal: wrap it in pl.lit)."""
    return frame.with_columns(pl.when(where).then(value).otherwise(column).alias(column))


def _as_csv(farm: Path, name: str) -> pl.DataFrame:
    frame = pl.read_parquet(farm / f"{name}.parquet")
    (farm / f"{name}.parquet").unlink()
    return frame


def missing_column(farm: Path) -> None:
    _as_csv(farm, "harvests").drop("fresh_weight_g").write_csv(farm / "harvests.csv")


def wrong_type(farm: Path) -> None:
    frame = _as_csv(farm, "harvests").with_columns(pl.col("fresh_weight_g").cast(pl.String))
    frame = _set(frame, "fresh_weight_g", ROW == 3, pl.lit("heavy"))
    frame.write_csv(farm / "harvests.csv")


def out_of_range(farm: Path) -> None:
    frame = pl.read_parquet(farm / "harvests.parquet")
    _set(frame, "fresh_weight_g", ROW < 2, -5.0).write_parquet(farm / "harvests.parquet")


def nans(farm: Path) -> None:
    frame = pl.read_parquet(farm / "batches.parquet")
    _set(frame, "air_temp_setpoint", ROW == 7, float("nan")).write_parquet(farm / "batches.parquet")


def duplicate_ids(farm: Path) -> None:
    frame = pl.read_parquet(farm / "batches.parquet")
    pl.concat([frame, frame.head(2)]).write_parquet(farm / "batches.parquet")


def empty_file(farm: Path) -> None:
    (farm / "telemetry.parquet").unlink()
    (farm / "telemetry.csv").write_bytes(b"")


def unreadable_file(farm: Path) -> None:
    (farm / "harvests.parquet").write_bytes(b"PAR1 this is not really parquet \x00\x01\x02")


def widespread_glitches(farm: Path) -> None:
    frame = pl.read_parquet(farm / "telemetry.parquet")
    _set(frame, "water_ph", ROW % 10 == 0, 999.0).write_parquet(farm / "telemetry.parquet")


def latin1_encoding(farm: Path) -> None:
    frame = _as_csv(farm, "batches").with_columns(pl.lit("R01-Mé").alias("module_id"))
    (farm / "batches.csv").write_bytes(frame.write_csv().encode("latin-1"))


def truncated_parquet(farm: Path) -> None:
    path = farm / "harvests.parquet"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def pipe_delimiter(farm: Path) -> None:  # `;` and tabs are read (spreadsheet locales)
    _as_csv(farm, "harvests").write_csv(farm / "harvests.csv", separator="|")


def headers_only(farm: Path) -> None:
    _as_csv(farm, "harvests").head(0).write_csv(farm / "harvests.csv")


def duplicated_column(farm: Path) -> None:
    text = _as_csv(farm, "harvests").write_csv().splitlines()
    header = text[0] + ",fresh_weight_g"
    rows = [line + "," + line.split(",")[2] for line in text[1:]]
    (farm / "harvests.csv").write_text("\n".join([header, *rows]) + "\n")


def mixed_types(farm: Path) -> None:
    frame = _as_csv(farm, "batches").with_columns(pl.col("cycle_days").cast(pl.String))
    _set(frame, "cycle_days", ROW == 5, pl.lit("thirty")).write_csv(farm / "batches.csv")


def extreme_setpoint(farm: Path) -> None:
    frame = pl.read_parquet(farm / "batches.parquet")
    _set(frame, "air_temp_setpoint", ROW == 9, 1e12).write_parquet(farm / "batches.parquet")


def harvest_before_start(farm: Path) -> None:
    frame = pl.read_parquet(farm / "harvests.parquet")
    _set(
        frame, "harvest_date", ROW == 0, pl.col("harvest_date") - pl.duration(days=400)
    ).write_parquet(farm / "harvests.parquet")


def blank_crop(farm: Path) -> None:  # any crop name is data, but it needs a name
    frame = pl.read_parquet(farm / "batches.parquet")
    _set(frame, "crop", ROW == 2, pl.lit("")).write_parquet(farm / "batches.parquet")


def unknown_grade(farm: Path) -> None:
    frame = pl.read_parquet(farm / "harvests.parquet")
    _set(frame, "quality_grade", ROW == 1, pl.lit("GOLD")).write_parquet(farm / "harvests.parquet")


def negative_energy(farm: Path) -> None:
    frame = pl.read_parquet(farm / "harvests.parquet")
    frame.with_columns(pl.lit(-1.0).alias("energy_kwh")).write_parquet(farm / "harvests.parquet")


def zero_cycle_days(farm: Path) -> None:
    frame = pl.read_parquet(farm / "batches.parquet")
    frame.with_columns(pl.lit(0).alias("cycle_days")).write_parquet(farm / "batches.parquet")


def missing_table(farm: Path) -> None:
    (farm / "harvests.parquet").unlink()


def binary_garbage_csv(farm: Path) -> None:
    (farm / "batches.parquet").unlink()
    (farm / "batches.csv").write_bytes(bytes(range(256)) * 40)


def unparseable_timestamps(farm: Path) -> None:
    frame = _as_csv(farm, "harvests").with_columns(pl.col("harvest_date").cast(pl.String))
    _set(frame, "harvest_date", ROW == 4, pl.lit("next tuesday")).write_csv(farm / "harvests.csv")


def telemetry_missing_sensor(farm: Path) -> None:
    frame = pl.read_parquet(farm / "telemetry.parquet")
    frame.drop("water_ph").write_parquet(farm / "telemetry.parquet")


def humidity_as_fraction(farm: Path) -> None:
    """0.65 for 65 %: inside 0..100, so only its setpoints show the unit."""
    frame = pl.read_parquet(farm / "telemetry.parquet")
    frame.with_columns(pl.col("air_humidity") / 100).write_parquet(farm / "telemetry.parquet")


CASES: list[tuple[Callable[[Path], None], str, list[str]]] = [
    (missing_column, "prepare", ["data/farm/harvests.csv", "missing column", "fresh_weight_g"]),
    (wrong_type, "prepare", ["data/farm/harvests.csv", "fresh_weight_g", "heavy", "data rows 4"]),
    (
        out_of_range,
        "prepare",
        ["data/farm/harvests.parquet", "fresh_weight_g", "greater_than", "-5.0"],
    ),
    (
        humidity_as_fraction,
        "prepare",
        [
            "data/farm/telemetry.parquet",
            "'air_humidity'",
            "'humidity_setpoint'",
            "expected both in %",
        ],
    ),
    (
        nans,
        "prepare",
        ["data/farm/batches.parquet", "air_temp_setpoint", "not_nullable", "data rows 8"],
    ),
    (duplicate_ids, "prepare", ["data/farm/batches.parquet", "batch_id", "unique"]),
    (empty_file, "prepare", ["data/farm/telemetry.csv", "empty"]),
    (unreadable_file, "prepare", ["data/farm/harvests.parquet", "cannot be read as Parquet"]),
    (
        widespread_glitches,
        "validate",
        ["water_ph", "10.0", "outside its physical bounds", "validate.max_glitch_fraction"],
    ),
    (latin1_encoding, "prepare", ["data/farm/batches.csv"]),
    (truncated_parquet, "prepare", ["data/farm/harvests.parquet", "cannot be read as Parquet"]),
    (pipe_delimiter, "prepare", ["data/farm/harvests.csv", "read as one column"]),
    (headers_only, "prepare", ["data/farm/harvests.csv", "no rows"]),
    (duplicated_column, "prepare", ["data/farm/harvests.csv", "fresh_weight_g", "more than once"]),
    (mixed_types, "prepare", ["data/farm/batches.csv", "cycle_days", "thirty"]),
    (extreme_setpoint, "prepare", ["data/farm/batches.parquet", "air_temp_setpoint", "in_range"]),
    (harvest_before_start, "prepare", ["data/farm/harvests.parquet", "before their batch started"]),
    (blank_crop, "prepare", ["data/farm/batches.parquet", "crop", "str_length", "data rows 3"]),
    (unknown_grade, "prepare", ["data/farm/harvests.parquet", "quality_grade", "GOLD"]),
    (negative_energy, "prepare", ["data/farm/harvests.parquet", "energy_kwh", "in_range"]),
    (zero_cycle_days, "prepare", ["data/farm/batches.parquet", "cycle_days", "in_range"]),
    (missing_table, "prepare", ["data/farm", "harvests"]),
    (binary_garbage_csv, "prepare", ["data/farm/batches.csv"]),
    (unparseable_timestamps, "prepare", ["data/farm/harvests.csv", "harvest_date"]),
    (telemetry_missing_sensor, "prepare", ["data/farm/telemetry.parquet", "water_ph"]),
]


@pytest.mark.reliability
@pytest.mark.parametrize(
    ("corrupt", "stage", "expected"), CASES, ids=[c[0].__name__ for c in CASES]
)
def test_bad_input_fails_clearly_and_keeps_outputs(small_copy, corrupt, stage, expected):
    repo = small_copy
    kept = tree_digest(repo / "models", repo / "metrics")
    lock = (repo / "dvc.lock").read_text()
    corrupt(_farm(repo))
    set_params(repo, {"prepare.raw_dir": "data/farm"})

    proc = run(["dvc", "repro"], repo, check=False)
    output = proc.stdout + proc.stderr

    assert proc.returncode != 0
    assert f"failed to reproduce '{stage}'" in output
    for fragment in expected:
        assert fragment in output, f"{fragment!r} missing from:\n{output}"
    assert "Traceback" not in output
    assert "train_oracle" not in proc.stdout  # nothing downstream ran
    after = tree_digest(repo / "models", repo / "metrics")
    if stage == "prepare":
        assert (repo / "dvc.lock").read_text() == lock
    else:  # prepare did succeed; a failed validation keeps its report (persist) for the user
        report = str(repo / "metrics" / "validation.json")
        assert "max_glitch_fraction" in after.pop(report).decode()
        kept.pop(report)
    assert after == kept
