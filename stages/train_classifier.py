"""Stage train_classifier: Classifier (A10): quality grade PREMIUM / STANDARD / REJECT."""

from pathlib import Path

import mlflow
import polars as pl
import typer

from vertiflow import modeling, params, tracking
from vertiflow.errors import exit_cleanly

app = typer.Typer(add_completion=False)


@app.command()
@exit_cleanly
def main(
    params_file: Path = typer.Option(Path("params.yaml"), "--params"),
    train_path: Path = typer.Option(Path("data/prepared/train.parquet"), "--train"),
    out: Path = typer.Option(Path("models/classifier"), help="MLflow model directory to write."),
) -> None:
    section = params.section(params.load(params_file), "train_classifier")
    with tracking.stage_run("train_classifier", {"train_classifier": section}):
        model, x, fit_seconds = modeling.train(
            "classification", pl.read_parquet(train_path), "quality_grade", section
        )
        modeling.save_and_log(model, out, x)
        mlflow.log_metrics({"fit_seconds": fit_seconds, "train_rows": len(x)})


if __name__ == "__main__":
    app()
