"""Headless Debian Chromium on a machine with no network, for the screenshot tools.

Without the background-networking flags it stalls on refused connections (the BRIEF).
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

OFFLINE_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


@contextlib.contextmanager
def throwaway_profile() -> Iterator[str]:
    """A fresh `--user-data-dir`, removed afterwards.

    Chromium's helper processes can still write into the profile for a moment after the
    browser itself has exited (a CI run died on "Directory not empty: 'Default'"), so the
    removal retries for a few seconds instead of failing a screenshot that was taken.
    """
    path = tempfile.mkdtemp(prefix="vertiflow-chromium-")
    try:
        yield path
    finally:
        for _ in range(40):
            shutil.rmtree(path, ignore_errors=True)
            if not Path(path).exists():
                break
            time.sleep(0.25)


def chromium(
    binary: str, window: str, *args: str, flags: list[str] = OFFLINE_FLAGS
) -> subprocess.CompletedProcess:
    """One headless Chromium command (`--dump-dom URL`, `--screenshot=...`) with a
    throw-away profile."""
    with throwaway_profile() as profile:
        return subprocess.run(
            [binary, *flags, f"--window-size={window}", f"--user-data-dir={profile}", *args],
            capture_output=True,
            text=True,
            timeout=180,
        )


def screenshot(
    binary: str, window: str, url: str, out: Path, flags: list[str] = OFFLINE_FLAGS
) -> Path:
    """A PNG of `url` at `out` (its folder made); exits naming Chromium's error if none."""
    out = out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    proc = chromium(binary, window, f"--screenshot={out}", url, flags=flags)
    if proc.returncode != 0 or not out.exists():
        sys.exit(f"Chromium failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return out
