"""The process settings a stage runs under (`runtime.configure`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

BLAS_THREADS = """
import json, numpy, scipy.linalg
from threadpoolctl import threadpool_info
from vertiflow import runtime
runtime.configure()
import sklearn.linear_model  # loaded after configure: reads the variable
print(json.dumps([i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]))
"""


def _blas_threads(**env: str) -> list[int]:
    clean = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    proc = subprocess.run(
        [sys.executable, "-c", BLAS_THREADS],
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(proc.stdout)


def test_blas_runs_one_thread_unless_the_user_says_otherwise():
    """BLAS splits sums by thread: the same fit on 1 and 2 cores gave other model md5s and
    a CV score that differed in its 5th digit."""
    assert set(_blas_threads()) == {1}
    assert set(_blas_threads(OPENBLAS_NUM_THREADS="2")) == {2}


@pytest.mark.parametrize("where", ["this checkout", "a repository the tests create"])
def test_dvc_sends_no_analytics_and_checks_no_updates(where, tmp_path):
    """Every dvc command forked a daemon that posted usage analytics to dvc.org (and
    `dvc version` one that asked updater.dvc.org); offline, each left its report in
    TMPDIR: ~250 files per run of this suite. `.dvc/config` switches both off, and so does
    `init_dvc_repo` for the small repositories tests build (180 reports in /tmp after one
    CI run without it)."""
    from vertiflow.testing import REPO, init_dvc_repo

    env = {k: v for k, v in os.environ.items() if k not in ("CI", "DVC_NO_ANALYTICS")}
    env["TMPDIR"] = str(tmp_path / "tmp")
    (tmp_path / "tmp").mkdir()
    repo = REPO
    if where != "this checkout":
        repo = init_dvc_repo(tmp_path / "repo")
    proc = subprocess.run(
        ["dvc", "version", "-v"], cwd=repo, env=env, capture_output=True, text=True, check=True
    )
    log = proc.stdout + proc.stderr
    assert "Analytics is disabled." in log
    assert "Check for update is disabled." in log
    assert "daemon" not in log
    assert list((tmp_path / "tmp").iterdir()) == []
