"""Process settings for running offline and hermetic, applied by one explicit call.

Nothing here runs at import: a stage, the CLI or the loader calls `configure()` first.
A value the user already set in the environment wins.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import sys
from pathlib import Path
from typing import NoReturn

DEFAULTS = {
    "MLFLOW_DISABLE_TELEMETRY": "true",  # no network on farm machines
    "YOLO_OFFLINE": "true",  # Ultralytics' online checks
    "YOLO_AUTOINSTALL": "false",  # never pip-install a missing plugin at run time
    "MPLBACKEND": "Agg",  # plots are written to files; no display
}
QUEUE_DIR = "/.dvc/tmp/exps/"
CHECKOUT_VARIABLE = "VERTIFLOW_CHECKOUT"


def checkout_root(cwd: Path | None = None) -> Path:
    """The user's checkout, also when running inside a queued experiment's temp copy, or
    the one VERTIFLOW_CHECKOUT names (an app that calls us from its own folder)."""
    if cwd is None and os.environ.get(CHECKOUT_VARIABLE):
        return Path(os.environ[CHECKOUT_VARIABLE]).resolve()
    path = (cwd or Path.cwd()).resolve().as_posix()
    return Path(path.split(QUEUE_DIR)[0])


def require_checkout() -> Path:
    """The checkout, or one clear error for an app run from its own folder (which would
    otherwise meet 'params.yaml not found' or a new, empty tracking store)."""
    root = checkout_root()
    if not ((root / "dvc.yaml").is_file() and (root / "params.yaml").is_file()):
        from vertiflow.errors import VertiflowError

        raise VertiflowError(
            f"{root}: not a VertiFlow checkout (no dvc.yaml and params.yaml here). Run from "
            f"the pipeline's checkout, or set {CHECKOUT_VARIABLE}=/path/to/the/checkout."
        )
    return root


def configure() -> None:
    for name, value in DEFAULTS.items():
        os.environ.setdefault(name, value)
    # Ultralytics' settings (and its font copy) in the checkout's ignored folder, so a
    # user's own settings file is never rewritten by a pipeline run.
    os.environ.setdefault("YOLO_CONFIG_DIR", str(checkout_root() / ".ultralytics"))
    one_blas_thread()


def one_blas_thread() -> None:
    """BLAS splits a sum across its threads, one per core: the same fit on a 1-core and a
    2-core machine differed in the last bits (model md5s in dvc.lock, a CV score in its
    5th digit). Our matrices are small, so one thread costs little. Libraries loaded
    later read the variable; those already loaded are limited now."""
    if "OPENBLAS_NUM_THREADS" in os.environ:  # the user's choice wins
        return
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    from threadpoolctl import threadpool_limits

    threadpool_limits(1, user_api="blas")


class _Skip(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Found (so `importlib.util.find_spec` answers, as polars asks), but fails to import."""

    def __init__(self, names: set[str]) -> None:
        self.names = names

    def find_spec(self, fullname: str, path: object, target: object = None):
        if fullname.partition(".")[0] in self.names:
            return importlib.machinery.ModuleSpec(fullname, self)
        return None

    def create_module(self, spec):
        raise ImportError(f"{spec.name} is not used by this stage (runtime.skip_imports)")

    def exec_module(self, module) -> None:  # never reached: create_module refuses
        pass


def skip_imports(*names: str) -> None:
    """Make `import name` fail at once in this process, for stages that never use it.

    skops builds its list of trusted types at import by walking every scikit-learn
    package, and one of them (array_api_compat's torch support) imports torch: about 4 s
    per scikit-learn stage on 2 cores, for nothing. A package walk skips what cannot be
    imported, so the trusted types and the saved models are the same.
    """
    if names and not any(isinstance(f, _Skip) for f in sys.meta_path):
        sys.meta_path.insert(0, _Skip(set(names)))


def exit_now(code: int) -> NoReturn:
    """End a finished stage process without Python's interpreter teardown.

    By then the stage has written its outputs and closed its MLflow runs, yet tearing
    down the modules of mlflow, scikit-learn and torch took 0.6-1.1 s per process here
    (measured: the same script ending with and without this), paid by every stage of
    every `dvc repro`. Exit handlers and logging still run and output is flushed; only
    the freeing of modules and objects, which the OS does at once, is skipped.
    """
    import atexit
    import logging

    atexit._run_exitfuncs()  # the handlers a normal exit would run
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
