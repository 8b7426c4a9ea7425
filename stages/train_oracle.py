"""Stage train_oracle: Oracle (A9): fresh weight per plant from climate aggregates."""

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
    out: Path = typer.Option(Path("models/oracle"), help="MLflow model directory to write."),
) -> None:
    section = params.section(params.load(params_file), "train_oracle")
    modeling.train_stage("train_oracle", "regression", "fresh_weight_g", section, train_path, out)


if __name__ == "__main__":
    app()
