"""optimise_cortex as the pipeline runs it: wall time (target < 30 s on 2 cores) and
determinism (identical recipes on repeated runs). Needs `dvc repro` outputs first."""

from __future__ import annotations

import json
import shutil
import sys

from common import REPO, WORK, measure, write

RUNS = 3


def main() -> None:
    work = WORK / "cortex"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    shutil.copy(REPO / "params.yaml", work / "params.yaml")
    timings, recipes = [], []
    for i in range(RUNS):
        out = work / f"run{i}"
        (out / "metrics").mkdir(parents=True)
        cmd = [
            sys.executable,
            str(REPO / "stages/optimise_cortex.py"),
            "--prepared",
            str(REPO / "data/prepared"),
            "--models",
            str(REPO / "models"),
            "--out",
            str(out / "cortex"),
            "--metrics",
            str(out / "metrics"),
        ]
        timings.append(measure(cmd, work))
        recipes.append((out / "cortex" / "recipes.json").read_text())
    metrics = json.loads((work / "run0" / "metrics" / "cortex.json").read_text())
    figures = {
        "runs": timings,
        "worst_seconds": max(t["seconds"] for t in timings),
        "identical_recipes_across_runs": len(set(recipes)) == 1,
        "regret": {k: v["regret"] for k, v in metrics.items() if isinstance(v, dict)},
        "target_under_30s": max(t["seconds"] for t in timings) < 30,
    }
    print(json.dumps(figures, indent=2))
    print(write("cortex_stage", figures))
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
