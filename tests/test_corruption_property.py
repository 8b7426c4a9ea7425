"""Property: any corruption of a valid raw file ends in success or one clear DataError.

Hypothesis draws the corruption (truncation, byte flips, a cell replaced by text or an
extreme value, a dropped or duplicated column, duplicated rows, a wrong delimiter) and
where it lands. prepare's reading and aggregation must then either accept the data or
raise `DataError` naming the file; any other exception is a bug (a raw traceback).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vertiflow.data import dataset, rawdata
from vertiflow.errors import DataError
from vertiflow.farm.simulator import SimConfig, write_farm

pytestmark = pytest.mark.reliability
TABLES = ("batches", "harvests", "telemetry")


@pytest.fixture(scope="module")
def valid_farm(tmp_path_factory) -> Path:
    farm = tmp_path_factory.mktemp("farm")
    write_farm(farm, SimConfig(racks=2, modules_per_rack=2, cycles_per_module=6))
    for name in TABLES:  # CSV, the format a farm export most often breaks in
        pl.read_parquet(farm / f"{name}.parquet").write_csv(farm / f"{name}.csv")
        (farm / f"{name}.parquet").unlink()
    return farm


def corrupt(path: Path, kind: str, where: float, text: str) -> None:
    data = path.read_bytes()
    at = int(where * (len(data) - 1))
    if kind == "truncate":
        path.write_bytes(data[:at])
    elif kind == "flip_bytes":
        path.write_bytes(data[:at] + bytes(b ^ 0x5A for b in data[at : at + 8]) + data[at + 8 :])
    elif kind == "semicolons":
        path.write_bytes(data.replace(b",", b";"))
    else:
        frame = pl.read_csv(path, infer_schema_length=0)  # all strings: any cell can change
        row = int(where * (frame.height - 1))
        column = frame.columns[int(where * 997) % frame.width]
        if kind == "cell_text":
            frame = frame.with_columns(
                pl.when(pl.int_range(pl.len()) == row)
                .then(pl.lit(text))
                .otherwise(pl.col(column))
                .alias(column)
            )
        elif kind == "cell_extreme":
            frame = frame.with_columns(
                pl.when(pl.int_range(pl.len()) == row)
                .then(pl.lit("-1e300"))
                .otherwise(pl.col(column))
                .alias(column)
            )
        elif kind == "drop_column":
            frame = frame.drop(column)
        elif kind == "duplicate_rows":
            frame = pl.concat([frame, frame.slice(row, 3)])
        frame.write_csv(path)


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    table=st.sampled_from(TABLES),
    kind=st.sampled_from(
        [
            "truncate",
            "flip_bytes",
            "semicolons",
            "cell_text",
            "cell_extreme",
            "drop_column",
            "duplicate_rows",
        ]
    ),
    where=st.floats(0.0, 1.0),
    text=st.text(min_size=1, max_size=12).filter(lambda s: "\n" not in s and "\r" not in s),
)
def test_any_corruption_is_accepted_or_named(
    valid_farm, tmp_path_factory, table, kind, where, text
):
    farm = tmp_path_factory.mktemp("case")
    shutil.copytree(valid_farm, farm, dirs_exist_ok=True)
    corrupt(farm / f"{table}.csv", kind, where, text)
    try:
        dataset.build(rawdata.load(farm), 0.2)
    except DataError as err:
        assert str(farm) in str(err) or "params.yaml" in str(err), str(err)
