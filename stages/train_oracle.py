"""Stage train_oracle: Oracle (A9): fresh weight per plant from climate aggregates."""

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
    out: Path = typer.Option(Path("models/oracle"), help="MLflow model directory to write."),
    selection: Path = typer.Option(
        Path("metrics/selection_oracle.json"), help="The model search's scores (DVC metrics)."
    ),
) -> None:
    section = params.section(params.load(params_file), "train_oracle")
    training.train_stage(
        "train_oracle",
        "regression",
        "fresh_weight_g",
        section,
        train_path,
        out,
        selection_out=selection,
    )


app = stage(main, skip_imports=("torch",))  # scikit-learn only

if __name__ == "__main__":
    app()
