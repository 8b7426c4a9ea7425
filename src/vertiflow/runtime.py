"""Process settings for running offline and hermetic, applied by one explicit call.

Nothing here runs at import: a stage, the CLI or the loader calls `configure()` first.
A value the user already set in the environment wins.
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULTS = {
    "MLFLOW_DISABLE_TELEMETRY": "true",  # no network on farm machines
    "YOLO_OFFLINE": "true",  # Ultralytics' online checks
    "YOLO_AUTOINSTALL": "false",  # never pip-install a missing plugin at run time
    "MPLBACKEND": "Agg",  # plots are written to files; no display
}
QUEUE_DIR = "/.dvc/tmp/exps/"


def checkout_root(cwd: Path | None = None) -> Path:
    """The user's checkout, also when running inside a queued experiment's temp copy."""
    path = (cwd or Path.cwd()).resolve().as_posix()
    return Path(path.split(QUEUE_DIR)[0])


def configure() -> None:
    for name, value in DEFAULTS.items():
        os.environ.setdefault(name, value)
    # Ultralytics' settings (and its font copy) in the checkout's ignored folder, so a
    # user's own settings file is never rewritten by a pipeline run.
    os.environ.setdefault("YOLO_CONFIG_DIR", str(checkout_root() / ".ultralytics"))
