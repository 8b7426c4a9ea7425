"""Stage optimise_cortex (A11): the recipe with the best margin per crop, and its regret."""

from pathlib import Path

import mlflow
import mlflow.sklearn
import pandas as pd
import polars as pl
import typer

from vertiflow import cortex, params
from vertiflow.lifecycle import tracking
from vertiflow.stage import stage, write_json


def main(
    params_file: Path = typer.Option(Path("params.yaml"), "--params"),
    prepared: Path = typer.Option(Path("data/prepared")),
    models: Path = typer.Option(Path("models")),
    out: Path = typer.Option(Path("models/cortex"), help="Folder for the recommended recipes."),
    metrics: Path = typer.Option(Path("metrics")),
) -> None:
    section = params.section(params.load(params_file), "optimise_cortex")
    train = pl.read_parquet(prepared / "train.parquet")
    has_truth = pl.read_parquet(prepared / "truth.parquet").height > 0
    with tracking.stage_run("optimise_cortex", {"optimise_cortex": section}):
        oracle = mlflow.sklearn.load_model(str(models / "oracle"))
        classifier = mlflow.sklearn.load_model(str(models / "classifier"))
        results = cortex.recommend_all(section, train, oracle, classifier, with_truth=has_truth)

        write_json(out / "recipes.json", results["recipes"])
        write_json(metrics / "cortex.json", results["metrics"])
        plots = metrics / "cortex_plots"
        plots.mkdir(parents=True, exist_ok=True)
        for crop, trace in results["traces"].items():
            frame = pd.DataFrame({"generation": range(1, len(trace) + 1), "best_margin": trace})
            frame.to_csv(plots / f"trace_{crop}.csv", index=False)
            for step, value in enumerate(trace):
                mlflow.log_metric(f"{crop}_best_margin", value, step=step)
        mlflow.log_metrics(params.flatten(results["metrics"]))
        mlflow.log_artifact(str(out / "recipes.json"))


app = stage(main)

if __name__ == "__main__":
    app()
