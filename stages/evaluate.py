"""Stage evaluate: held-out metrics of every model, their gap to the Bayes limits, plots.

YOLO is scored by its own stage (on the validation split it trains with); evaluate logs
its figures beside the tabular ones and registers all three models through the
champion/challenger gate (vertiflow.lifecycle.registry).
"""

import vertiflow.pin_kernels  # noqa: F401  first: the same CPU kernels on every machine (README)

# isort: split
from pathlib import Path

import mlflow
import polars as pl
import typer

from vertiflow import params
from vertiflow.lifecycle import registry, report, tracking
from vertiflow.stage import stage, write_json
from vertiflow.tabular import scoring
from vertiflow.vision import yolo_data


def main(
    params_file: Path = typer.Option(Path("params.yaml"), "--params"),
    prepared: Path = typer.Option(Path("data/prepared")),
    models: Path = typer.Option(Path("models")),
    metrics: Path = typer.Option(Path("metrics")),
) -> None:
    p = params.load(params_file)
    dataset_dir = p["images"]["dataset"]
    train = pl.read_parquet(prepared / "train.parquet")  # the no-skill baselines
    test = pl.read_parquet(prepared / "test.parquet")
    truth = pl.read_parquet(prepared / "truth.parquet")
    with tracking.stage_run("evaluate", {"register": p["register"], "test_rows": test.height}):
        reports = scoring.write_outputs(test, scoring.score(test, truth, models), metrics)
        decisions = registry.promote_all(
            p["register"],
            train,
            test,
            models,
            reports,
            yolo_data.read(Path(dataset_dir)).pairs["val"],
            p["train_yolo"],
            registry.version_tags(
                str(prepared / "train.parquet"),
                dataset_dir,
                str(models / "oracle") if p["train_classifier"]["oracle_input"] else None,
            ),
        )
        for key, decision in decisions.items():  # also in metrics/registry.json
            typer.echo(f"evaluate: {report.decision_sentence(key, decision)}")
        mlflow.log_artifact(str(write_json(metrics / "registry.json", decisions)))
        mlflow.log_metrics(registry.decision_metrics(decisions))
        mlflow.log_metrics(
            {f"{m}_{k}": v for m, r in reports.items() for k, v in params.flatten(r).items()}
        )


app = stage(main)

if __name__ == "__main__":
    app()
