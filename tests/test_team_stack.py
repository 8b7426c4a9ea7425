"""DVC on S3 and MLflow on a tracking server, against real servers on free loopback ports."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import tempfile
import time
from pathlib import Path

import mlflow
import numpy as np
import polars as pl
import pytest
import yaml

from vertiflow.lifecycle import serving
from vertiflow.lifecycle.stack import DVC_BUCKET, MLFLOW_BUCKET, Stack, free_port
from vertiflow.tabular import modeling
from vertiflow.testing import env, run

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


def test_pipeline_logs_runs_and_models_to_the_server_and_s3(
    small_copy, stack, monkeypatch, tmp_path
):
    """...and an app's load of the registered model through S3 leaves no copy of it in the
    temporary folder (MLflow's download folder is never removed: one copy per load)."""
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
    # MLflow downloads it to a temp folder of its own and leaves it there: a folder here
    model = mlflow.pyfunc.load_model(f"models:/{logged[0].model_id}", dst_path=str(tmp_path))
    test = pl.read_parquet(small_copy / "data" / "prepared" / "test.parquet")
    x = modeling.frame(test, model.metadata.get_input_schema().input_names())
    assert len(model.predict(x)) == test.height

    version = mlflow.register_model(f"models:/{logged[0].model_id}", "oracle").version
    mlflow.MlflowClient().set_registered_model_alias("oracle", "champion", version)
    system_tmp = tmp_path / "system_tmp"
    system_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(system_tmp))
    served = serving.load_model("oracle", use_registry=True, log_root=tmp_path / "log")
    assert sorted(p.name for p in system_tmp.iterdir()) == []
    assert np.array_equal(np.asarray(served.predict(x)), np.asarray(model.predict(x)))


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


def bucket(s3) -> dict[str, int]:
    """Every object in the DVC bucket: key -> size."""
    objects = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=DVC_BUCKET):
        objects.update({o["Key"]: o["Size"] for o in page.get("Contents", [])})
    return objects


def pushed_objects(repo: Path) -> set[str]:
    """The remote keys `dvc push` must store: every cached out in dvc.lock (outs, metrics
    and plots marked `cache: false` are not), a folder as its manifest (.dir) and its
    files. (The local cache holds more: the run cache's copies of uncached outs, which a
    plain push leaves out.)"""
    stages = yaml.safe_load((repo / "dvc.yaml").read_text())["stages"]
    uncached = {
        name
        for stage in stages.values()
        for entry in stage.get("outs", []) + stage.get("metrics", []) + stage.get("plots", [])
        if isinstance(entry, dict)
        for name, opts in entry.items()
        if (opts or {}).get("cache") is False
    }
    cache = repo / ".dvc" / "cache" / "files" / "md5"
    hashes = set()
    for stage in yaml.safe_load((repo / "dvc.lock").read_text())["stages"].values():
        for out in stage.get("outs", []):
            if out["path"] not in uncached:
                hashes.add(out["md5"])
            if out["path"] not in uncached and out["md5"].endswith(".dir"):
                manifest = (cache / out["md5"][:2] / out["md5"][2:]).read_text()
                hashes |= {entry["md5"] for entry in json.loads(manifest)}
    return {f"dvcstore/files/md5/{h[:2]}/{h[2:]}" for h in hashes}


def outputs(repo: Path) -> dict[str, dict[str, str]]:
    """md5 of every file of every stage output dvc.lock records (cached or not)."""
    lock = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    paths = sorted({o["path"] for s in lock.values() for o in s.get("outs", [])})
    return {p: md5s(repo / p) if (repo / p).is_dir() else md5s_file(repo / p) for p in paths}


def md5s_file(path: Path) -> dict[str, str]:
    return {path.name: hashlib.md5(path.read_bytes()).hexdigest()}


def start_push_one_attempt(repo: Path, e: dict[str, str]) -> subprocess.Popen:
    """`dvc push`, one file at a time, in the background. botocore's default retries (with
    s3fs's) take ~15 s per file against a server that is gone; one attempt each keeps a
    push that meets an outage short."""
    return subprocess.Popen(
        ["dvc", "push", "-j", "1"],
        cwd=repo,
        env={**e, "AWS_MAX_ATTEMPTS": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.reliability
def test_s3_outage_mid_push_then_resumed_push_and_pull_restore_every_output(small_copy, tmp_path):
    """The S3 server stops once a known share of the cache has reached the bucket: the push
    fails cleanly, the objects already stored survive, a second push sends the rest, and a
    fresh clone pulls every output byte for byte (each object's bytes hash to its key)."""
    repo = small_copy
    wanted = pushed_objects(repo)
    stop_at = len(wanted) * 2 // 3
    s = Stack(tmp_path / "stack")
    try:
        s.start_s3()
        e, s3 = with_stack(s), s.s3_client()
        push = start_push_one_attempt(repo, e)
        while len(bucket(s3)) < stop_at and push.poll() is None:
            time.sleep(0.05)
        assert push.poll() is None, "the push ended before the outage"
        reached = len(bucket(s3))
        s.stop("s3")
        out, err = push.communicate(timeout=600)
        assert push.returncode != 0, f"the push should notice the server went away: {out}"
        assert "Traceback" not in err and "ERROR" in err, err
        assert stop_at <= reached < len(wanted)

        s.start_s3()
        kept = bucket(s3)
        assert len(kept) >= reached  # what was stored before the outage is still there
        resumed = dvc(["push"], repo, e)
        sent = re.search(r"(\d+) files? pushed", resumed.stdout)
        # only what was missing is sent (DVC's count leaves out folder manifests, .dir)
        assert sent and 0 < int(sent[1]) <= len(wanted) - len(kept), resumed.stdout
        stored = bucket(s3)
        assert set(stored) == wanted, "objects lost or foreign"
        for key in stored:
            body = s3.get_object(Bucket=DVC_BUCKET, Key=key)["Body"].read()
            digest = key.removeprefix("dvcstore/files/md5/").replace("/", "").removesuffix(".dir")
            assert hashlib.md5(body).hexdigest() == digest, f"{key} is corrupt"

        clone = tmp_path / "clone"
        run(["git", "clone", "-q", str(repo), str(clone)], tmp_path)
        dvc(["pull"], clone, e)
        assert "up to date" in dvc(["status"], clone, e).stdout
        assert outputs(clone) == outputs(repo)
    finally:
        s.stop()


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


@pytest.mark.reliability
def test_the_stack_stops_and_says_so_when_one_of_its_servers_dies(tmp_path):
    """With its S3 process killed, the stack printed nothing and MLflow kept serving; a
    stage failed 5 minutes later with a 316-line traceback that never named S3."""
    import psutil

    ports = ["--s3-port", "0", "--mlflow-port", "0"]
    proc = subprocess.Popen(
        ["vertiflow", "stack", "--data-dir", str(tmp_path / "s"), *ports],
        env=env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline, lines = time.monotonic() + 120, [""]
    while time.monotonic() < deadline and "Ctrl-C stops" not in lines[-1]:
        lines.append(proc.stdout.readline())
        assert proc.poll() is None, proc.stdout.read()
    (weed,) = [p for p in psutil.Process(proc.pid).children() if p.name() == "weed"]
    weed.kill()
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 1 and "the s3 server stopped" in out and "s3.log" in out, out
    assert "Traceback" not in out and "stopped cleanly" in out
    # weed killed leaves its gRPC sockets in /tmp (no option moves them): the stack removes
    # the ones its ports name
    (url,) = [line.split("=", 1)[1].strip() for line in lines if "AWS_ENDPOINT_URL=" in line]
    port = int(url.rsplit(":", 1)[1])
    assert not Path(f"/tmp/seaweedfs-s3-grpc-{port + 10000}.sock").exists()


@pytest.mark.reliability
def test_loading_a_model_from_a_dead_server_fails_fast_naming_it(tmp_path):
    """An app's load_model against a server that is down sat 8 minutes in MLflow's
    retries before a traceback; the stages had failed in seconds all along."""
    import os
    import sys

    dead = f"http://127.0.0.1:{free_port()}"
    code = "from vertiflow.lifecycle.serving import load_model; load_model('oracle')"
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "MLFLOW_TRACKING_URI": dead},
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=600,
    )
    assert time.monotonic() - start < 60
    assert (
        proc.returncode != 0 and f"server at {dead}" in proc.stderr and "unreachable" in proc.stderr
    )


def test_credentials_file_is_ignored_and_the_remote_named():
    """Where credentials go (.dvc/config.local) git ignores; tests/test_secrets.py scans
    every tracked file with detect-secrets."""
    root = Path(__file__).resolve().parents[1]
    ignored = subprocess.run(["git", "check-ignore", "-q", ".dvc/config.local"], cwd=root)
    assert ignored.returncode == 0, ".dvc/config.local must be git-ignored"
    assert DVC_BUCKET in (root / ".dvc" / "config").read_text()


def test_stack_command_prints_its_environment_and_stops_cleanly(tmp_path):
    """...and leaves nothing in TMPDIR, nor the sockets weed names after its ports in /tmp
    itself: weed's sockets, logs and work folder had gathered in /tmp by the hundred."""
    system_tmp = tmp_path / "tmp"
    system_tmp.mkdir()
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
        env={**env(), "TMPDIR": str(system_tmp)},
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
    } <= set(exports), f"exit {proc.poll()}, output:\n{''.join(lines)}"
    assert exports["AWS_REQUEST_CHECKSUM_CALCULATION"] == "when_required"
    import requests

    assert requests.get(exports["MLFLOW_TRACKING_URI"] + "/health", timeout=5).ok
    proc.terminate()
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0 and "stopped cleanly" in out
    with pytest.raises(requests.ConnectionError):
        requests.get(exports["MLFLOW_TRACKING_URI"] + "/health", timeout=5)
    assert sorted(p.name for p in system_tmp.iterdir()) == []
    port = exports["AWS_ENDPOINT_URL"].rsplit(":", 1)[1]
    assert not list(Path("/tmp").glob(f"seaweedfs-*-{port}.sock"))
