"""Stage validate: the gate before training; writes metrics/validation.json either way."""

import vertiflow.pin_kernels  # noqa: F401  first: the same CPU kernels on every machine (README)

# isort: split
import json
from pathlib import Path

import mlflow
import polars as pl
import typer

from vertiflow import params
from vertiflow.data import validation
from vertiflow.errors import DataError
from vertiflow.lifecycle import tracking
from vertiflow.stage import stage, write_json


def main(
    params_file: Path = typer.Option(Path("params.yaml"), "--params"),
    prepared: Path = typer.Option(Path("data/prepared")),
    report_path: Path = typer.Option(Path("metrics/validation.json"), "--report"),
) -> None:
    section = params.section(params.load(params_file), "validate")  # typed: Budgets' fields
    with tracking.stage_run("validate", {"validate": section}):
        report = validation.validate(
            pl.read_parquet(prepared / "train.parquet"),
            pl.read_parquet(prepared / "test.parquet"),
            json.loads((prepared / "checks.json").read_text()),
            validation.Budgets(**section),
        )
        write_json(report_path, report)
        mlflow.log_artifact(str(report_path))
        mlflow.log_metrics(validation.summary_metrics(report))
        for crop, n in report["test_batches_of_untrained_crops"].items():
            typer.echo(
                f"validate: {n} test batch(es) of crop '{crop}', which no training batch has: "
                "their held-out metrics measure the models' guess for a new crop.",
                err=True,
            )
        if gaps := report["telemetry"]["batches_with_gaps"]:
            typer.echo(
                f"validate: {gaps} batch(es) have fewer than {validation.GAP_SHARE:.0%} of the "
                f"farm's usual {report['telemetry']['usual_readings_per_day']:g} readings per "
                f"cycle day (a logger down for days; e.g. "
                f"{', '.join(report['telemetry']['gap_examples'])}): their features average "
                "what was logged.",
                err=True,
            )
        unread = report["batches"]["batches_without_valid_readings"]
        if unread.get("count") and report["passed"]:
            typer.echo(
                f"validate: {unread['count']} harvested batch(es) left out: no valid reading of "
                f"{', '.join(unread['by_sensor'])} (every reading empty or outside its physical "
                f"bounds; e.g. {', '.join(unread['examples'])}).",
                err=True,
            )
        if not report["passed"]:
            listed = "\n  - ".join(report["problems"])
            raise DataError(f"validation failed ({report_path}):\n  - {listed}")


app = stage(main)

if __name__ == "__main__":
    app()
