"""DVC on S3 and MLflow on a tracking server, against real servers on free loopback ports."""

from __future__ import annotations

import hashlib
import subprocess
import time
from pathlib import Path

import mlflow
import numpy as np
import polars as pl
import pytest

from conftest import env, run
from vertiflow.lifecycle.stack import DVC_BUCKET, MLFLOW_BUCKET, Stack, free_port
from vertiflow.tabular import modeling

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with Stack(tmp_path_factory.mktemp("stack")) as s:
        yield s


def with_stack(s: Stack, **extra: str) -> dict[str, str]:
    e = env()
    e.update({k: v for k, v in s.env().items() if k != "MLFLOW_TRACKING_URI"}, **extra)
    return e


def dvc(
    args: list[str], repo: Path, e: dict[str, str], check: bool = True
) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        ["dvc", *args], cwd=repo, env=e, capture_output=True, text=True, timeout=600
    )
    if check and proc.returncode:
        raise AssertionError(f"dvc {' '.join(args)}: {proc.stdout}\n{proc.stderr}")
    return proc


def md5s(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.md5(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_push_then_pull_into_a_fresh_clone(small_copy, stack, tmp_path):
    e = with_stack(stack)
    assert "pushed" in dvc(["push"], small_copy, e).stdout
    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(small_copy), str(clone)], tmp_path)
    dvc(["pull"], clone, e)
    assert "up to date" in dvc(["status"], clone, e).stdout
    assert md5s(clone / "models") == md5s(small_copy / "models")
    model = mlflow.pyfunc.load_model(str(clone / "models" / "oracle"))
    test = pl.read_parquet(clone / "data" / "prepared" / "test.parquet")
    x = modeling.frame(test, model.metadata.get_input_schema().input_names())
    assert np.all(np.asarray(model.predict(x)) > 0)


def test_pipeline_logs_runs_and_models_to_the_server_and_s3(small_copy, stack, monkeypatch):
    e = with_stack(stack, MLFLOW_TRACKING_URI=stack.mlflow_url)
    dvc(["repro", "--force", "--single-item", "train_oracle"], small_copy, e)
    mlflow.set_tracking_uri(stack.mlflow_url)
    run_ = mlflow.search_runs(
        experiment_names=["yield-prediction"],
        filter_string="tags.stage = 'train_oracle'",
        output_format="list",
    )[0]
    assert run_.data.params["train_oracle.estimator"] == "hist_gradient_boosting"
    keys = [o["Key"] for o in stack.s3_client().list_objects_v2(Bucket=MLFLOW_BUCKET)["Contents"]]
    assert any(k.endswith("MLmodel") for k in keys) and any(k.endswith("model.skops") for k in keys)
    logged = mlflow.search_logged_models(
        experiment_ids=[run_.info.experiment_id],
        filter_string=f"source_run_id = '{run_.info.run_id}'",
        output_format="list",
    )
    for key, value in with_stack(stack).items():  # this process loads the model through S3 too
        monkeypatch.setenv(key, value)
    model = mlflow.pyfunc.load_model(f"models:/{logged[0].model_id}")
    test = pl.read_parquet(small_copy / "data" / "prepared" / "test.parquet")
    assert (
        len(model.predict(modeling.frame(test, model.metadata.get_input_schema().input_names())))
        == test.height
    )


@pytest.mark.reliability
def test_wrong_credentials_are_refused_and_the_cache_survives(small_copy, stack):
    cache = md5s(small_copy / ".dvc" / "cache")
    wrong = with_stack(stack, AWS_SECRET_ACCESS_KEY="not-the-secret")  # pragma: allowlist secret
    proc = dvc(["push"], small_copy, wrong, check=False)
    assert proc.returncode != 0
    assert (
        "SignatureDoesNotMatch" in proc.stderr or "Forbidden" in proc.stderr or "403" in proc.stderr
    )
    assert md5s(small_copy / ".dvc" / "cache") == cache


@pytest.mark.reliability
@pytest.mark.xdist_group("default_repo")  # the worker that already built the full pipeline
def test_s3_server_stopped_mid_push_then_started_again(default_repo, tmp_path):
    with Stack(tmp_path / "stack") as s:
        e = with_stack(s)
        push = subprocess.Popen(
            ["dvc", "push", "-j", "1"],
            cwd=default_repo,
            env=e,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(2.0)
        s.stop("s3")
        _, _err = push.communicate(timeout=600)
        assert push.returncode != 0, "the push should notice the server went away"
        s.start_s3()
        assert dvc(["push"], default_repo, e).returncode == 0
        run(["git", "commit", "-qam", "pipeline outputs pushed"], default_repo)
        clone = tmp_path / "clone"
        run(["git", "clone", "-q", str(default_repo), str(clone)], tmp_path)
        dvc(["pull"], clone, e)
        assert md5s(clone / "data" / "raw") == md5s(default_repo / "data" / "raw")


@pytest.mark.reliability
def test_unreachable_tracking_server_fails_fast_and_keeps_earlier_outputs(small_copy):
    dead = f"http://127.0.0.1:{free_port()}"
    start = time.monotonic()
    proc = run(
        ["dvc", "repro", "--force", "--single-item", "train_oracle"],
        small_copy,
        check=False,
        env_extra={"MLFLOW_TRACKING_URI": dead},
    )
    assert time.monotonic() - start < 60
    assert proc.returncode != 0 and dead in proc.stderr and "Traceback" not in proc.stderr
    status = run(["dvc", "status", "prepare", "validate"], small_copy).stdout
    assert "up to date" in status


def test_credentials_file_is_ignored_and_the_remote_named():
    """Where credentials go (.dvc/config.local) git ignores; tests/test_secrets.py scans
    every tracked file with detect-secrets."""
    root = Path(__file__).resolve().parents[1]
    ignored = subprocess.run(["git", "check-ignore", "-q", ".dvc/config.local"], cwd=root)
    assert ignored.returncode == 0, ".dvc/config.local must be git-ignored"
    assert DVC_BUCKET in (root / ".dvc" / "config").read_text()


def test_stack_command_prints_its_environment_and_stops_cleanly(tmp_path):
    proc = subprocess.Popen(
        [
            "vertiflow",
            "stack",
            "--data-dir",
            str(tmp_path / "s"),
            "--s3-port",
            "0",
            "--mlflow-port",
            "0",
        ],
        env=env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        lines.append(line)
        if "Ctrl-C stops" in line or proc.poll() is not None:
            break
    exports = dict(
        line.removeprefix("export ").strip().split("=", 1)
        for line in lines
        if line.startswith("export ")
    )
    assert {
        "MLFLOW_TRACKING_URI",
        "AWS_ACCESS_KEY_ID",
        "AWS_ENDPOINT_URL",
        "MLFLOW_S3_ENDPOINT_URL",
    } <= set(exports)
    assert exports["AWS_REQUEST_CHECKSUM_CALCULATION"] == "when_required"
    import requests

    assert requests.get(exports["MLFLOW_TRACKING_URI"] + "/health", timeout=5).ok
    proc.terminate()
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0 and "stopped cleanly" in out
    with pytest.raises(requests.ConnectionError):
        requests.get(exports["MLFLOW_TRACKING_URI"] + "/health", timeout=5)
