"""The report's verdict per model, on a real git + DVC repository with controlled losses.

The held-out losses are written by hand so that the truth is known: a clearly better
classifier, a clearly worse one, and one whose accuracy went up by chance while its
per-batch losses did not move beyond the noise (the interval must decide, not the sign).
"""

from __future__ import annotations

import json
import shutil
import socket

import numpy as np
import pandas as pd
import pytest

from vertiflow.testing import REPO, commit_all, init_dvc_repo, run

DVC_YAML = """\
stages:
  evaluate:
    cmd: "true"
    metrics:
      - metrics/classifier.json:
          cache: false
    outs:
      - metrics/heldout_losses.csv:
          cache: false
"""


def _write(repo, accuracy: float, losses: np.ndarray, first: int = 0) -> None:
    (repo / "metrics").mkdir(exist_ok=True)
    (repo / "metrics/classifier.json").write_text(json.dumps({"accuracy": accuracy}))
    pd.DataFrame(
        {
            "batch_id": [f"B{i:04d}" for i in range(first, first + len(losses))],
            "oracle_squared_error": np.ones(len(losses)),
            "classifier_log_loss": losses,
        }
    ).to_csv(repo / "metrics/heldout_losses.csv", index=False)


@pytest.fixture
def repo(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    init_dvc_repo(repo)
    shutil.copy(REPO / "params.yaml", repo / "params.yaml")
    (repo / "dvc.yaml").write_text(DVC_YAML)
    base = np.random.default_rng(0).gamma(2.0, 0.4, 300)  # log losses of 300 batches
    _write(repo, 0.70, base)
    commit_all(repo, "base")
    return repo, base


def _verdict(repo) -> str:
    out = run(["vertiflow", "report", "--base", "HEAD", "--out", "pr/report.md"], repo).stdout
    row = next(line for line in out.splitlines() if line.startswith("| Classifier |"))
    return row.split("|")[6].strip()


def test_a_clearly_better_classifier_is_called_better(repo):
    path, base = repo
    _write(path, 0.74, base * 0.8)
    assert _verdict(path) == "**better**"


def test_a_clearly_worse_classifier_is_called_worse(repo):
    path, base = repo
    _write(path, 0.66, base * 1.25)
    assert _verdict(path) == "**worse**"


def test_higher_accuracy_within_the_noise_is_not_called_better(repo):
    path, base = repo
    noise = np.random.default_rng(1).normal(0, 0.3, len(base))
    _write(path, 0.71, np.clip(base + noise - noise.mean(), 0.01, None))
    assert _verdict(path) == "within noise"


def test_an_unchanged_classifier_is_called_unchanged(repo):
    path, _ = repo
    assert _verdict(path) == "unchanged"


def test_the_report_fits_a_github_comment_and_says_when_it_shortened(repo):
    path, _ = repo
    metrics = {f"metric_{i:04d}": float(i) for i in range(4000)}
    (path / "metrics/classifier.json").write_text(json.dumps({"accuracy": 0.7, **metrics}))
    commit_all(path, "many metrics")
    (path / "metrics/classifier.json").write_text(
        json.dumps({"accuracy": 0.7, **{k: v + 1 for k, v in metrics.items()}})
    )
    out = run(["vertiflow", "report", "--base", "HEAD", "--out", "pr/report.md"], path).stdout
    assert len(out) <= 65_536
    assert "shortened:" in out


def test_a_figure_on_other_held_out_batches_is_not_called_better(repo):
    """A farm's next export gives a new test split: accuracy 0.673 -> 0.824 read as
    'better' while the Bayes accuracy of the new batches had risen as much."""
    path, base = repo
    _write(path, 0.80, base, first=len(base))
    assert _verdict(path) == "not comparable: other held-out batches"


def _report(repo, **env_extra) -> str:
    return run(
        ["vertiflow", "report", "--base", "HEAD", "--out", "pr/report.md"],
        repo,
        env_extra=env_extra,
        timeout=90,
    ).stdout


def test_the_report_is_written_when_the_tracking_server_is_down(repo):
    """cml.yaml sets MLFLOW_TRACKING_URI for the runs' links. With the server down, the
    report failed after 4 minutes of MLflow's retries with a 500-line traceback, and the
    pull request got no report at all; the links are all it needs the server for."""
    path, base = repo
    _write(path, 0.66, base * 1.25)
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = _report(path, MLFLOW_TRACKING_URI=f"http://127.0.0.1:{port}")
    assert "| Classifier |" in out and "**worse**" in out
    assert "Links left out: the MLflow tracking server at" in out and "unreachable" in out
    assert "Links left out" in (path / "pr/report.md").read_text()


REGISTERED = {
    "classifier": {
        "name": "classifier",
        "version": 1,
        "promoted": True,
        "champion": 1,
        "reason": "first version to pass the quality gate",
    }
}


def test_the_base_registry_decisions_are_not_reported_as_this_changes(repo):
    """metrics/registry.json is committed: when evaluate did not run for a change, the
    report replayed the base's decisions ("version 1 registered and promoted to champion"
    under "No change against `HEAD`") as if this change had made them."""
    path, _ = repo
    (path / "metrics/registry.json").write_text(json.dumps(REGISTERED))
    commit_all(path, "a registered classifier")
    out = _report(path)
    assert "No registry decision of this change" in out
    assert "promoted to champion" not in out
    retrained = {"classifier": {**REGISTERED["classifier"], "version": 2, "promoted": False}}
    (path / "metrics/registry.json").write_text(json.dumps(retrained))
    out = _report(path)
    assert "`classifier` version 2 registered; champion stays version 1" in out


def test_a_classifier_above_its_bayes_accuracy_by_chance_is_not_called_below_it(repo):
    """The default pipeline's classifier is 0.10 points above the Bayes accuracy on its
    test batches; the report wrote "-0.10 points below Bayes 0.7686"."""
    path, base = repo
    _write(path, 0.70, base)
    report = {"accuracy": 0.7696, "accuracy_gap": -0.00104, "bayes": {"accuracy": 0.7686}}
    (path / "metrics/classifier.json").write_text(json.dumps(report))
    row = next(line for line in _report(path).splitlines() if line.startswith("| Classifier |"))
    assert "0.10 points above Bayes 0.7686 (chance on these batches)" in row, row
    assert "-0.10" not in row
