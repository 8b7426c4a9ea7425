"""Stage simulate: write the built-in farm's raw tables (the default data source)."""

import shutil
from pathlib import Path

import mlflow
import typer

from vertiflow import params, tracking
from vertiflow.errors import VertiflowError, exit_cleanly
from vertiflow.simulator import SimConfig, write_farm

app = typer.Typer(add_completion=False)


@app.command()
@exit_cleanly
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


if __name__ == "__main__":
    app()
