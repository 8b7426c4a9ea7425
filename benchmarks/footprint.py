"""What the test suite needs of a machine: its time and the disk it takes.

CI runs on the machine a session used, right after it, and a full disk there fails and
stalls tests in ways that read like bugs. Run after a full `pytest` (or `.ci/run`),
giving its output, in the checkout whose `.venv` ran it:

    python benchmarks/footprint.py --pytest-log ci.log

Figures: the suite's own time (pytest's closing line), the environment's size (`.venv`,
PyTorch included) and the size of the last run's scratch folders (pytest's basetemp).
"""

from __future__ import annotations

import argparse
import getpass
import re
import tempfile
from pathlib import Path

from common import REPO, write

GB = 1024**3


def size(folder: Path) -> int:
    return sum(p.lstat().st_size for p in folder.rglob("*") if not p.is_symlink())


def suite_seconds(log: Path) -> tuple[float, str]:
    """pytest's closing line, e.g. '== 468 passed, 14 warnings in 851.74s (0:14:11) =='."""
    lines = [line for line in log.read_text().splitlines() if re.search(r" in [\d.]+s", line)]
    if not lines:
        raise SystemExit(f"{log}: no pytest closing line ('... in N s') found")
    return float(re.search(r" in ([\d.]+)s", lines[-1]).group(1)), lines[-1].strip("= ")


def last_run(root: Path) -> Path:
    runs = [p for p in root.glob("pytest-[0-9]*") if p.is_dir()]
    if not runs:
        raise SystemExit(f"{root}: no pytest run's folder here; run the suite first")
    return max(runs, key=lambda p: int(p.name.split("-")[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pytest-log", type=Path, required=True)
    parser.add_argument("--venv", type=Path, default=REPO / ".venv")
    args = parser.parse_args()
    seconds, closing = suite_seconds(args.pytest_log)
    scratch = last_run(Path(tempfile.gettempdir()) / f"pytest-of-{getpass.getuser()}")
    figures = {
        "suite_seconds": seconds,
        "suite_closing_line": closing,
        "venv_gb": round(size(args.venv) / GB, 2),
        "last_run_scratch_gb": round(size(scratch) / GB, 2),
    }
    figures["needed_gb"] = round(figures["venv_gb"] + figures["last_run_scratch_gb"], 1)
    print(write("footprint", figures))


if __name__ == "__main__":
    main()
