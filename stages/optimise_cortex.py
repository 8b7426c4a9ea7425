"""Stage optimise_cortex (A11): the recipe with the best margin per crop, and its regret."""

import vertiflow.pin_kernels  # noqa: F401  first: the same CPU kernels on every machine (README)

# isort: split
import json
from pathlib import Path

import mlflow
import mlflow.sklearn
import polars as pl
import typer

from vertiflow import cortex, params
from vertiflow.lifecycle import tracking
from vertiflow.stage import stage, write_csv, write_json

DATA = {"training": "train", "evaluation": "truth"}  # MLflow dataset context: table


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
    crops = json.loads((prepared / "crops.json").read_text())
    world = json.loads((prepared / "world.json").read_text())["world"] if has_truth else None
    with tracking.stage_run("optimise_cortex", {"optimise_cortex": section}):
        oracle = mlflow.sklearn.load_model(str(models / "oracle"))
        classifier = mlflow.sklearn.load_model(str(models / "classifier"))
        results = cortex.recommend_all(section, train, oracle, classifier, crops, world)

        said = cortex.attach_notices(section, results["recipes"])
        write_json(out / "recipes.json", results["recipes"])
        write_json(out / "skipped.json", results["skipped"])  # crops given no recipe, and why
        for crop, why in results["skipped"].items():
            typer.echo(f"optimise_cortex: no recipe for crop '{crop}': {why}.", err=True)
        for notice in said:
            typer.echo(f"optimise_cortex: {notice}.", err=True)
        write_json(metrics / "cortex.json", results["metrics"])
        for crop, trace in results["traces"].items():
            name = params.key_part(crop)  # a crop name is the farm's: spaces, brackets, ...
            write_csv(metrics / "cortex_plots" / f"trace_{name}.csv", cortex.trace_table(trace))
            tracking.log_series(f"{name}_best_margin", trace)
        inputs = {k: tracking.dataset(prepared / f"{t}.parquet") for k, t in DATA.items()}
        tracking.log_model_run(out, "cortex-recipes", results["metrics"], inputs)
        convergence = results["convergence"].items()
        mlflow.set_tags({f"{params.key_part(c)}.convergence": v["message"] for c, v in convergence})
        mlflow.set_tag("skipped_crops", ", ".join(results["skipped"]) or "none")


app = stage(main, skip_imports=("torch",))  # scikit-learn only

if __name__ == "__main__":
    app()
