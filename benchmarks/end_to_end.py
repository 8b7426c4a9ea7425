"""The whole pipeline from a clean clone, stage by stage, and what DVC costs around it.

- End to end: `dvc repro -s <stage>` for each stage in pipeline order, in a clean clone
  with default params. Per stage: wall seconds, and the share outside the stage's MLflow
  run (process start, imports, DVC hashing and lock writing): the overhead (target: the
  pipeline under 4 minutes, overhead under 15 % of the total).
- No-op: `dvc repro` with everything up to date, against a trivial pipeline with the same
  stages, deps and outs shape whose commands do nothing (DVC's own floor; target 1.5x).
- Incremental: one Cortex param changed, `dvc repro` again, as a share of the full run
  (target 0.15).
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

import mlflow
import yaml

from common import WORK, write

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from conftest import clone_checkout, commit_all, run, set_params


def timed(cmd: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    run(cmd, cwd, timeout=1800)
    return time.perf_counter() - start


def trivial_pipeline(repo: Path, dest: Path) -> Path:
    """Same stages, deps and outs as dvc.yaml; each command only writes tiny outputs."""
    dest.mkdir(parents=True)
    stages = yaml.safe_load((repo / "dvc.yaml").read_text())["stages"]
    outs = {
        name: [next(iter(o)) if isinstance(o, dict) else o for o in st.get("outs", [])]
        + [next(iter(m)) for m in st.get("metrics", [])]
        for name, st in stages.items()
    }
    every_out = [o for paths in outs.values() for o in paths]
    trivial = {}
    for name, stage in stages.items():
        deps = set()
        for dep in stage.get("deps", []):
            if dep.startswith(("stages/", "src/", "configs/", "${")):
                continue
            deps.add(next((o for o in every_out if dep.startswith(o + "/")), dep))
        files = [o for o in outs[name] if o.endswith((".json", ".png"))]
        dirs = [o for o in outs[name] if o not in files]
        cmd = " && ".join(
            [f"mkdir -p {d} && echo {name} > {d}/x" for d in dirs]
            + [f"mkdir -p $(dirname {f}) && echo {name} > {f}" for f in files]
        )
        trivial[name] = {"cmd": cmd, "deps": sorted(deps), "outs": outs[name]}
    (dest / "dvc.yaml").write_text(yaml.safe_dump({"stages": trivial}, sort_keys=False))
    run(["git", "init", "-q"], dest)
    run(["dvc", "init", "-q"], dest)
    run(["dvc", "repro"], dest)
    return dest


def main() -> None:
    work = WORK / "end_to_end"
    shutil.rmtree(work, ignore_errors=True)
    (work / "repo").mkdir(parents=True)
    repo = clone_checkout(work / "repo")
    # dvc.yaml lists the stages in an order where each one's deps come earlier.
    order = [s.split()[0] for s in run(["dvc", "stage", "list"], repo).stdout.splitlines()]
    walls = {}
    for stage in order:
        walls[stage] = round(timed(["dvc", "repro", "-s", stage], repo), 2)
    mlflow.set_tracking_uri(f"sqlite:///{repo / '.mlflow' / 'mlflow.db'}")
    runs = {
        r.data.tags["stage"]: (r.info.end_time - r.info.start_time) / 1000
        for r in mlflow.search_runs(experiment_names=["vertiflow-models"], output_format="list")
    }
    total = sum(walls.values())
    stages = {
        s: {
            "seconds": walls[s],
            "inside_mlflow_run": round(runs.get(s, 0.0), 2),
            "overhead_share": round(1 - runs.get(s, 0.0) / walls[s], 3),
        }
        for s in order
    }
    overhead = sum(walls[s] - runs.get(s, 0.0) for s in order)
    commit_all(repo, "reproduced")

    noop = min(timed(["dvc", "repro"], repo) for _ in range(3))
    floor_repo = trivial_pipeline(repo, work / "trivial")
    floor = min(timed(["dvc", "repro"], floor_repo) for _ in range(3))

    set_params(repo, {"optimise_cortex.energy.peak_price": 1.3})
    incremental = timed(["dvc", "repro"], repo)

    figures = {
        "method": "clean clone, default params, `dvc repro -s <stage>` in pipeline order",
        "stages": stages,
        "total_seconds": round(total, 1),
        "overhead_seconds": round(overhead, 1),
        "overhead_share": round(overhead / total, 3),
        "noop_repro_seconds": round(noop, 2),
        "trivial_pipeline_noop_seconds": round(floor, 2),
        "noop_ratio": round(noop / floor, 2),
        "incremental_cortex_param_seconds": round(incremental, 1),
        "incremental_ratio": round(incremental / total, 3),
        "targets": {
            "total_under_240s": total < 240,
            "overhead_under_15pct": overhead / total < 0.15,
            "noop_ratio_at_most_1_5": noop / floor <= 1.5,
            "incremental_ratio_at_most_0_15": incremental / total <= 0.15,
        },
    }
    print(json.dumps(figures, indent=2))
    print(write("end_to_end", figures))
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
