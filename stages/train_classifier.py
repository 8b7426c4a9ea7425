"""Stage train_classifier: Classifier (A10): quality grade PREMIUM / STANDARD / REJECT."""

from pathlib import Path

import typer

from vertiflow import modeling, params
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
    modeling.train_stage(
        "train_classifier", "classification", "quality_grade", section, train_path, out
    )


if __name__ == "__main__":
    app()
