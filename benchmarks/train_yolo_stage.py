"""train_yolo as the pipeline runs it, twice: wall time (target < 150 s on 2 CPU cores),
mAP50 (target >= 0.90) and the run-to-run spread of the metrics (the stated tolerance).
Needs `dvc repro` outputs (the built-in dataset) first."""

from __future__ import annotations

import json
import shutil
import sys

from common import REPO, WORK, measure, write

RUNS = 2


def main() -> None:
    work = WORK / "yolo"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    timings, reports = [], []
    for i in range(RUNS):
        out = work / f"run{i}"
        (out / "metrics").mkdir(parents=True)
        cmd = [
            sys.executable, str(REPO / "stages/train_yolo.py"),
            "--out", str(out / "yolo"), "--metrics", str(out / "metrics"),
        ]  # fmt: skip
        timings.append(measure(cmd, REPO))
        reports.append(json.loads((out / "metrics" / "yolo.json").read_text()))
    keys = ("mAP50", "mAP50-95", "precision", "recall")
    figures = {
        "runs": [{**t, **{k: r[k] for k in keys}} for t, r in zip(timings, reports, strict=True)],
        "worst_seconds": max(t["seconds"] for t in timings),
        "mAP50": reports[0]["mAP50"],
        "spread": {
            k: round(max(r[k] for r in reports) - min(r[k] for r in reports), 6) for k in keys
        },
        "target_under_150s": max(t["seconds"] for t in timings) < 150,
        "target_map50_0.90": reports[0]["mAP50"] >= 0.90,
    }
    print(json.dumps(figures, indent=2))
    print(write("train_yolo_stage", figures))
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
