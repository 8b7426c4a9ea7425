"""Stage train_classifier: Classifier (A10): quality grade PREMIUM / STANDARD / REJECT."""

import vertiflow.pin_kernels  # noqa: F401  first: the same CPU kernels on every machine (README)

# isort: split
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
    oracle: Path = typer.Option(
        Path("models/oracle"), help="The Oracle, whose predicted yield is an input (oracle_input)."
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
        oracle_path=oracle if section["oracle_input"] else None,
    )


app = stage(main, skip_imports=("torch",))  # scikit-learn only

if __name__ == "__main__":
    app()
