"""Stages killed outright (SIGKILL) at several points: the next `dvc repro` recovers cleanly.

Each stage is killed twice in a copy of the small pipeline: while its process starts
(imports), and while it writes its outputs (the moment one of them, or its staging folder,
appears). After each kill a plain `dvc repro` must end with every output byte-identical to
the reference run (git sees no change: dvc.lock, the uncached metrics, no leftover files)
and `dvc status` clean. The MLflow side: a failing stage closes its run FAILED, and the
next stage run marks a dead stage's run KILLED but leaves a live parallel run alone.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest
import yaml

from vertiflow.testing import REPO, commit_all, env, run, set_params
from vertiflow.vision import yolo

pytestmark = [pytest.mark.reliability, pytest.mark.pipeline]

STAGES = list(yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"])
POINTS = ("starting", "writing")


def stage_outs(repo: Path, stage: str) -> list[tuple[Path, bool]]:
    """(path, persist) of every out, metric and plot of `stage` in the repo's dvc.yaml."""
    spec = yaml.safe_load((repo / "dvc.yaml").read_text())["stages"][stage]
    outs = []
    for entry in spec.get("outs", []) + spec.get("metrics", []) + spec.get("plots", []):
        name, opts = (entry, {}) if isinstance(entry, str) else next(iter(entry.items()))
        outs.append((repo / name, bool((opts or {}).get("persist"))))
    return outs


def _signature(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_mtime_ns, st.st_size


def start_forced_repro(repo: Path, stage: str, log_path: Path) -> subprocess.Popen:
    """`dvc repro -f -s stage` in a process group of its own (so one SIGKILL of the group
    takes the stage's process too), its output going to `log_path`."""
    with log_path.open("w") as log:
        return subprocess.Popen(
            ["dvc", "repro", "-f", "-s", stage],
            cwd=repo,
            env=env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def kill_stage(repo: Path, stage: str, point: str, timeout: float = 600) -> tuple[str, str]:
    """Force-run `stage` under `dvc repro` and SIGKILL the whole process group at `point`.

    "starting": 1 s after DVC announces the stage (the script is importing).
    "writing": as soon as one of its outputs is being written: a staging folder
    (`.<out>.saving`) appears, an out DVC removed before the run exists again, or a
    persistent out (which DVC keeps) changes. Polled every 2 ms.
    Returns (what triggered the kill, DVC's output up to the kill).
    """
    log_path = repo.parent / f"kill-{stage}-{point}.log"
    outs = stage_outs(repo, stage)
    before = {path: _signature(path) for path, _ in outs}
    gone: set[Path] = set()
    proc = start_forced_repro(repo, stage, log_path)
    trigger = ""
    deadline = time.monotonic() + timeout
    while not trigger and proc.poll() is None and time.monotonic() < deadline:
        if point == "starting":
            if f"Running stage '{stage}'" in log_path.read_text():
                time.sleep(1.0)
                trigger = "1 s after start"
            else:
                time.sleep(0.02)
            continue
        for path, persist in outs:
            staging = path.with_name(f".{path.name}.saving")
            now = _signature(path)
            if staging.exists():
                trigger = str(staging.relative_to(repo))
            elif persist and now != before[path]:
                trigger = str(path.relative_to(repo))
            elif now is None:
                gone.add(path)
            elif path in gone:
                trigger = str(path.relative_to(repo))
            if trigger:
                break
        else:
            time.sleep(0.002)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    output = log_path.read_text()
    assert trigger and proc.returncode == -signal.SIGKILL, (
        f"{stage} ended (exit {proc.returncode}) before the kill at {point}:\n{output[-3000:]}"
    )
    assert "Updating lock file" not in output, f"killed too late, {stage} had finished"
    return trigger, output


def assert_recovered(repo: Path) -> None:
    """`dvc repro` ends with the reference outputs: dvc.lock and every uncached metric as
    committed (git clean, nothing left behind), every cached out as dvc.lock says."""
    again = run(["dvc", "repro"], repo, check=False, timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "Traceback" not in again.stderr
    status = run(["dvc", "status"], repo).stdout
    assert "Data and pipelines are up to date" in status, status
    changed = run(["git", "status", "--porcelain", "--untracked-files=all"], repo).stdout
    changed += run(["git", "clean", "-n", "-d"], repo).stdout  # empty folders too
    assert changed == "", f"outputs differ from the reference run or were left behind:\n{changed}"


def stateful_reference(repo: Path, stage: str) -> None:
    """evaluate's registry decisions (metrics/registry.json) depend on the model registry,
    not only on its deps: any re-run finds the reference run's versions already registered
    ("same files as version N"). Its reference is an uninterrupted re-run."""
    if stage == "evaluate":
        run(["dvc", "repro", "-f", "-s", stage], repo, timeout=600)
        commit_all(repo, "evaluate re-run without interruption")


@pytest.mark.parametrize("stage", STAGES)
def test_sigkill_at_each_point_of_a_stage_then_repro_recovers(small_copy, stage):
    repo = small_copy
    stateful_reference(repo, stage)
    for point in POINTS:
        _, output = kill_stage(repo, stage, point)
        assert f"Running stage '{stage}'" in output, output
        assert_recovered(repo)
    if stage == "train_yolo":  # DVC's run-cache may restore it: force the next training
        run(["dvc", "repro", "-f", "-s", stage], repo, timeout=600)
        assert not dead_scratch(), f"killed trainings' folders left behind: {dead_scratch()}"


def dead_scratch() -> list[Path]:
    """train_yolo's temporary folders (a dataset copy and checkpoints each) whose process
    is gone: the next training removes them, so after a recovering `dvc repro` none is left."""
    found = Path(tempfile.gettempdir()).glob(f"{yolo.SCRATCH_PREFIX}*-*")
    pids = {p: p.name.removeprefix(yolo.SCRATCH_PREFIX).split("-")[0] for p in found}
    return [p for p, pid in pids.items() if pid.isdigit() and not psutil.pid_exists(int(pid))]


# --- MLflow run status -----------------------------------------------------------------

# A separate process with an active MLflow run, tagged like a stage's (host, pid). It
# says `ready <run_id>` on stdout, then holds the run until a line arrives on stdin (or
# until it is killed), and ends it itself.
HOLDER = """
import os, socket, sys
import mlflow
mlflow.set_tracking_uri(sys.argv[1])
experiment = mlflow.set_experiment("vertiflow-models").experiment_id
tags = {"stage": sys.argv[2], "host": socket.gethostname(), "pid": str(os.getpid())}
with mlflow.start_run(experiment_id=experiment, run_name=sys.argv[2], tags=tags) as run:
    print("ready", run.info.run_id, flush=True)
    sys.stdin.readline()
print("ended", flush=True)
"""


def hold_run(uri: str, name: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, uri, name],
        env=env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    line = proc.stdout.readline().split()
    assert line[:1] == ["ready"], f"run holder failed (exit {proc.poll()})"
    return proc, line[1]


def statuses(store: Path) -> dict[str, tuple[str, str]]:
    """run id -> (status, stage tag), read straight from the SQLite store."""
    with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as db:
        rows = db.execute(
            "select r.run_uuid, r.status, coalesce(t.value, '') from runs r "
            "left join tags t on t.run_uuid = r.run_uuid and t.key = 'stage'"
        ).fetchall()
    return {run_id: (status, stage) for run_id, status, stage in rows}


def test_next_stage_marks_a_dead_run_killed_and_leaves_a_live_one_running(small_copy):
    repo = small_copy
    store = repo / ".mlflow" / "mlflow.db"
    uri = f"sqlite:///{store}"
    dead, dead_id = hold_run(uri, "dead-stage")
    dead.kill()  # SIGKILL: it never ends its run
    dead.wait(timeout=30)
    live, live_id = hold_run(uri, "live-stage")  # a parallel experiment's stage, still busy
    try:
        assert statuses(store)[dead_id][0] == statuses(store)[live_id][0] == "RUNNING"
        proc = run(["dvc", "repro", "-f", "-s", "summarise"], repo, timeout=600)
        assert dead_id in proc.stderr and "KILLED" in proc.stderr
        after = statuses(store)
        assert after[dead_id][0] == "KILLED"
        assert live.poll() is None and after[live_id][0] == "RUNNING", after[live_id]
        assert live_id not in proc.stderr
        assert {s for s, stage in after.values() if stage == "summarise"} == {"FINISHED"}
    finally:
        live.communicate("done\n", timeout=60)
    assert live.returncode == 0 and statuses(store)[live_id][0] == "FINISHED"


def test_a_stage_that_fails_on_bad_data_closes_its_run_failed(small_copy):
    from test_bad_input import _farm, out_of_range

    repo = small_copy
    store = repo / ".mlflow" / "mlflow.db"
    known = set(statuses(store))
    out_of_range(_farm(repo))
    set_params(repo, {"prepare.raw_dir": "data/farm"})
    proc = run(["dvc", "repro"], repo, check=False, timeout=600)
    assert proc.returncode != 0 and "failed to reproduce 'prepare'" in proc.stdout + proc.stderr
    new = {k: v for k, v in statuses(store).items() if k not in known}
    prepare = [status for status, stage in new.values() if stage == "prepare"]
    assert prepare == ["FAILED"], new
    assert "RUNNING" not in {status for status, _ in new.values()}, new


# A terminal's foreground job gets Ctrl-C's default action. A job started in the background
# by a non-interactive shell (as CI may start this suite) inherits SIGINT ignored, and
# Python then installs no KeyboardInterrupt handler: the training ran its 300 epochs to the
# end. The stage is started as a terminal would start it.
DEFAULT_SIGINT = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "os.execvp(sys.argv[1], sys.argv[1:])"
)


def test_a_stage_interrupted_by_the_user_closes_its_runs_killed(small_copy):
    """Ctrl-C in a terminal, or `dvc queue kill` on a queued sweep point, sends SIGINT: the
    stage's run and its pipeline run read KILLED. They read FAILED, like a stage that broke,
    and the runs table could not tell a point stopped on purpose from one that crashed."""
    repo = small_copy
    store = repo / ".mlflow" / "mlflow.db"
    known = set(statuses(store))
    set_params(repo, {"train_yolo.epochs": 300})  # long enough to be caught training
    with (repo.parent / "interrupted.log").open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-c", DEFAULT_SIGINT, "dvc", "repro", "-s", "train_yolo"],
            cwd=repo,
            env=env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            new = {k: v for k, v in statuses(store).items() if k not in known}
            if ("RUNNING", "train_yolo") in new.values():
                break
            time.sleep(0.2)
        time.sleep(3)  # in training
        os.killpg(proc.pid, signal.SIGINT)  # what a terminal sends the foreground group
        proc.wait(timeout=120)
    finally:  # a failed test leaves no 300-epoch training behind on CI's two cores
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    output = (repo.parent / "interrupted.log").read_text()
    assert proc.returncode != 0, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    new = {k: v for k, v in statuses(store).items() if k not in known}
    assert sorted(new.values()) == [("KILLED", ""), ("KILLED", "train_yolo")], new
