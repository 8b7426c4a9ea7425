"""`vertiflow --help`: what a user reads first."""

import os
import re
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from vertiflow.cli import app


@pytest.mark.parametrize("command", ["monitor", "log-hours"])
def test_a_commands_help_reads_as_sentences(command):
    """Typer's rich mode kept each docstring line break: the command list showed a
    three-line summary and the details broke mid-sentence ("too / few / predictions")."""
    result = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    listed = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"}).output
    summary = next(line for line in listed.splitlines() if f" {command} " in line)
    assert summary.rstrip(" │").endswith(".")  # the whole summary on one line
    text = re.sub(r"\s+", " ", result.output)
    sentence = {"monitor": "too few predictions to check", "log-hours": "instead of the whole"}
    assert sentence[command] in text
    assert not any(line.strip() in ("few", "line:") for line in result.output.splitlines())


def test_a_stage_scripts_help_says_what_the_stage_does():
    """`python stages/prepare.py --help` listed options only: the script's docstring,
    which says what the stage does, was not shown."""
    from vertiflow.testing import REPO

    proc = subprocess.run(
        [sys.executable, "stages/prepare.py", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert proc.returncode == 0
    assert "Stage prepare: raw tables -> per-batch features" in proc.stdout


def test_python_dash_m_knows_every_command():
    """`python -m vertiflow.cli` ran the app halfway through the module, before the
    commands defined after Cortex existed: `monitor` was 'No such command'."""
    proc = subprocess.run(
        [sys.executable, "-m", "vertiflow.cli", "monitor", "--help"],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert proc.returncode == 0, proc.stderr
    assert "Compare new data with the training data" in proc.stdout
