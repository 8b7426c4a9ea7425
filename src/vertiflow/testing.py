"""Test support: scratch copies of this checkout in which DVC, MLflow and git run for real.

Shared by the tests (tests/conftest.py builds its fixtures from it) and the benchmarks,
which drive the same scratch checkouts; like `numpy.testing`, importable wherever the
package is, and used only from a checkout.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]  # the checkout (an editable install)
VENV_BIN = Path(sys.executable).parent

# A pipeline small enough to run in seconds, for tests that need outputs but not quality.
SMALL = {
    "simulate.racks": 2,
    "simulate.modules_per_rack": 4,
    "simulate.cycles_per_module": 12,
    "train_oracle.hyperparams.max_iter": 100,
    "train_classifier.hyperparams.max_iter": 50,
    "optimise_cortex.optimiser.maxiter": 8,
    "optimise_cortex.optimiser.popsize": 6,
    "optimise_cortex.optimiser.smoothing_samples": 4,
    "optimise_cortex.truth_search.popsize": 8,
    "optimise_cortex.truth_search.maxiter": 30,
    "simulate_images.train_images": 24,
    "simulate_images.val_images": 8,
    "simulate_images.image_size": 64,
    "train_yolo.epochs": 2,
    "train_yolo.image_size": 64,
    "train_yolo.batch": 8,
    "train_yolo.workers": 0,
    # Tiny data makes weak models: let the first versions through the registry's gate.
    "register.gates.beat_no_skill": False,
    "register.gates.oracle_r2": -100.0,
    "register.gates.classifier_accuracy": 0.0,
    "register.gates.yolo_map50": 0.0,
}


YOLO_CI_EPOCHS = 10  # the default pipeline's detector in CI (default_repo)
YOLO_CI_FLOOR = 0.5  # its mAP50 floor: an untrained detector scores 0.0, 10 epochs 0.70


# What a stage process runs on once `vertiflow.pin_kernels` has set its variables.
KERNELS_PROBE = """
import vertiflow.pin_kernels, json, numpy, torch
from numpy._core._multiarray_umath import __cpu_features__
from threadpoolctl import threadpool_info
blas = {i.get("architecture") for i in threadpool_info() if i["internal_api"] == "openblas"}
print(json.dumps({
    "numpy_avx512": bool(__cpu_features__.get("AVX512_SKX")),
    "openblas": blas.pop() if len(blas) == 1 else sorted(map(str, blas)),
    "torch": torch.backends.cpu.get_cpu_capability(),
}))
"""
PINNED_KERNELS = {"numpy_avx512": False, "openblas": "Haswell", "torch": "AVX2"}


def stage_kernels(cwd: Path, unset: tuple[str, ...] = ()) -> dict:
    """The CPU kernels a stage process starts on here (numpy's AVX-512, OpenBLAS's core
    type, PyTorch's capability); `unset`: variables left out of its environment."""
    environ = {k: v for k, v in env().items() if k not in unset}
    proc = subprocess.run(
        [sys.executable, "-c", KERNELS_PROBE],
        cwd=cwd, env=environ, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(proc.stdout)


def env() -> dict[str, str]:
    e = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MLFLOW_", "DVC_", "VERTIFLOW_", "AWS_"))
    }
    e["PATH"] = f"{VENV_BIN}{os.pathsep}{e.get('PATH', '')}"
    e["MLFLOW_DISABLE_TELEMETRY"] = "true"
    e["GIT_AUTHOR_NAME"] = e["GIT_COMMITTER_NAME"] = "test"
    e["GIT_AUTHOR_EMAIL"] = e["GIT_COMMITTER_EMAIL"] = "test@example.com"
    return e


def run(
    cmd: list[str], cwd: Path, check: bool = True, env_extra: dict[str, str] | None = None, **kw
) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        cmd, cwd=cwd, env={**env(), **(env_extra or {})}, capture_output=True, text=True, **kw
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


def start_queue(repo: Path, workers: int, env_extra: dict[str, str] | None = None) -> None:
    """`dvc queue start`; its workers are detached and would hold a captured pipe open."""
    with (repo / "queue.log").open("w") as log:
        subprocess.run(
            ["dvc", "queue", "start", "-j", str(workers)],
            cwd=repo,
            env={**env(), **(env_extra or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            check=True,
            timeout=120,
        )


def finished_experiments(repo: Path) -> int:
    """Experiments the queue has finished (kept or failed), read from git refs: cheap.

    `dvc queue status` costs a second of CPU per call, which on 2 cores is CPU taken from
    the very experiments being waited for. DVC keeps each finished experiment as a ref
    under refs/exps/<baseline>/ and each failed one as an entry of the
    refs/exps/celery/failed stash.
    """

    def git(*args: str) -> list[str]:
        proc = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True)
        return proc.stdout.split() if proc.returncode == 0 else []

    skip = ("refs/exps/celery/", "refs/exps/exec/", "refs/exps/apply/", "refs/exps/temp/")
    kept = [
        r
        for r in git("for-each-ref", "--format=%(refname)", "refs/exps")
        if not r.startswith(skip) and r != "refs/exps/stash"
    ]
    failed = git("reflog", "show", "--format=%H", "refs/exps/celery/failed", "--")
    return len(kept) + len(failed)


def wait_for_queue(repo: Path, expected: int, timeout: float = 900) -> str:
    """Block until `expected` experiments have finished and the queue is idle; returns
    `dvc queue status`. Polls git refs each second and asks DVC itself every 30 s."""
    start = time.monotonic()
    last_status = start
    baseline = finished_experiments(repo)
    while time.monotonic() - start < timeout:
        time.sleep(1)
        done = finished_experiments(repo) - baseline >= expected
        if done or time.monotonic() - last_status > 30:
            last_status = time.monotonic()
            status = run(["dvc", "queue", "status"], repo).stdout
            if "Queued" not in status and "Running" not in status:
                return status + failed_logs(repo, status)
    raise AssertionError(f"queue still busy after {timeout} s")


def failed_logs(repo: Path, status: str) -> str:
    """`dvc queue logs` of each failed task, so that an assertion on the status says why."""
    failed = [line.split()[0] for line in status.splitlines() if line.rstrip().endswith("Failed")]
    return "".join(
        f"\n--- dvc queue logs {task} ---\n"
        + run(["dvc", "queue", "logs", task], repo, check=False).stdout[-6000:]
        for task in failed
    )


def stop_queue(repo: Path, timeout: float = 120) -> None:
    """`dvc queue stop --kill`, then wait until its workers are gone.

    Stopping is asynchronous: an idle worker that has not yet seen the request takes any
    task queued meanwhile, with its old environment. (Even after this wait, the next
    `dvc queue start` in the same checkout ran one task per worker and stopped, the
    symptom of treeverse/dvc#10562: benchmarks/sweep_parallel.py uses a second checkout.)
    """
    run(["dvc", "queue", "stop", "--kill"], repo, check=False)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if "0 active, 0 idle" in run(["dvc", "queue", "status"], repo, check=False).stdout:
            return
        time.sleep(2)
    raise AssertionError(f"dvc queue workers still alive {timeout} s after `dvc queue stop`")


def set_params(repo: Path, overrides: dict[str, object]) -> None:
    path = repo / "params.yaml"
    params = yaml.safe_load(path.read_text())
    for dotted, value in overrides.items():
        node = params
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node[key]
        node[leaf] = value
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def clone_checkout(dest: Path) -> Path:
    """A clean clone of the working tree: tracked and non-ignored files, fresh git history."""
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    for name in filter(None, files):
        src = REPO / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    run(["git", "init", "-q", "-b", "main"], dest)
    run(["git", "add", "-A"], dest)
    run(["git", "commit", "-qm", "clone"], dest)
    return dest


def init_dvc_repo(dest: Path) -> Path:
    """A new git + DVC repository, quiet as this one: `dvc init` alone turns DVC's usage
    analytics on (and reports itself), and every later dvc command in it would post a
    report to dvc.org."""
    dest.mkdir(parents=True, exist_ok=True)
    run(["git", "init", "-q"], dest)
    run(["dvc", "init", "-q"], dest, env_extra={"DVC_NO_ANALYTICS": "1"})
    run(["dvc", "config", "core.analytics", "false"], dest)
    run(["dvc", "config", "core.check_update", "false"], dest)
    return dest


def commit_all(repo: Path, message: str) -> None:
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", message, "--allow-empty"], repo)


def tree_digest(*paths: Path) -> dict[str, bytes]:
    """Every file's bytes under `paths`: to prove a failed run changed nothing."""
    out = {}
    for root in paths:
        for f in sorted(root.rglob("*")) if root.is_dir() else [root]:
            if f.is_file():
                out[str(f)] = f.read_bytes()
    return out


# Small pipelines train one fixed estimator (the CV model search is tested on its own, in
# tests/unit/test_model_selection.py, and runs in the default pipeline).
SMALL.update(
    {
        "train_oracle.estimator": "hist_gradient_boosting",
        "train_classifier.estimator": "hist_gradient_boosting",
        # every hyperparam a test or sweep overrides must exist: `-S` cannot add a key
        "train_oracle.hyperparams.learning_rate": 0.2,
        "train_classifier.hyperparams.learning_rate": 0.15,
    }
)
