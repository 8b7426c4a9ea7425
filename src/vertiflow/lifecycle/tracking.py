"""MLflow runs: one per stage execution, one per pipeline execution, per-model experiments.

Layout (README, "Comparing runs in the MLflow UI"):
- `vertiflow-models` holds one *pipeline run* per `dvc repro` / `dvc exp run` / queued
  experiment (tag `run_kind=pipeline`), named after the DVC experiment: every param, and
  every model's headline held-out metric and gap to its limit, read from metrics/*.json
  after each stage (so a stage DVC restored from cache contributes its last metrics; a
  file whose stage has yet to run on new data or params waits for it, `stale_outputs`).
  The runs of the non-model stages are nested under it.
- The model stages log to the seed's per-model experiments (MODEL_EXPERIMENTS), linked to
  their pipeline run by the tags `pipeline_run_id` and `pipeline_mlflow_run_id`.

Where runs go: `MLFLOW_TRACKING_URI` when set (a team server), else one SQLite store in
the user's checkout at `.mlflow/mlflow.db`, artifacts beside it. Queued `dvc exp run`s
execute in a temporary copy under `.dvc/tmp/exps/`; the store is resolved to the checkout
that owns that copy, so queued runs land in the same store as `dvc repro`.
"""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import psutil
import requests
from filelock import FileLock
from mlflow.entities import LoggedModelStatus, Metric, Param, RunTag
from ruamel.yaml import YAML, YAMLError

from vertiflow.errors import VertiflowError
from vertiflow.params import flatten, key_part, read_yaml
from vertiflow.runtime import checkout_root

EXPERIMENT = "vertiflow-models"
PIPELINE_RUN_VARIABLE = "VERTIFLOW_PIPELINE_RUN_ID"  # stages sharing one pipeline run
MODEL_EXPERIMENTS = {
    "train_oracle": "yield-prediction",
    "train_classifier": "quality-classification",
    "optimise_cortex": "recipe-optimization",
    "train_yolo": "skin-detection",
}
# Without it MLflow 3's UI opens an experiment in GenAI mode (traces, prompts) instead of
# the runs table.
EXPERIMENT_TAGS = {"mlflow.experimentKind": "custom_model_development"}
DEFAULT_EXPERIMENT_ID = "0"
LOCAL_STORE = ".mlflow"
# The pipeline run's headline columns: every model's held-out metrics, read from the
# metrics files the stages write (metrics/<file>.json -> <file>_<key>).
HEADLINE = {
    "oracle": ("r2", "mae", "rmse", "r2_gap"),
    "classifier": ("accuracy", "f1_macro", "roc_auc_ovr", "log_loss", "accuracy_gap"),
    "cortex": ("max_regret",),
    "yolo": ("mAP50", "mAP50-95", "precision", "recall", "test_mAP50", "test_mAP50-95"),
}
CORTEX_PER_CROP = ("regret", "cost_per_kg", "converged", "iterations")


def tracking_uri(checkout: Path | None = None) -> str:
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    store = (checkout or checkout_root()) / LOCAL_STORE
    store.mkdir(exist_ok=True)
    return f"sqlite:///{store / 'mlflow.db'}"


def check_reachable(uri: str, connect: float = 5.0, read: float = 120.0) -> None:
    """Fail in seconds, naming the URI, rather than after MLflow's minutes of retries.

    Only a server that is not there fails fast (5 s to connect); one that is there but
    busy, on cores shared with parallel experiments, gets two minutes to answer /health.
    """
    if not uri.startswith(("http://", "https://")):
        return
    try:
        requests.get(f"{uri.rstrip('/')}/health", timeout=(connect, read)).raise_for_status()
    except requests.RequestException as exc:
        raise VertiflowError(
            f"the MLflow tracking server at {uri} (MLFLOW_TRACKING_URI) is unreachable: "
            f"{type(exc).__name__}. Start it (vertiflow stack), fix the URI, or unset "
            "MLFLOW_TRACKING_URI to log to the local store .mlflow/mlflow.db."
        ) from None


def dvc_process() -> psutil.Process | None:
    """The `dvc repro` / `dvc exp run` process running this stage, if any."""
    with contextlib.suppress(psutil.Error):
        for proc in psutil.Process().parents():
            if any(Path(arg).name == "dvc" or arg.endswith("/dvc") for arg in proc.cmdline()[:2]):
                return proc
    return None


def pipeline_run_id() -> str:
    """Shared by every stage of one `dvc repro`/`dvc exp run`: derived from the DVC process
    (and the experiment's name, so two experiments of one queue worker never share it)."""
    if os.environ.get(PIPELINE_RUN_VARIABLE):
        return os.environ[PIPELINE_RUN_VARIABLE]
    if proc := dvc_process():
        with contextlib.suppress(psutil.Error):
            key = f"{proc.pid}-{proc.create_time()}-{os.environ.get('DVC_EXP_NAME', '')}"
            return hashlib.sha1(key.encode()).hexdigest()[:12]
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
    """The experiment's id, created (or tagged) for model training if need be."""
    client = mlflow.MlflowClient()
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        location = None
        if mlflow.get_tracking_uri().startswith("sqlite:"):
            location = (checkout_root() / LOCAL_STORE / "artifacts").as_uri()
        try:
            created = client.create_experiment(name, location, tags=EXPERIMENT_TAGS)
            with contextlib.suppress(mlflow.exceptions.MlflowException):  # the store's own
                for key, value in EXPERIMENT_TAGS.items():  # "Default", tagged once
                    client.set_experiment_tag(DEFAULT_EXPERIMENT_ID, key, value)
            return created
        except mlflow.exceptions.MlflowException:
            # A parallel queued experiment created it first (a server takes no file lock).
            experiment = client.get_experiment_by_name(name)
            if experiment is None:
                raise
    for key, value in EXPERIMENT_TAGS.items():
        if experiment.tags.get(key) != value:  # made before this tag existed
            client.set_experiment_tag(experiment.experiment_id, key, value)
    return experiment.experiment_id


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


def close_orphaned_runs(experiment_ids: list[str]) -> list[str]:
    """Mark KILLED the runs left RUNNING by stage processes that no longer exist.

    A stage killed by SIGKILL, an OOM kill or a power cut cannot end its own run, which
    would stay RUNNING in the UI forever. Only runs started on this host are judged, and
    a run whose process is still alive (a parallel queued experiment) is left alone.
    """
    client = mlflow.MlflowClient()
    orphans = []
    for run in client.search_runs(
        experiment_ids,
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
def stage_run(stage: str, params: dict[str, Any], experiment: str | None = None) -> Iterator[Any]:
    """Open the stage's MLflow run with its params and tags; closes FAILED on error.

    A model stage's run goes to its model's experiment, the others' to `vertiflow-models`
    nested under the pipeline run. When the stage ends, the pipeline run is brought up to
    date from metrics/*.json.
    """
    experiment = experiment or MODEL_EXPERIMENTS.get(stage, EXPERIMENT)
    uri = tracking_uri()
    check_reachable(uri)
    mlflow.set_tracking_uri(uri)
    names = dict.fromkeys([EXPERIMENT, experiment])
    if uri.startswith("sqlite:"):
        # Parallel queued experiments (dvc queue start -j N) on a fresh store would run
        # MLflow's schema migrations, and create the experiment, at the same moment:
        # one of them then fails. The first takes the lock and does both; the rest wait.
        with FileLock(checkout_root() / LOCAL_STORE / "store.lock", timeout=120):
            ids = {name: _experiment_id(name) for name in names}
    else:
        ids = {name: _experiment_id(name) for name in names}
    close_orphaned_runs(list(ids.values()))
    # A pipeline run for a pipeline execution: a stage run by hand outside DVC gets none.
    dvc = dvc_process()
    pipeline = None
    if dvc or os.environ.get(PIPELINE_RUN_VARIABLE):
        pipeline = pipeline_run(ids[EXPERIMENT], dvc)
    tags = run_tags(stage)
    if pipeline:
        # RUNNING while a stage runs: the last stage's end had marked it FINISHED, and the
        # UI showed a green tick on a row still filling in
        mlflow.MlflowClient().update_run(pipeline, status="RUNNING")
        tags["pipeline_mlflow_run_id"] = pipeline
        if experiment == EXPERIMENT:
            tags["mlflow.parentRunId"] = pipeline  # nested in the UI
    # In a model's own experiment every run is this stage: name it after the execution, as
    # its pipeline run is, so the runs table tells the sweep's experiments apart.
    name = stage if experiment == EXPERIMENT or not pipeline else execution_name(tags)
    status = "FAILED"
    try:
        with mlflow.start_run(experiment_id=ids[experiment], run_name=name, tags=tags) as run:
            try:
                mlflow.log_params({k: str(v)[:6000] for k, v in flatten(params).items()})
                yield run
            except KeyboardInterrupt:
                # Ctrl-C or `dvc queue kill` (SIGINT): stopped by the user, not broken. As
                # FAILED, a sweep point stopped on purpose read like one that crashed.
                status = "KILLED"
                mlflow.end_run(status)
                raise
        status = "FINISHED"
    finally:
        if pipeline:
            update_pipeline_run(pipeline, status, stage)


def _changed(current: dict[str, Any]) -> list[str]:
    """Params (dotted keys) that differ from the baseline commit's params.yaml."""
    rev = os.environ.get("DVC_EXP_BASELINE_REV") or "HEAD"
    try:
        shown = subprocess.run(
            ["git", "show", f"{rev}:params.yaml"], capture_output=True, text=True, timeout=10
        )
        text = shown.stdout if shown.returncode == 0 else "{}"
        baseline = flatten(YAML(typ="safe", pure=False).load(text) or {})
    except (OSError, subprocess.SubprocessError, YAMLError):
        baseline = {}
    return sorted(k for k, v in current.items() if baseline.get(k) != v)


def find_pipeline_run(key: str, checkout: Path | None = None) -> str | None:
    """The MLflow run of the pipeline execution whose `pipeline_run_id` is `key`."""
    client = mlflow.MlflowClient(tracking_uri(checkout))
    experiment = client.get_experiment_by_name(EXPERIMENT)
    if experiment is None:
        return None
    query = f"tags.run_kind = 'pipeline' and tags.pipeline_run_id = '{key}'"
    found = client.search_runs([experiment.experiment_id], query, max_results=1)
    return found[0].info.run_id if found else None


def execution_name(tags: dict[str, str]) -> str:
    """The DVC experiment's name, or `repro@<commit>` for a plain `dvc repro`."""
    return os.environ.get("DVC_EXP_NAME") or f"repro@{tags.get('git_commit', 'workspace')[:7]}"


def pipeline_run(experiment_id: str, dvc: psutil.Process | None = None) -> str:
    """The id of this pipeline execution's run, created by its first stage.

    Named after the DVC experiment (or `repro@<commit>`); carries every param, and the
    list of those that differ from the baseline commit as the tag `changed_params`.
    """
    client = mlflow.MlflowClient()
    key = pipeline_run_id()
    found = client.search_runs(
        [experiment_id],
        f"tags.run_kind = 'pipeline' and tags.pipeline_run_id = '{key}'",
        max_results=1,
    )
    if found:
        return found[0].info.run_id
    tags = {k: v for k, v in run_tags("pipeline").items() if k != "stage"}
    # Its process is DVC's: close_orphaned_runs marks it KILLED once DVC is gone for good.
    tags["pid"] = str(dvc.pid if dvc else os.getpid())
    name = execution_name(tags)
    try:
        params = flatten(read_yaml(Path("params.yaml")) or {})
    except VertiflowError:
        params = {}
    changed = _changed(params)
    tags.update(run_kind="pipeline", changed_params=", ".join(changed)[:5000] or "none")
    # The UI's "Created by" and "Source" columns (a run made by the client has neither)
    tags["mlflow.source.name"] = "dvc exp run" if os.environ.get("DVC_EXP_NAME") else "dvc repro"
    tags["mlflow.source.type"] = "LOCAL"
    with contextlib.suppress(Exception):  # no user name in some containers
        tags["mlflow.user"] = getpass.getuser()
    run = client.create_run(experiment_id, run_name=name, tags=tags)
    client.log_batch(
        run.info.run_id,
        params=[Param(k, str(v)[:6000]) for k, v in params.items()],
    )
    return run.info.run_id


def headline_metrics(
    metrics: Path = Path("metrics"), skip: set[str] = frozenset()
) -> dict[str, float]:
    """Every model's headline held-out metrics and gap to its limit, from its metrics file.

    The files are what DVC holds now: fresh from a stage that ran, or restored from the
    cache (the last metrics) for one that did not. The gaps are the models' own
    (`oracle_r2_gap`, `classifier_accuracy_gap`: the limit less the model's figure), not
    summarise's table: when DVC restores summarise from its run-cache no stage runs after
    evaluate to log that table, and a sweep's rows lost their gaps.
    """
    out: dict[str, float] = {}

    def number(key: str, value: Any) -> None:
        if isinstance(value, int | float) and not isinstance(value, bool):
            out[key] = float(value)

    reports = {}
    for name in HEADLINE:
        if name in skip:  # a file its stage has yet to rewrite (`stale_outputs`)
            continue
        with contextlib.suppress(OSError, ValueError):
            reports[name] = json.loads((metrics / f"{name}.json").read_text())
    for name, keys in HEADLINE.items():
        for key in keys:
            number(f"{name}_{key}", reports.get(name, {}).get(key))
    for crop, values in reports.get("cortex", {}).items():
        if isinstance(values, dict):
            for key in CORTEX_PER_CROP:
                number(f"cortex_{key_part(crop)}_{key}", values.get(key))
    return out


def dvc_hash_now(path: Path) -> str | None:
    """DVC's md5 of a file or folder as it is now (dvc-data, the hashing DVC itself uses:
    a folder's `<md5>.dir`), or None where it cannot be had."""
    from dvc_data.hashfile.build import build
    from dvc_data.hashfile.db import HashFileDB
    from dvc_objects.fs.local import LocalFileSystem
    from dvc_objects.fs.memory import MemoryFileSystem

    if not path.exists():
        return None
    try:
        odb = HashFileDB(MemoryFileSystem(), "/")
        _, _, obj = build(odb, str(path), LocalFileSystem(), "md5", dry_run=True)
    except Exception:  # unknown means changed: the file waits for its stage
        return None
    return obj.hash_info.value


def stale_outputs(ran: set[str], root: Path = Path(".")) -> set[str]:
    """The outputs (paths) that still hold the last data's or params' figures, until their
    own stage runs: those of a stage whose params or dependency paths differ from dvc.lock
    (DVC will run it), and of the stages downstream of one that is to run or that ran in
    this pipeline execution and changed what they read. A stage that ran and rewrote the
    very bytes dvc.lock records for a downstream stage's deps (a fresh clone rebuilding
    the committed models) leaves it up to date: DVC skips it ("didn't change"), so its
    files are current, and leaving them out had left the pipeline run without them for
    good (a fresh clone's `repro@` row had no oracle_r2 or classifier_accuracy). Dep
    contents are hashed as DVC hashes them; `${...}` paths are resolved from params.yaml."""
    try:
        stages = (read_yaml(root / "dvc.yaml") or {}).get("stages", {})
        locked = (read_yaml(root / "dvc.lock") or {}).get("stages", {})
        values = read_yaml(root / "params.yaml") or {}
    except VertiflowError:
        return set()
    flat = flatten(values)

    def paths(entries: list[Any] | None) -> set[str]:
        found = set()
        for entry in entries or []:
            path = str(next(iter(entry)) if isinstance(entry, dict) else entry)
            for key, value in flat.items():
                path = path.replace("${" + key + "}", str(value))
            found.add(path.rstrip("/"))
        return found

    def value(dotted: str) -> Any:
        node: Any = values
        for part in dotted.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        return node

    def changed(name: str) -> bool:
        lock = locked.get(name) or {}
        deps = {d["path"] for d in lock.get("deps") or []}
        recorded = (lock.get("params") or {}).get("params.yaml", {})
        if deps != paths(stages[name].get("deps")):
            return True
        return any(value(k) != v for k, v in recorded.items())

    def within(a: str, b: str) -> bool:
        return a == b or a.startswith(b + "/") or b.startswith(a + "/")

    made = {
        n: paths([e for k in ("outs", "metrics", "plots") for e in s.get(k) or []])
        for n, s in stages.items()
    }
    needs = {n: paths(s.get("deps")) for n, s in stages.items()}
    hashes: dict[str, str | None] = {}

    def as_locked(name: str, ups: set[str]) -> bool:
        """Every dep of `name` under these (finished) stages' outputs hashes as dvc.lock
        recorded it for `name`: DVC will find it unchanged."""
        recorded = {
            str(d.get("path", "")).rstrip("/"): d.get("md5")
            for d in (locked.get(name) or {}).get("deps") or []
        }
        for dep in needs[name]:
            if any(within(dep, o) for up in ups for o in made[up]):
                if dep not in hashes:
                    hashes[dep] = dvc_hash_now(root / dep)
                if recorded.get(dep) is None or recorded[dep] != hashes[dep]:
                    return False
        return True

    rerun = set(ran) | {n for n in stages if n not in ran and changed(n)}
    stale = set().union(*(made[n] for n in rerun - ran))
    for _ in stages:  # to a fixed point: downstream of downstream
        for name in set(stages) - rerun:
            ups = {up for up in rerun if any(within(d, o) for d in needs[name] for o in made[up])}
            if ups and (ups - set(ran) or not as_locked(name, ups)):
                rerun.add(name)
                stale |= made[name]
    return stale


def update_pipeline_run(run_id: str, status: str, stage: str) -> None:
    """Bring the pipeline run up to date after a stage: one batch of metrics, one status.

    Metrics files that `stale_outputs` names are left out until their stage runs: logged
    now, a farm's own data would keep the built-in data's gaps and crops in the run, as
    MLflow cannot drop a metric once logged."""
    client = mlflow.MlflowClient()
    tags = client.get_run(run_id).data.tags
    ran = {s for s in tags.get("stages_ran", "").split(",") if s} | {stage}
    skip = {Path(p).stem for p in stale_outputs(ran) if p.startswith("metrics/")}
    now = int(time.time() * 1000)
    metrics = [Metric(k, v, now, 0) for k, v in headline_metrics(skip=skip).items()]
    client.log_batch(run_id, metrics=metrics, tags=[RunTag("stages_ran", ",".join(sorted(ran)))])
    client.set_terminated(run_id, status)


def dataset(path: Path, name: str | None = None, digest: str | None = None) -> Any:
    """An MLflow dataset for a DVC-tracked file or folder: DVC's md5 as its digest (unless
    given), its path in the repository as its source."""
    from mlflow.data.dataset_source_registry import get_registered_sources
    from mlflow.data.meta_dataset import MetaDataset

    # MLflow registers this source class twice; resolving a path by name would warn.
    local = next(s for s in get_registered_sources() if s.__name__ == "LocalArtifactDatasetSource")
    return MetaDataset(
        local(path.as_posix()), name=name or path.name, digest=digest or dvc_md5(path)
    )


def log_inputs(run_id: str, datasets: list[Any], attempts: int = 5) -> None:
    """`MlflowClient.log_inputs`, again when it lost a race to create the dataset.

    MLflow's store creates a dataset on first use by looking it up, then inserting it.
    Two queued experiments logging the same data version at once both miss it, and one
    insert fails on the unique (experiment, name, digest) key: a stage failed so in CI.
    The dataset then exists, so the next attempt links it.
    """
    for attempt in range(attempts):
        try:
            return mlflow.MlflowClient().log_inputs(run_id, datasets)
        except mlflow.exceptions.MlflowException as exc:
            text = str(exc).lower()
            if attempt == attempts - 1 or not ("unique" in text or "duplicate" in text):
                raise
            time.sleep(0.1 * (attempt + 1))


def log_model_run(
    model_dir: Path,
    model_type: str,
    metrics: dict[str, Any],
    inputs: dict[str, Any],
    model_id: str | None = None,
) -> str:
    """A model stage's record: its datasets as run inputs (context -> dataset), its model
    folder as a LoggedModel (unless already logged: `model_id`), and its held-out metrics,
    on the run and linked to the model and the evaluation dataset. Returns the model id."""
    from mlflow.entities import DatasetInput, InputTag

    run_id = mlflow.active_run().info.run_id
    log_inputs(
        run_id,
        [
            DatasetInput(d._to_mlflow_entity(), [InputTag("mlflow.data.context", context)])
            for context, d in inputs.items()
        ],
    )
    model_id = model_id or log_model_dir(model_dir, "model", model_type)
    numbers = {
        k: float(v)
        for k, v in flatten(metrics).items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    }
    evaluated = inputs.get("testing") or inputs.get("evaluation")
    mlflow.log_metrics(numbers, model_id=model_id, dataset=evaluated)
    return model_id


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


def dvc_md5(path: Path, lock: Path = Path("dvc.lock")) -> str | None:
    """DVC's md5 of a tracked file or folder, as DVC computes it.

    A file's is the md5 of its bytes. A folder's (`<md5>.dir`) is read from DVC's records:
    the out of the stage that writes it in dvc.lock (already updated when a later stage of
    the same repro runs), else its `.dvc` file, else the last time a stage read it.
    """
    if path.is_file():
        digest = hashlib.md5()
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()
    target = path.as_posix().rstrip("/")
    entries: list[dict] = []
    with contextlib.suppress(OSError, VertiflowError, AttributeError, TypeError):
        stages = (read_yaml(lock) or {}).get("stages", {})
        entries += [o for s in stages.values() for o in s.get("outs", [])]
        entries += [d for s in stages.values() for d in s.get("deps", [])]
    with contextlib.suppress(OSError, VertiflowError, AttributeError, TypeError):
        entries = (read_yaml(Path(f"{target}.dvc")) or {}).get("outs", []) + entries
    for entry in entries:
        if str(entry.get("path", "")).rstrip("/") == target and entry.get("md5"):
            return entry["md5"]
    return None


def log_series(key: str, values: list[float]) -> None:
    """A sequence (a search's best value per generation) as one metric's steps: the MLflow
    UI then draws it as a curve."""
    for step, value in enumerate(values):
        mlflow.log_metric(key, value, step=step)


def log_model_dir(path: Path, name: str, model_type: str) -> str:
    """Log a model folder's files as a LoggedModel of the active run; returns its id.

    The files are logged as they are, not serialised again: DVC and MLflow then hold
    byte-identical models, and large ensembles are not re-encoded.
    """
    logged = mlflow.initialize_logged_model(name=name, model_type=model_type)
    mlflow.MlflowClient().log_model_artifacts(logged.model_id, str(path))
    mlflow.finalize_logged_model(logged.model_id, LoggedModelStatus.READY)
    return logged.model_id
