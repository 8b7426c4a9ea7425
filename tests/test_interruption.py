"""A `dvc repro` killed with SIGKILL mid-stage: the next `dvc repro` recovers cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import mlflow
import pytest
import yaml

from conftest import REPO, env, run

pytestmark = [pytest.mark.reliability, pytest.mark.pipeline]

STAGES = list(yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"])


def kill_during(repo, stage: str, delay: float) -> str:
    """Force-run one stage and SIGKILL the whole `dvc repro` process group once it starts."""
    proc = subprocess.Popen(
        ["dvc", "repro", "-f", "-s", stage],
        cwd=repo,
        env=env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if f"Running stage '{stage}'" in line:
            time.sleep(delay)
            os.killpg(proc.pid, signal.SIGKILL)
            break
    proc.wait(timeout=60)
    return "".join(seen)


@pytest.mark.parametrize("stage", STAGES)
def test_sigkill_mid_stage_then_repro_recovers(small_copy, stage):
    repo = small_copy
    output = kill_during(repo, stage, delay=1.0)
    assert f"Running stage '{stage}'" in output, output

    # The next run of that stage completes; its deps and outs then match dvc.lock. (Stages
    # downstream of a forced retrain are due to re-run; that is DVC working, not damage.)
    again = run(["dvc", "repro", "-s", stage], repo, check=False, timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
    status = run(["dvc", "status", stage], repo).stdout
    assert "up to date" in status, status


def test_a_killed_stage_run_is_marked_killed_by_the_next_stage(small_copy):
    """SIGKILL leaves the stage's MLflow run RUNNING; the next stage run closes it."""
    repo = small_copy
    mlflow.set_tracking_uri(f"sqlite:///{repo / '.mlflow' / 'mlflow.db'}")
    client = mlflow.MlflowClient()
    experiment = client.get_experiment_by_name("vertiflow-models").experiment_id

    def running() -> list:
        return client.search_runs([experiment], "attributes.status = 'RUNNING'")

    proc = subprocess.Popen(
        ["dvc", "repro", "-f", "-s", "train_yolo"],
        cwd=repo,
        env=env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while not running() and time.monotonic() < deadline:
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    (orphan,) = running()
    assert orphan.data.tags["stage"] == "train_yolo"

    again = run(["dvc", "repro", "-s", "train_yolo"], repo, timeout=600)
    assert "KILLED" in again.stderr
    assert client.get_run(orphan.info.run_id).info.status == "KILLED"
    assert not running()
