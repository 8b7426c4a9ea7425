"""Stage train_classifier: Classifier (A10): quality grade PREMIUM / STANDARD / REJECT."""

from pathlib import Path

import typer

from vertiflow import params
from vertiflow.stage import stage
from vertiflow.tabular import training


def main(
    params_file: Path = typer.Option(Path("params.yaml"), "--params"),
    train_path: Path = typer.Option(Path("data/prepared/train.parquet"), "--train"),
    out: Path = typer.Option(Path("models/classifier"), help="MLflow model directory to write."),
    selection: Path = typer.Option(
        Path("metrics/selection_classifier.json"), help="The model search's scores (DVC metrics)."
    ),
) -> None:
    section = params.section(params.load(params_file), "train_classifier")
    training.train_stage(
        "train_classifier",
        "classification",
        "quality_grade",
        section,
        train_path,
        out,
        selection_out=selection,
    )


app = stage(main, skip_imports=("torch",))  # scikit-learn only

if __name__ == "__main__":
    app()
