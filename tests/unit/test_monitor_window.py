"""The prediction log read over a window: a drift that started today must not be diluted
by months of earlier, normal traffic. No model, no DVC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from vertiflow.errors import DataError
from vertiflow.lifecycle.apps import ModelMonitor
from vertiflow.monitoring import drift, images, monitor

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def age(root, days: float) -> None:
    """What time does to a log: every file logged so far, `days` older."""
    for path in (root / "predictions" / "yolo").glob("*.parquet"):
        table = pl.read_parquet(path)
        table.with_columns(pl.col("logged_at") - timedelta(days=days)).write_parquet(path)


def test_a_new_drift_is_found_in_the_window_not_diluted_by_the_history(tmp_path):
    """40 darkened uploads: critical alone, 'ok' among 1,040 older normal rows."""
    mon = ModelMonitor(root=tmp_path)
    box = {"boxes": [{"class_name": "Acne", "confidence": 0.8}]}
    history = images.simulated_images(520, seed=1, size=64)
    mon.log_prediction([box] * len(history), input_data=history)
    mon.log_prediction([box] * len(history), input_data=history)
    age(tmp_path, 3)
    today = images.simulated_images(40, seed=2, size=64, scenario="dim")
    mon.log_prediction([box] * len(today), input_data=today)

    reference = images.features(images.simulated_images(400, seed=1000, size=64))
    thresholds = drift.Thresholds()
    whole = monitor.read_predictions("yolo", tmp_path)
    assert whole.height == 1080
    assert images.check(reference, whole, thresholds)["severity"] == "ok"  # diluted
    recent = monitor.read_predictions("yolo", tmp_path, monitor.parse_since("6h"))
    assert recent.height == 40
    report = images.check(reference, recent, thresholds)
    assert report["severity"] == "critical" and report["drifted"] == ["brightness"]

    later = datetime.now(UTC) + timedelta(hours=1)
    with pytest.raises(monitor.NothingToCheck, match=r"no predictions logged .* \(1080 earlier"):
        monitor.read_predictions("yolo", tmp_path, later)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("6h", NOW - timedelta(hours=6)),
        ("30m", NOW - timedelta(minutes=30)),
        ("7d", NOW - timedelta(days=7)),
        ("2w", NOW - timedelta(weeks=2)),
        ("1.5H", NOW - timedelta(hours=1.5)),
        ("2026-11-25T06:00Z", datetime(2026, 11, 25, 6, tzinfo=UTC)),
        ("2026-11-25T08:00+02:00", datetime(2026, 11, 25, 6, tzinfo=UTC)),
        ("2026-11-24", datetime(2026, 11, 24, tzinfo=UTC)),
    ],
)
def test_since_reads_durations_and_dates(text, expected):
    assert monitor.parse_since(text, now=NOW) == expected


@pytest.mark.parametrize("text", ["6", "h", "-6h", "0h", "6x", "six hours", ""])
def test_since_refuses_anything_else_clearly(text):
    with pytest.raises(DataError, match=r"--since .*: expected a duration .*30m, 6h, 7d"):
        monitor.parse_since(text, now=NOW)
