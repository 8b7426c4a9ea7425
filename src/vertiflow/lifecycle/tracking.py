"""One MLflow run per stage execution, tagged so a pipeline run or a sweep filters as one.

Where runs go: `MLFLOW_TRACKING_URI` when set (a team server), else one SQLite store in
the user's checkout at `.mlflow/mlflow.db`, artifacts beside it. Queued `dvc exp run`s
execute in a temporary copy under `.dvc/tmp/exps/`; the store is resolved to the checkout
that owns that copy, so queued runs land in the same store as `dvc repro`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import psutil
import requests
from filelock import FileLock
from mlflow.entities import LoggedModelStatus

from vertiflow.errors import VertiflowError
from vertiflow.params import flatten
from vertiflow.runtime import checkout_root

EXPERIMENT = "vertiflow-models"
LOCAL_STORE = ".mlflow"


def tracking_uri() -> str:
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    store = checkout_root() / LOCAL_STORE
    store.mkdir(exist_ok=True)
    return f"sqlite:///{store / 'mlflow.db'}"


def check_reachable(uri: str, timeout: float = 5.0) -> None:
    """Fail in seconds, naming the URI, rather than after MLflow's minutes of retries."""
    if not uri.startswith(("http://", "https://")):
        return
    try:
        requests.get(f"{uri.rstrip('/')}/health", timeout=timeout).raise_for_status()
    except requests.RequestException as exc:
        raise VertiflowError(
            f"the MLflow tracking server at {uri} (MLFLOW_TRACKING_URI) is unreachable: "
            f"{type(exc).__name__}. Start it (vertiflow stack), fix the URI, or unset "
            "MLFLOW_TRACKING_URI to log to the local store .mlflow/mlflow.db."
        ) from None


def pipeline_run_id() -> str:
    """Shared by every stage of one `dvc repro`/`dvc exp run`: derived from the DVC process."""
    if os.environ.get("VERTIFLOW_PIPELINE_RUN_ID"):
        return os.environ["VERTIFLOW_PIPELINE_RUN_ID"]
    with contextlib.suppress(psutil.Error):
        for proc in psutil.Process().parents():
            if any(Path(arg).name == "dvc" or arg.endswith("/dvc") for arg in proc.cmdline()[:2]):
                return hashlib.sha1(f"{proc.pid}-{proc.create_time()}".encode()).hexdigest()[:12]
    return uuid.uuid4().hex[:12]


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _experiment_id(name: str) -> str:
    experiment = mlflow.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    location = None
    if mlflow.get_tracking_uri().startswith("sqlite:"):
        location = (checkout_root() / LOCAL_STORE / "artifacts").as_uri()
    return mlflow.create_experiment(name, artifact_location=location)


def run_tags(stage: str) -> dict[str, str]:
    tags = {
        "stage": stage,
        "pipeline_run_id": pipeline_run_id(),
        "host": socket.gethostname(),
        "pid": str(os.getpid()),  # lets a later stage tell an orphaned run from a live one
    }
    if commit := git_commit():
        tags["git_commit"] = commit
    for env, tag in (
        ("DVC_EXP_NAME", "dvc_exp_name"),
        ("DVC_EXP_BASELINE_REV", "dvc_exp_baseline_rev"),
    ):
        if os.environ.get(env):
            tags[tag] = os.environ[env]
    return tags


def close_orphaned_runs(experiment_id: str) -> list[str]:
    """Mark KILLED the runs left RUNNING by stage processes that no longer exist.

    A stage killed by SIGKILL, an OOM kill or a power cut cannot end its own run, which
    would stay RUNNING in the UI forever. Only runs started on this host are judged, and
    a run whose process is still alive (a parallel queued experiment) is left alone.
    """
    client = mlflow.MlflowClient()
    orphans = []
    for run in client.search_runs(
        [experiment_id],
        filter_string=f"attributes.status = 'RUNNING' and tags.host = '{socket.gethostname()}'",
    ):
        try:
            process = psutil.Process(int(run.data.tags.get("pid", "0")))
            alive = process.create_time() <= run.info.start_time / 1000 + 1  # not a reused pid
        except (psutil.Error, ValueError):
            alive = False
        if not alive:
            client.set_terminated(run.info.run_id, "KILLED")
            orphans.append(run.info.run_id)
    if orphans:
        print(
            f"MLflow: marked {len(orphans)} run(s) of killed stage processes KILLED: "
            + ", ".join(orphans),
            file=sys.stderr,
        )
    return orphans


@contextlib.contextmanager
def stage_run(stage: str, params: dict[str, Any], experiment: str = EXPERIMENT) -> Iterator[Any]:
    """Open the stage's MLflow run with its params and tags; closes FAILED on error."""
    uri = tracking_uri()
    check_reachable(uri)
    mlflow.set_tracking_uri(uri)
    if uri.startswith("sqlite:"):
        # Parallel queued experiments (dvc queue start -j N) on a fresh store would run
        # MLflow's schema migrations, and create the experiment, at the same moment:
        # one of them then fails. The first takes the lock and does both; the rest wait.
        with FileLock(checkout_root() / LOCAL_STORE / "store.lock", timeout=120):
            experiment_id = _experiment_id(experiment)
    else:
        experiment_id = _experiment_id(experiment)
    close_orphaned_runs(experiment_id)
    with mlflow.start_run(experiment_id=experiment_id, run_name=stage, tags=run_tags(stage)) as run:
        mlflow.log_params({k: str(v)[:6000] for k, v in flatten(params).items()})
        yield run


def dvc_dep_hash(stage: str, path: str, lock: Path = Path("dvc.lock")) -> str | None:
    """The md5 DVC recorded for one of a stage's deps: the data version of what it read."""
    import yaml

    try:
        stages = yaml.safe_load(lock.read_text())["stages"]
    except (OSError, KeyError, TypeError):
        return None
    for dep in stages.get(stage, {}).get("deps", []):
        if dep["path"].rstrip("/") == path.rstrip("/"):
            return dep.get("md5")
    return None


def log_model_dir(path: Path, name: str, model_type: str) -> str:
    """Log a model folder's files as a LoggedModel of the active run; returns its id.

    The files are logged as they are, not serialised again: DVC and MLflow then hold
    byte-identical models, and large ensembles are not re-encoded.
    """
    logged = mlflow.initialize_logged_model(name=name, model_type=model_type)
    mlflow.MlflowClient().log_model_artifacts(logged.model_id, str(path))
    mlflow.finalize_logged_model(logged.model_id, LoggedModelStatus.READY)
    return logged.model_id
