"""tools/screenshot_report.py: the committed example report (docs/report/) rendered as
GitHub renders a comment, photographed in headless Chromium with no network."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

from PIL import Image

from vertiflow.testing import REPO


def test_the_report_renders_with_its_tables_details_and_plots(tmp_path):
    report = tmp_path / "report"
    shutil.copytree(REPO / "docs" / "report", report)
    out = tmp_path / "report.png"
    tool = REPO / "tools" / "screenshot_report.py"
    done = subprocess.run(
        [sys.executable, str(tool), str(report / "report.md"), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    page = (report / "report.html").read_text(encoding="utf-8")
    assert '<meta charset="utf-8">' in page and "<details>" in page
    assert page.count("<table>") >= 3  # verdicts, params, every metric
    linked = set(re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", (report / "report.md").read_text()))
    shown = set(re.findall(r'<img src="([^"]+\.png)"', page))
    assert linked and shown == linked  # every plot the report links, and none missing
    assert all((report / name).is_file() for name in shown)
    with Image.open(out) as shot:
        assert shot.size == (1100, 2400)
        colours = shot.convert("L").getextrema()
        assert colours[0] < 100 < colours[1]  # text drawn on the page, not a blank shot
