"""The prediction log as an app writes it: one file per request (README, "Serving").

5,000 requests of one row each, inputs resampled from the held-out batches, then
`vertiflow monitor --from-log oracle` on the log as written and after the hour is merged
(`monitor.compact_predictions`): files, bytes on disk, the monitor's wall clock and peak
memory, and the merge's own time. Needs `dvc repro` outputs.

Writes benchmarks/results/prediction_log_files.json.
Usage: python benchmarks/prediction_log_files.py
"""

from __future__ import annotations

import json
import shutil
import time
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl

from common import REPO, WORK, measure, write
from vertiflow.monitoring import monitor

REQUESTS = 5_000


def on_disk(folder) -> dict[str, float]:
    files = list(folder.glob("*.parquet"))
    return {"files": len(files), "mb": round(sum(f.stat().st_size for f in files) / 1e6, 2)}


def main() -> None:
    work = WORK / "prediction_log"
    shutil.rmtree(work, ignore_errors=True)
    log = work / "log"
    test = pl.read_parquet(REPO / "data/prepared/test.parquet")
    rows = np.random.default_rng(0).integers(0, test.height, REQUESTS).tolist()
    start = time.perf_counter()
    for i in rows:
        request = test[i : i + 1]
        monitor.log_predictions("oracle", "1", request, request["fresh_weight_g"], log)
    logging_s = time.perf_counter() - start
    folder = log / "predictions" / "oracle"
    cmd = [
        "vertiflow", "monitor", "--from-log", "oracle", "--root", str(log),
        "--out", str(work / "monitoring.json"), "--report-dir", str(work / "report"),
    ]  # fmt: skip
    before = {**on_disk(folder), "monitor": measure(cmd, REPO)}
    start = time.perf_counter()
    merged = monitor.compact_predictions(folder, datetime.now(UTC) + timedelta(hours=2))
    merge_s = time.perf_counter() - start
    after = {**on_disk(folder), "monitor": measure(cmd, REPO)}
    report = json.loads((work / "monitoring.json").read_text())
    figures = {
        "requests": REQUESTS,
        "logging_seconds": round(logging_s, 2),
        "as_logged": before,
        "merge": {"files_merged": merged, "seconds": round(merge_s, 2)},
        "merged": after,
        "rows_checked_after_merge": report["rows_current"],
    }
    print(json.dumps(figures, indent=2))
    print(write("prediction_log_files", figures))
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
