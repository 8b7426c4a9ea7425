"""Stage simulate: write the built-in farm's raw tables (the default data source)."""

import vertiflow.pin_kernels  # noqa: F401  first: the same CPU kernels on every machine (README)

# isort: split
import shutil
from pathlib import Path

import mlflow
import typer

from vertiflow import params
from vertiflow.errors import VertiflowError
from vertiflow.farm.simulator import SimConfig, write_farm
from vertiflow.lifecycle import tracking
from vertiflow.stage import stage


def main(
    params_file: Path = typer.Option(Path("params.yaml"), "--params"),
    out: Path = typer.Option(Path("data/raw"), help="Folder for the raw tables."),
) -> None:
    section = params.section(params.load(params_file), "simulate")
    try:
        config = SimConfig(**section)
    except TypeError as exc:
        raise VertiflowError(f"params.yaml: simulate: {exc}") from None
    with tracking.stage_run("simulate", {"simulate": section}):
        shutil.rmtree(out, ignore_errors=True)
        mlflow.log_metrics(write_farm(out, config))


app = stage(main)

if __name__ == "__main__":
    app()
