"""Faults survived, with nothing lost: the figures behind the README's reliability paragraph.

On the small pipeline (vertiflow.testing.SMALL), each in its own scratch copy:

- kills: every stage SIGKILLed (whole process group) at three points: 1 s after DVC
  starts it (imports), halfway through its usual run time, and as soon as one of its
  outputs (or its staging folder) is being written. Survived: the next plain `dvc repro`
  succeeds, `dvc status` is clean and git sees no difference from the reference run
  (dvc.lock, uncached metrics, no leftover files). A kill that lands after the stage
  finished is not counted as tried.
- S3 outages: the SeaweedFS server is stopped three times during pushes, each once a
  known number of objects is in the bucket (40, 60, 80 % of the cache), restarted, and
  the push resumed; then every object's bytes are checked against its md5 key and a fresh
  clone pulls every output, compared file by file.
- malformed inputs: every case of tests/test_bad_input.py (raw data) and
  tests/test_bad_params.py (params.yaml) through `dvc repro`: a clean error is a non-zero
  exit naming the problem (the test's expected words) and no Python traceback. (That
  outputs are kept is each test's own check; note that DVC deletes a stage's outs before
  it runs the stage's command, so a stage that then refuses its params leaves them gone
  until the next successful `dvc repro` restores them.)
- parallel experiments: 8 queued experiments (train_classifier.seed 1..8) on
  `OMP_NUM_THREADS=1 dvc queue start -j 2`, logging to the team stack's `mlflow server`
  (artifacts in S3). Lost: a stage run or pipeline run missing for an experiment; doubled:
  more than one run for one (experiment, stage).

Writes benchmarks/results/faults.json. `python benchmarks/faults.py --quick` runs one
stage's kills, one outage and a few malformed inputs (a smoke test of this script);
`--only malformed` or `--only parallel` re-runs that section and merges it into the file.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import mlflow
import yaml

from common import REPO, WORK, write

# The same fault cases and injectors as the reliability tests: their modules, not conftest
# (whose helpers are vertiflow.testing), are imported from tests/.
sys.path.insert(0, str(REPO / "tests"))
import test_bad_input
import test_bad_params
from test_interruption import (
    STAGES,
    kill_stage,
    stage_outs,
    start_forced_repro,
    stateful_reference,
)
from test_team_stack import bucket, outputs, pushed_objects, start_push_one_attempt, with_stack

from vertiflow.lifecycle.stack import DVC_BUCKET, Stack
from vertiflow.testing import (
    SMALL,
    clone_checkout,
    commit_all,
    run,
    set_params,
    start_queue,
    stop_queue,
    wait_for_queue,
)

QUICK = "--quick" in sys.argv
HERE = WORK / "faults"
TRACEBACKS: list[str] = []  # every command output checked here that held a Python traceback
OWN_WORDS = {"malformed": ("bad input", "bad param"), "parallel": ("parallel",)}  # theirs


def checked(text: str, where: str) -> str:
    if "Traceback" in text:
        TRACEBACKS.append(f"{where}: {text[-400:]}")
    return text


def copy_of(reference: Path, name: str) -> Path:
    dest = HERE / name
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(reference, dest, symlinks=True)
    return dest


def recovered(repo: Path) -> tuple[bool, str]:
    again = run(["dvc", "repro"], repo, check=False, timeout=900)
    checked(again.stdout + again.stderr, f"recovery in {repo.name}")
    if again.returncode != 0 or "Traceback" in again.stderr:
        return False, f"repro exit {again.returncode}: {again.stderr[-500:]}"
    status = run(["dvc", "status"], repo).stdout
    if "Data and pipelines are up to date" not in status:
        return False, f"dvc status: {status[-500:]}"
    changed = run(["git", "status", "--porcelain", "--untracked-files=all"], repo).stdout
    return (not changed), changed[-500:]


def stage_seconds(repo: Path, stage: str) -> float:
    start = time.perf_counter()
    run(["dvc", "repro", "-f", "-s", stage], repo, timeout=900)
    return time.perf_counter() - start


def kills(reference: Path) -> dict:
    per_stage = {}
    for stage in STAGES[:2] if QUICK else STAGES:
        half = stage_seconds(copy_of(reference, f"kill-{stage}"), stage) / 2  # DVC included
        repo = copy_of(reference, f"kill-{stage}")  # afresh: as the reference run left it
        stateful_reference(repo, stage)
        points = {"starting": None, "halfway": half, "writing": None}
        row = {"tried": 0, "survived": 0, "not_landed": 0, "failures": []}
        for point, delay in points.items():
            if not recovered(repo)[0]:
                row["failures"].append(f"{point}: the copy was not clean before the kill")
                break
            try:
                if delay is None:
                    trigger, said = kill_stage(repo, stage, point)
                else:
                    trigger, said = kill_after(repo, stage, delay)
            except AssertionError as exc:  # the stage finished before the kill landed
                row["not_landed"] += 1
                row["failures"].append(f"{point}: not landed: {str(exc)[:200]}")
                continue
            row["tried"] += 1
            checked(said, f"{stage} killed {point}")  # up to the kill: no stage crashed
            ok, why = recovered(repo)
            row["survived"] += ok
            if not ok:
                row["failures"].append(f"{point} ({trigger}): {why}")
        per_stage[stage] = row
        shutil.rmtree(repo, ignore_errors=True)
        print(f"kills {stage}: {row['survived']}/{row['tried']}", flush=True)
    return {
        "points": list(points),
        "tried": sum(r["tried"] for r in per_stage.values()),
        "survived": sum(r["survived"] for r in per_stage.values()),
        "per_stage": per_stage,
    }


def kill_after(repo: Path, stage: str, delay: float) -> tuple[str, str]:
    """SIGKILL `dvc repro -f -s stage` `delay` seconds after it starts (DVC included)."""
    log_path = repo.parent / f"kill-{stage}-halfway.log"
    proc = start_forced_repro(repo, stage, log_path)
    try:
        proc.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    output = log_path.read_text()
    assert proc.returncode == -signal.SIGKILL, f"{stage} ended before {delay:.1f} s"
    assert "Updating lock file" not in output, f"killed too late, {stage} had finished"
    return f"{delay:.1f} s after start", output


def s3_outages(reference: Path) -> dict:
    repo = copy_of(reference, "s3")
    wanted = pushed_objects(repo)
    shares = [0.5] if QUICK else [0.4, 0.6, 0.8]
    result = {"objects": len(wanted), "tried": 0, "survived": 0, "stopped_at": []}
    s = Stack(HERE / "stack-s3")
    try:
        s.start_s3()
        e, s3 = with_stack(s), s.s3_client()
        for share in shares:
            stop_at = int(len(wanted) * share)
            push = start_push_one_attempt(repo, e)
            while len(bucket(s3)) < stop_at and push.poll() is None:
                time.sleep(0.05)
            if push.poll() is not None:
                push.communicate()
                continue  # the push finished first: not an outage
            reached = len(bucket(s3))
            s.stop("s3")
            _, err = push.communicate(timeout=900)
            checked(err, f"push stopped at {reached} objects")
            result["tried"] += 1
            result["stopped_at"].append(reached)
            clean = push.returncode != 0 and "Traceback" not in err
            s.start_s3()
            result["survived"] += clean and len(bucket(s3)) >= reached
        pushed = run(["dvc", "push"], repo, check=False, env_extra=with_stack(s), timeout=900)
        checked(pushed.stderr, "resumed push")
        stored = bucket(s3)
        corrupt = 0
        for key in stored:
            body = s3.get_object(Bucket=DVC_BUCKET, Key=key)["Body"].read()
            digest = key.removeprefix("dvcstore/files/md5/").replace("/", "").removesuffix(".dir")
            corrupt += hashlib.md5(body).hexdigest() != digest
        clone = HERE / "s3-clone"
        shutil.rmtree(clone, ignore_errors=True)
        run(["git", "clone", "-q", str(repo), str(clone)], HERE)
        pull = run(["dvc", "pull"], clone, check=False, env_extra=with_stack(s), timeout=900)
        checked(pull.stderr, "pull")
        mine, theirs = outputs(repo), outputs(clone) if pull.returncode == 0 else {}
        result.update(
            final_push_ok=pushed.returncode == 0,
            objects_lost=len(wanted - set(stored)),
            objects_corrupt=corrupt,
            pull_ok=pull.returncode == 0,
            outputs_compared=sum(len(files) for files in mine.values()),
            outputs_differing=sum(
                1 for path, files in mine.items() for f, h in files.items()
                if theirs.get(path, {}).get(f) != h
            ),
        )  # fmt: skip
    finally:
        s.stop()
    print(f"s3: {result}", flush=True)
    return result


def malformed(reference: Path) -> dict:
    tried, clean, failures = 0, 0, []
    cases = test_bad_input.CASES[:3] if QUICK else test_bad_input.CASES
    for corrupt, stage, expected in cases:
        repo = copy_of(reference, "bad-input")
        corrupt(test_bad_input._farm(repo))
        set_params(repo, {"prepare.raw_dir": "data/farm"})
        proc = run(["dvc", "repro"], repo, check=False, timeout=600)
        said = checked(proc.stdout + proc.stderr, f"bad input {corrupt.__name__}")
        ok = (
            proc.returncode != 0
            and f"failed to reproduce '{stage}'" in said
            and all(fragment in said for fragment in expected)
            and "Traceback" not in said
        )
        tried, clean = tried + 1, clean + ok
        if not ok:
            failures.append(f"input {corrupt.__name__}: {said[-300:]}")
    repo = copy_of(reference, "bad-params")
    good = (repo / "params.yaml").read_text()
    for key, value, expected in test_bad_params.CASES[:3] if QUICK else test_bad_params.CASES:
        (repo / "params.yaml").write_text(good)
        if value is test_bad_params.DELETE:
            test_bad_params._delete(repo, key)
        else:
            set_params(repo, {key: value})
        proc = run(["dvc", "repro"], repo, check=False, timeout=600)
        said = checked(proc.stdout + proc.stderr, f"bad param {key}")
        ok = proc.returncode != 0 and "Traceback" not in said and expected in said and key in said
        tried, clean = tried + 1, clean + ok
        if not ok:
            failures.append(f"param {key}={value!r}: {said[-300:]}")
    result = {
        "tried": tried,
        "clean_errors": clean,
        "raw_data_cases": len(cases),
        "params_cases": tried - len(cases),
        "failures": failures,
    }
    print(f"malformed: {clean}/{tried}", flush=True)
    return result


def parallel_experiments(reference: Path) -> dict:
    count = 2 if QUICK else 8
    repo = copy_of(reference, "sweep")
    s = Stack(HERE / "stack-sweep")
    with s:
        e = {**s.env(), "OMP_NUM_THREADS": "1"}
        for seed in range(1, count + 1):
            run(["dvc", "exp", "run", "--queue", "-S", f"train_classifier.seed={seed}"], repo)
        start = time.perf_counter()
        start_queue(repo, 2, e)
        try:
            status = wait_for_queue(repo, expected=count, timeout=3600)
        finally:
            stop_queue(repo)
        seconds = time.perf_counter() - start
        names = [
            line.split()[0]
            for line in run(["dvc", "exp", "list", "--name-only"], repo).stdout.splitlines()
            if line.strip()
        ]
        mlflow.set_tracking_uri(s.mlflow_url)
        client = mlflow.MlflowClient()
        experiments = [x.experiment_id for x in client.search_experiments()]
        runs = client.search_runs(experiments, max_results=5000)
    per = Counter(
        (r.data.tags.get("dvc_exp_name"), r.data.tags.get("stage") or r.data.tags.get("run_kind"))
        for r in runs
    )
    stages = {stage for (_, stage) in per}
    lost = [f"{n}/{st}" for n in names for st in stages if per.get((n, st), 0) == 0]
    doubled = [f"{n}/{st}: {c}" for (n, st), c in per.items() if c > 1]
    result = {
        "queued": count,
        "workers": 2,
        "succeeded": status.count("Success"),
        "experiments_lost": count - len(names),
        "experiments_kept": len(names),
        "mlflow_runs": len(runs),
        "stages_per_experiment": sorted(s for s in stages if s),
        "runs_lost": len(lost),
        "runs_doubled": len(doubled),
        "left_running": sum(r.info.status == "RUNNING" for r in runs),
        "failed_runs": sum(r.info.status == "FAILED" for r in runs),
        "details": lost + doubled,
        "seconds": round(seconds, 1),
    }
    print(f"parallel: {result}", flush=True)
    return result


def only(section: str) -> None:
    """`--only malformed|parallel`: re-run one section on a fresh reference; merge it in."""
    import json

    from common import RESULTS

    figures = json.loads((RESULTS / "faults.json").read_text())
    figures.pop("machine", None)
    reference = small_reference()
    if section == "malformed":
        figures["malformed_inputs"] = malformed(reference)
    else:
        figures["parallel_experiments"] = parallel_experiments(reference)
    kept = [t for t in figures["traceback_details"] if not t.startswith(OWN_WORDS[section])]
    figures["tracebacks"] = len(kept + TRACEBACKS)
    figures["traceback_details"] = kept + TRACEBACKS
    print(write("faults", figures))


def small_reference() -> Path:
    shutil.rmtree(HERE, ignore_errors=True)
    HERE.mkdir(parents=True)
    reference = clone_checkout(HERE / "reference")
    set_params(reference, SMALL)
    run(["dvc", "repro"], reference, timeout=1800)
    commit_all(reference, "small pipeline")
    assert stage_outs(reference, "train_oracle")
    return reference


def main() -> None:
    if "--only" in sys.argv:
        return only(sys.argv[sys.argv.index("--only") + 1])
    start = time.perf_counter()
    reference = small_reference()
    figures = {
        "kills": kills(reference),
        "s3_outages": s3_outages(reference),
        "malformed_inputs": malformed(reference),
        "parallel_experiments": parallel_experiments(reference),
    }
    figures["tracebacks"] = len(TRACEBACKS)
    figures["traceback_details"] = TRACEBACKS
    figures["seconds"] = round(time.perf_counter() - start, 1)
    figures["quick"] = QUICK
    print(write("faults_quick" if QUICK else "faults", figures))
    print(yaml.safe_dump({k: v for k, v in figures.items() if k != "kills"}, sort_keys=False))


if __name__ == "__main__":
    main()
