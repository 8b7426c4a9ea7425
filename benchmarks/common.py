"""Shared by the benchmark scripts: timing a command's wall clock and peak memory, results."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results"
WORK = HERE / ".work"  # git-ignored scratch space

_MEASURE = """
import resource, subprocess, sys, time
start = time.perf_counter()
code = subprocess.run(sys.argv[1:]).returncode
wall = time.perf_counter() - start
peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(f"@@{code} {wall} {peak_kb}")
"""


def measure(cmd: list[str], cwd: Path) -> dict[str, float]:
    """Run `cmd` in a fresh wrapper process: wall seconds and peak RSS of its largest child."""
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    env.pop("MLFLOW_TRACKING_URI", None)
    out = subprocess.run(
        [sys.executable, "-c", _MEASURE, *cmd], cwd=cwd, env=env, capture_output=True, text=True
    )
    line = [x for x in out.stdout.splitlines() if x.startswith("@@")][-1]
    code, wall, peak_kb = line[2:].split()
    if int(code) != 0:
        raise RuntimeError(f"{cmd} failed:\n{out.stdout}\n{out.stderr}")
    return {"seconds": round(float(wall), 2), "peak_mb": round(int(peak_kb) / 1024, 1)}


def machine() -> dict[str, object]:
    return {
        "date": dt.date.today().isoformat(),
        "cpu_cores": psutil.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def write(name: str, figures: dict) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **figures}, indent=2) + "\n")
    return path
