"""Which metrics files the pipeline run leaves out while their stage has yet to run.

In a fresh clone `dvc repro` re-runs the model stages (no cache), they rewrite the
committed models byte for byte, and DVC skips `evaluate` ("didn't change"). The pipeline
run had left evaluate's files (oracle.json, classifier.json) out as "downstream of a stage
that ran", and no stage ran after to log them: the baseline's row in the sweep table had
no oracle_r2 or classifier_accuracy. Here DVC's own `dvc status` is the judge.
"""

from __future__ import annotations

import json
import shutil

import pytest

from vertiflow.lifecycle.tracking import stale_outputs
from vertiflow.testing import init_dvc_repo, run

DVC_YAML = """\
stages:
  train:
    cmd: python train.py
    deps: [data.txt]
    params: [train]
    outs: [models/m]
  evaluate:
    cmd: python evaluate.py
    deps: [models/m]
    metrics:
      - metrics/oracle.json:
          cache: false
"""
TRAIN = (
    "import os, shutil; os.makedirs('models/m', exist_ok=True); shutil.copy('data.txt', 'models/m')"
)
EVALUATE = "import json; json.dump({'r2': 0.9}, open('metrics/oracle.json', 'w'))"


@pytest.fixture
def repo(tmp_path):
    repo = tmp_path / "repo"
    (repo / "metrics").mkdir(parents=True)
    init_dvc_repo(repo)
    (repo / "dvc.yaml").write_text(DVC_YAML)
    (repo / "params.yaml").write_text("train: {depth: 3}\n")
    (repo / "data.txt").write_text("weights")
    (repo / "train.py").write_text(TRAIN)
    (repo / "evaluate.py").write_text(EVALUATE)
    run(["dvc", "repro", "-q"], repo)
    return repo


def dvc_will_run(repo, stage: str) -> bool:
    status = json.loads(run(["dvc", "status", "--json"], repo).stdout or "{}")
    return stage in status


def test_a_stage_that_rewrote_the_same_bytes_leaves_downstream_files_current(repo):
    # train ran again in this execution (a fresh clone: no cache) and wrote the same model
    shutil.rmtree(repo / "models")
    (repo / "models/m").mkdir(parents=True)
    (repo / "models/m/data.txt").write_text("weights")
    assert not dvc_will_run(repo, "evaluate")  # DVC skips it: its file is current
    assert stale_outputs({"train"}, repo) == set()


def test_a_stage_that_wrote_other_bytes_leaves_downstream_files_stale(repo):
    (repo / "models/m/data.txt").write_text("other weights")
    assert dvc_will_run(repo, "evaluate")
    assert stale_outputs({"train"}, repo) == {"metrics/oracle.json"}


def test_downstream_of_a_stage_yet_to_run_is_stale(repo):
    (repo / "params.yaml").write_text("train: {depth: 4}\n")  # train will run, not yet
    assert stale_outputs(set(), repo) == {"models/m", "metrics/oracle.json"}
