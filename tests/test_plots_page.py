"""`dvc plots show` works offline: every plot declared in dvc.yaml is drawn in headless Chromium.

DVC's own page loads vega, vega-lite and vega-embed from a CDN, so on a machine without
internet every chart is blank. The repo's template (tools/plots/template.html, set as
`plots.html_template` in .dvc/config) loads the npm-pinned copies under
tools/plots/node_modules instead. This test runs plain `dvc plots show` in a scratch copy of
the files it reads, opens the page it writes in Chromium (no network is reachable here) and
checks the rendered DOM.
"""

from __future__ import annotations

import re
import runpy
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml
from dvc_render.base import Renderer
from dvc_render.image import ImageRenderer
from PIL import Image

from vertiflow.testing import REPO, run

CHROMIUM = Path("/usr/bin/chromium")
NODE_MODULES = REPO / "tools" / "plots" / "node_modules"
# The screenshot tools' offline flags (tools/chromium.py, a standalone script module).
CHROMIUM_FLAGS = [
    *runpy.run_path(str(REPO / "tools" / "chromium.py"))["OFFLINE_FLAGS"],
    "--window-size=1600,1000",
    "--virtual-time-budget=15000",
]


def declared_plots() -> dict[str, str]:
    """The `plots:` of dvc.yaml, top-level and per stage (Cortex's traces, a stage plot so
    that DVC keeps its run-cache): the page's div id of each plot -> its name."""
    plots = {}
    pipeline = yaml.safe_load((REPO / "dvc.yaml").read_text(encoding="utf-8"))
    stage_plots = [e for s in pipeline["stages"].values() for e in s.get("plots") or []]
    for entry in [*pipeline["plots"], *stage_plots]:
        name = entry if isinstance(entry, str) else next(iter(entry))
        folder = REPO / name
        # a folder (one trace per crop in the data) is one plot per file on the page
        names = [f"{name}/{f.name}" for f in sorted(folder.glob("*"))] or [name]
        plots |= {Renderer.remove_special_chars(n): n for n in names}
    return plots


def is_image(name: str) -> bool:
    return Path(name).suffix.lower() in ImageRenderer.EXTENSIONS


class PlotDivs(HTMLParser):
    """Per top-level div of <body> (one per plot, as DVC writes them): the elements within."""

    def __init__(self) -> None:
        super().__init__()
        self.divs: dict[str, list[tuple[str, dict[str, str]]]] = {}
        self._current: str | None = None
        self._depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if self._current is None:
            if tag == "div" and a.get("id"):
                self._current, self._depth = a["id"], 1
                self.divs[self._current] = []
            return
        if tag == "div":
            self._depth += 1
        self.divs[self._current].append((tag, a))

    def handle_endtag(self, tag: str) -> None:
        if self._current is not None and tag == "div":
            self._depth -= 1
            if self._depth == 0:
                self._current = None


def scratch_repo(dest: Path) -> Path:
    """The files `dvc plots show` reads, copied; the npm packages linked, not copied."""
    dest.mkdir()
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy2(REPO / name, dest / name)
    (dest / ".dvc").mkdir()
    shutil.copy2(REPO / ".dvc" / "config", dest / ".dvc" / "config")
    shutil.copytree(REPO / "metrics", dest / "metrics")
    (dest / "tools" / "plots").mkdir(parents=True)
    shutil.copy2(REPO / "tools" / "plots" / "template.html", dest / "tools" / "plots")
    (dest / "tools" / "plots" / "node_modules").symlink_to(NODE_MODULES, target_is_directory=True)
    # Image plots are DVC-cached stage outputs, absent from a checkout that has not run
    # `dvc repro` or `dvc pull`: a stand-in keeps every declared plot on the page.
    for name in declared_plots().values():
        if is_image(name) and not (dest / name).exists():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (64, 32), (90, 140, 60)).save(dest / name)
    run(["git", "init", "-q"], dest)
    return dest


def dump_dom(page: Path, profile: Path) -> str:
    # The profile sits in pytest's tmp_path: Chromium's helpers can still be writing into
    # it just after the browser exits, and pytest removes old tmp_paths later, not now.
    proc = subprocess.run(
        [str(CHROMIUM), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0 and "<body" in proc.stdout, proc.stderr[-3000:]
    return proc.stdout


def test_plots_page_renders_every_declared_plot_offline(tmp_path):
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} not found: this test opens the plots page in headless Chromium "
            "(`apt-get install -y chromium`; .ci/run installs it)"
        )
    if not (NODE_MODULES / "vega-embed" / "build" / "vega-embed.min.js").exists():
        pytest.fail(f"{NODE_MODULES} missing or incomplete: run `npm ci --prefix tools/plots`")

    repo = scratch_repo(tmp_path / "repo")
    run(["dvc", "plots", "show"], repo)  # plain: the template comes from .dvc/config
    page = repo / "dvc_plots" / "index.html"
    html = page.read_text(encoding="utf-8")

    # Declared UTF-8, or vega's minus signs (U+2212) turn into mojibake.
    assert re.search(r"<meta\s+charset=[\"']?utf-8[\"']?\s*/?>", html, re.IGNORECASE), (
        'the plots page does not declare <meta charset="utf-8">'
    )
    # Every script is local (no CDN: nothing is reachable offline) and is really there.
    srcs = re.findall(r"<script\b[^>]*\bsrc\s*=\s*[\"']([^\"']+)[\"']", html, re.IGNORECASE)
    remote = [s for s in srcs if re.match(r"(?i)^([a-z][a-z0-9+.-]*:|//)", s)]
    assert not remote, f"the plots page loads scripts from the network: {remote}"
    assert len(srcs) >= 3, f"expected vega, vega-lite and vega-embed scripts, found {srcs}"
    missing = [s for s in srcs if not (page.parent / s).is_file()]
    assert not missing, f"script files not found next to the page: {missing}"

    parser = PlotDivs()
    parser.feed(dump_dom(page, tmp_path / "chromium-profile"))
    plots = declared_plots()
    assert set(plots) <= set(parser.divs), (
        f"plots missing from the page: {sorted(set(plots) - set(parser.divs))}"
    )
    drawn = []
    for div_id, name in plots.items():
        elements = parser.divs[div_id]
        if is_image(name):
            imgs = [a["src"] for tag, a in elements if tag == "img"]
            assert imgs and all((page.parent / s).is_file() for s in imgs), (name, imgs)
        else:
            # vega draws a chart as <canvas class="marks"> (or <svg class="marks">); the
            # actions menu's <svg> icon does not count.
            marks = [
                (tag, a)
                for tag, a in elements
                if tag in ("canvas", "svg") and "marks" in a.get("class", "").split()
            ]
            assert len(marks) == 1, f"{name!r} was not drawn: {[t for t, _ in elements]}"
            tag, a = marks[0]
            assert tag == "svg" or (int(a.get("width", 0)) > 0 and int(a.get("height", 0)) > 0)
        drawn.append(name)
    assert len(drawn) == len(plots)
