"""Screenshot of a pull-request report as a reviewer sees it, for the docs: docs/report.png.

Renders the Markdown that `vertiflow report` wrote (tables, `<details>` and the plot PNGs
beside it) to HTML with markdown-it-py, in GitHub's comment style, and photographs it in
headless Chromium with the network off.

    vertiflow report --base HEAD        # writes report/report.md and its PNGs
    python tools/screenshot_report.py [report/report.md] [--out docs/report.png]

Needs Chromium (`apt-get install -y chromium`) and markdown-it-py (in the dev lock).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from chromium import screenshot
from markdown_it import MarkdownIt

ROOT = Path(__file__).resolve().parents[1]
STYLE = """
body { font: 14px/1.5 -apple-system, "Segoe UI", "Noto Sans", Helvetica, Arial, sans-serif;
       color: #1f2328; max-width: 980px; margin: 24px auto; padding: 0 16px; }
table { border-collapse: collapse; margin: 8px 0 16px; }
th, td { border: 1px solid #d1d9e0; padding: 4px 12px; }
th { background: #f6f8fa; }
tr:nth-child(2n) td { background: #f6f8fa; }
code { background: #eff1f3; padding: 1px 4px; border-radius: 4px; font-size: 85%; }
img { max-width: 100%; }
h1, h2 { border-bottom: 1px solid #d1d9e0; padding-bottom: 4px; }
"""


def render(markdown: str) -> str:
    """GitHub-flavoured enough for the report: tables, inline HTML (`<details>`)."""
    body = MarkdownIt("commonmark", {"html": True}).enable("table").render(markdown)
    return f'<!doctype html><meta charset="utf-8"><style>{STYLE}</style>{body}'


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path, nargs="?", default=ROOT / "report" / "report.md")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "report.png")
    parser.add_argument("--window", default="1100,2400", help="width,height in pixels")
    parser.add_argument("--chromium", default=os.environ.get("CHROMIUM", "/usr/bin/chromium"))
    args = parser.parse_args()
    if not args.report.is_file():
        sys.exit(f"{args.report} not found: run `vertiflow report --base <rev>` first")
    if not Path(args.chromium).exists():
        sys.exit(f"{args.chromium} not found: apt-get install -y chromium")

    # Beside the report, so that its relative image links resolve.
    page = args.report.with_suffix(".html")
    page.write_text(render(args.report.read_text()), encoding="utf-8")
    out = screenshot(args.chromium, args.window, page.resolve().as_uri(), args.out)
    print(f"{out}: {out.stat().st_size // 1024} KiB, from {args.report}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
