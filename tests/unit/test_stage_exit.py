"""A stage process ends without interpreter teardown, and nothing a normal exit does is lost."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import atexit, sys
    from pathlib import Path
    import typer
    from vertiflow.errors import VertiflowError
    from vertiflow.stage import stage

    def main(out: Path = typer.Option(...), fail: bool = False) -> None:
        atexit.register(lambda: (out / "atexit").write_text("ran"))
        print("buffered output", end="")  # no newline: still in the buffer at exit
        if fail:
            raise VertiflowError("params.yaml: the key is wrong.")

    stage(main)()
    print("not reached")
    """
)


def run_stage(tmp_path, *args: str) -> subprocess.CompletedProcess:
    script = tmp_path / "stage.py"
    script.write_text(SCRIPT)
    cmd = [sys.executable, str(script), "--out", str(tmp_path), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def test_a_finished_stage_exits_0_with_its_output_and_exit_handlers(tmp_path):
    done = run_stage(tmp_path)
    assert (done.returncode, done.stdout) == (0, "buffered output"), done.stderr
    assert (tmp_path / "atexit").read_text() == "ran"


def test_a_user_error_exits_1_with_its_message(tmp_path):
    done = run_stage(tmp_path, "--fail")
    assert done.returncode == 1 and "the key is wrong" in done.stderr
    assert "Traceback" not in done.stderr and (tmp_path / "atexit").exists()


def test_a_usage_error_keeps_clicks_exit_code(tmp_path):
    done = run_stage(tmp_path, "--no-such-option")
    assert done.returncode == 2 and "No such option" in done.stderr
