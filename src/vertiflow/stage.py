"""The skeleton every stage script shares: runtime settings, clean errors, JSON outputs.

A stage script is: parse its typed params -> call the package -> write outputs -> log,
inside `tracking.stage_run`. `@stage` wraps the Typer command so that a user's mistake
prints one paragraph and exits 1, with the process configured by `runtime.configure()`.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from vertiflow import runtime
from vertiflow.errors import exit_cleanly


def stage(fn: Callable[..., Any], skip_imports: tuple[str, ...] = ()) -> typer.Typer:
    """A Typer app whose one command is `fn`, run configured and with clean errors.

    `skip_imports`: heavy packages this stage never uses (see runtime.skip_imports).
    """

    @functools.wraps(fn)
    def configured(*args: Any, **kwargs: Any) -> Any:
        runtime.configure()
        runtime.skip_imports(*skip_imports)
        return fn(*args, **kwargs)

    # `python stages/x.py --help` says what the stage does: its script's docstring
    doc = fn.__doc__ or getattr(sys.modules.get(fn.__module__), "__doc__", None)
    app = StageApp(add_completion=False, rich_markup_mode="markdown")
    app.command(help=doc)(exit_cleanly(configured))
    return app


class StageApp(typer.Typer):
    """Run as a program (`app()` in a stage script), the process ends through
    `runtime.exit_now` with the command's exit code; Typer's test runner and other
    in-process callers use the command itself and are unaffected."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            super().__call__(*args, **kwargs)
            code = 0
        except SystemExit as done:  # Click's standalone mode always ends this way
            if isinstance(done.code, str):  # what Python itself would print, then exit 1
                print(done.code, file=sys.stderr)
            code = done.code if isinstance(done.code, int) else int(done.code is not None)
        runtime.exit_now(code)


def write_json(path: Path, data: Any) -> Path:
    """Indented, key order kept, newline-terminated: stable bytes for DVC and git diffs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path


def write_csv(path: Path, frame: Any) -> Path:
    """A pandas table as a DVC plot file (no index column), its folder made if need be."""
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return path
