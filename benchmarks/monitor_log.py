"""`vertiflow monitor --from-log` on 1M logged predictions (target < 20 s on 2 cores).

The log is written as an app would: 100 batches of 10,000 predictions, each its own
Parquet file, inputs resampled from the held-out batches. Needs `dvc repro` outputs.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import polars as pl

from common import REPO, WORK, measure, write
from vertiflow.monitoring import monitor

ROWS, BATCHES = 1_000_000, 100


def main() -> None:
    work = WORK / "monitor"
    shutil.rmtree(work, ignore_errors=True)
    test = pl.read_parquet(REPO / "data/prepared/test.parquet")
    rng = np.random.default_rng(0)
    per = ROWS // BATCHES
    for _ in range(BATCHES):
        batch = test[rng.integers(0, test.height, per).tolist()]
        monitor.log_predictions("oracle", "1", batch, batch["fresh_weight_g"], work / "log")
    cmd = [
        "vertiflow", "monitor", "--from-log", "oracle", "--root", str(work / "log"),
        "--out", str(work / "monitoring.json"), "--report-dir", str(work / "report"),
    ]  # fmt: skip
    timing = measure(cmd, REPO)
    report = json.loads((work / "monitoring.json").read_text())
    figures = {
        "logged_predictions": report["rows_current"],
        "log_files": BATCHES,
        **timing,
        "severity": report["severity"],
        "target_under_20s": timing["seconds"] < 20,
    }
    print(json.dumps(figures, indent=2))
    print(write("monitor_log", figures))
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
