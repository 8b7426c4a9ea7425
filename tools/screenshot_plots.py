"""Screenshot of the `dvc plots show` page, for the docs: writes docs/plots.png.

Runs plain `dvc plots show` in the repository root (the page lands in dvc_plots/index.html
and loads vega from tools/plots/node_modules through the repo's plots.html_template), checks
in headless Chromium that every chart on it was drawn, then takes the screenshot.

    python tools/screenshot_plots.py [--out docs/plots.png] [--window 1600,1300]

Needs `npm ci --prefix tools/plots` and Chromium (`apt-get install -y chromium`). Standard
library only.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from chromium import OFFLINE_FLAGS, chromium, screenshot

ROOT = Path(__file__).resolve().parents[1]
FLAGS = [*OFFLINE_FLAGS, "--virtual-time-budget=15000"]


def find_dvc() -> str:
    beside_python = Path(sys.executable).parent / "dvc"
    found = str(beside_python) if beside_python.exists() else shutil.which("dvc")
    if not found:
        sys.exit("dvc not found: activate the project's virtual environment")
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "plots.png")
    parser.add_argument("--window", default="1600,1300", help="width,height in pixels")
    parser.add_argument("--chromium", default=os.environ.get("CHROMIUM", "/usr/bin/chromium"))
    args = parser.parse_args()

    if not Path(args.chromium).exists():
        sys.exit(f"{args.chromium} not found: apt-get install -y chromium")
    if not (ROOT / "tools" / "plots" / "node_modules" / "vega-embed").is_dir():
        sys.exit("tools/plots/node_modules missing: npm ci --prefix tools/plots")

    subprocess.run([find_dvc(), "plots", "show"], cwd=ROOT, check=True)
    url = (ROOT / "dvc_plots" / "index.html").as_uri()

    dom = chromium(args.chromium, args.window, "--dump-dom", url, flags=FLAGS).stdout
    charts = len(re.findall(r'<div id="[^"]*" class="vega-embed', dom))
    drawn = len(re.findall(r'<(?:canvas|svg)\b[^>]*class="marks"', dom))
    if charts == 0 or drawn != charts:
        sys.exit(f"only {drawn} of {charts} charts were drawn: no screenshot taken")

    out = screenshot(args.chromium, args.window, url, args.out, flags=FLAGS)
    print(f"{out}: {drawn} charts, {out.stat().st_size // 1024} KiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
