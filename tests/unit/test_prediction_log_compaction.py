"""An app logs one file per request; hours that are over are merged into one file each,
and no row is read twice or lost on the way (monitor.compact_predictions)."""

from __future__ import annotations

import shutil
import time
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from vertiflow.errors import DataError
from vertiflow.monitoring import monitor


def log_requests(root, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        table = pl.DataFrame({"co2_mean": [800.0 + i]})
        monitor.log_predictions("oracle", "1", table, [float(i)], root)


def later() -> datetime:
    return datetime.now(UTC) + timedelta(hours=2)  # this hour is then over


def test_an_hour_of_one_row_files_becomes_one_file_with_every_row(tmp_path):
    log_requests(tmp_path, 6)
    folder = tmp_path / "predictions" / "oracle"
    before = monitor.read_predictions("oracle", tmp_path).sort("logged_at")
    assert monitor.compact_predictions(folder, later()) == 6
    (hour_file,) = folder.glob("*.parquet")
    assert hour_file.name.endswith("-hour.parquet")
    assert monitor.read_predictions("oracle", tmp_path).equals(before)
    assert monitor.prediction_counts(tmp_path) == {"oracle": 6}
    assert monitor.compact_predictions(folder, later()) == 0  # nothing new


def test_rows_logged_late_in_a_merged_hour_join_it_and_none_is_counted_twice(tmp_path):
    log_requests(tmp_path, 3)
    folder = tmp_path / "predictions" / "oracle"
    kept = next(folder.glob("*.parquet"))
    shutil.copy(kept, tmp_path / "copy")
    monitor.compact_predictions(folder, later())
    # a crash between writing the hour file and removing what it holds, and one mid-merge
    shutil.copy(tmp_path / "copy", kept)
    (folder / "20250101T00-hour.tmp").write_bytes(b"half a file")
    assert monitor.prediction_counts(tmp_path) == {"oracle": 3}
    log_requests(tmp_path, 2, start=3)  # same hour, after the merge
    assert monitor.prediction_counts(tmp_path) == {"oracle": 5}
    assert monitor.compact_predictions(folder, later()) == 2
    assert [f.name.endswith("-hour.parquet") for f in folder.glob("*")] == [True]
    log = monitor.read_predictions("oracle", tmp_path)
    assert sorted(log["prediction"].to_list()) == [0.0, 1.0, 2.0, 3.0, 4.0]


def test_the_first_request_of_an_hour_merges_the_hours_before(tmp_path):
    log_requests(tmp_path, 2)
    folder = tmp_path / "predictions" / "oracle"
    for f in folder.glob("*.parquet"):  # as if logged yesterday
        f.rename(folder / f"{(datetime.now(UTC) - timedelta(days=1)):%Y%m%dT%H}{f.name[11:]}")
    monitor._COMPACTED.clear()  # a process that has not logged this hour yet
    log_requests(tmp_path, 1, start=2)
    deadline = time.monotonic() + 10
    while len(list(folder.glob("*.parquet"))) != 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    names = sorted(f.name for f in folder.glob("*.parquet"))
    assert len(names) == 2 and names[0].endswith("-hour.parquet"), names
    assert monitor.prediction_counts(tmp_path) == {"oracle": 3}


def test_a_window_s_hours_are_the_prefixes_of_its_log_files(tmp_path):
    """ml_monitoring.yml syncs only these prefixes: every file of the window, merged
    hour or not, and none older."""
    log_requests(tmp_path, 2)
    folder = tmp_path / "predictions" / "oracle"
    monitor.compact_predictions(folder, later())
    log_requests(tmp_path, 1, start=2)
    now = datetime.now(UTC)
    hours = monitor.hour_prefixes(now - timedelta(hours=7), now)
    assert len(hours) == 8 and hours[-1] == f"{now:%Y%m%dT%H}"
    assert all(any(f.name.startswith(h) for h in hours) for f in folder.glob("*.parquet"))
    assert not monitor.hour_prefixes(now + timedelta(hours=1), now)
    yesterday = monitor.hour_prefixes(now - timedelta(days=1), now - timedelta(hours=23))
    assert not any(f.name.startswith(h) for h in yesterday for f in folder.glob("*.parquet"))


def test_log_hours_prints_one_hour_a_line_and_names_a_bad_window():
    from typer.testing import CliRunner

    from vertiflow.cli import app

    out = CliRunner().invoke(app, ["log-hours", "--since", "2h"])
    assert out.exit_code == 0 and len(out.stdout.split()) == 3
    bad = CliRunner().invoke(app, ["log-hours", "--since", "yesterday"])
    assert bad.exit_code == 1 and "--since 'yesterday'" in bad.output


def test_a_process_that_logs_once_and_exits_finishes_the_merge_it_started(tmp_path):
    """A script that logs one prediction and ends (the seed's scripts do) must not leave
    a merge half done: the merge thread is joined at exit, not killed."""
    import subprocess
    import sys

    log_requests(tmp_path, 40)
    folder = tmp_path / "predictions" / "oracle"
    for f in folder.glob("*.parquet"):  # as if logged yesterday
        f.rename(folder / f"{(datetime.now(UTC) - timedelta(days=1)):%Y%m%dT%H}{f.name[11:]}")
    script = (
        "import sys, polars as pl; from pathlib import Path;"
        "from vertiflow.monitoring import monitor;"
        "t = pl.DataFrame({'co2_mean': [1.0]});"
        "monitor.log_predictions('oracle', '1', t, [0.0], Path(sys.argv[1]))"
    )
    subprocess.run([sys.executable, "-c", script, str(tmp_path)], check=True, timeout=120)
    names = sorted(f.name for f in folder.glob("*"))
    assert len(names) == 2 and names[0].endswith("-hour.parquet"), names


def test_an_unreadable_log_file_is_named_not_a_traceback(tmp_path):
    """A log file cut short (a sync, a full disk): `vertiflow monitor --from-log` and
    `get_prediction_stats` ended in polars' "File out of specification", naming no file."""
    log_requests(tmp_path, 3)
    folder = tmp_path / "predictions" / "oracle"
    broken = folder / f"{datetime.now(UTC):%Y%m%dT%H%M%S%f}-broken00.parquet"
    broken.write_bytes(b"PAR1")
    for read in (monitor.read_predictions, monitor.prediction_counts):
        args = ("oracle", tmp_path) if read is monitor.read_predictions else (tmp_path,)
        with pytest.raises(DataError, match=f"{broken}: not a readable Parquet file"):
            read(*args)


def test_an_unreadable_log_file_stays_out_of_its_hour_s_merge(tmp_path):
    """It failed the merge of its whole hour, every hour, in the app's background thread,
    where nobody saw it; the readable files of that hour stayed unmerged."""
    log_requests(tmp_path, 3)
    folder = tmp_path / "predictions" / "oracle"
    broken = folder / f"{datetime.now(UTC):%Y%m%dT%H%M%S%f}-broken00.parquet"
    broken.write_bytes(b"PAR1")
    assert monitor.compact_predictions(folder, later()) == 3
    assert sorted(f.name.endswith("-hour.parquet") for f in folder.glob("*.parquet")) == [
        False,
        True,
    ]
    assert broken.exists()  # still named by the readers, to be restored or moved aside
    broken.unlink()
    assert monitor.prediction_counts(tmp_path) == {"oracle": 3}
