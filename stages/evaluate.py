"""Stage evaluate: held-out metrics of every model, their gap to the Bayes limits, plots."""

import json
from pathlib import Path

import mlflow
import mlflow.sklearn
import polars as pl
import typer

from vertiflow import evaluation, modeling, params, tracking
from vertiflow.errors import exit_cleanly

app = typer.Typer(add_completion=False)


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n")
    mlflow.log_artifact(str(path))


@app.command()
@exit_cleanly
def main(
    prepared: Path = typer.Option(Path("data/prepared")),
    models: Path = typer.Option(Path("models")),
    metrics: Path = typer.Option(Path("metrics")),
) -> None:
    test = pl.read_parquet(prepared / "test.parquet")
    truth = pl.read_parquet(prepared / "truth.parquet")
    with tracking.stage_run("evaluate", {"test_rows": test.height}):
        oracle = mlflow.sklearn.load_model(str(models / "oracle"))
        classifier = mlflow.sklearn.load_model(str(models / "classifier"))
        # Each model takes the columns it was trained on (its own feature list in params).
        predicted = oracle.predict(modeling.frame(test, oracle.feature_names_in_))
        proba = evaluation.proba_in_grade_order(
            classifier, modeling.frame(test, classifier.feature_names_in_)
        )

        plots = metrics / "plots"
        plots.mkdir(parents=True, exist_ok=True)
        oracle_report = evaluation.oracle_report(test, predicted, truth)
        classifier_report = evaluation.classifier_report(test, proba, truth)
        _write_json(metrics / "oracle.json", oracle_report)
        _write_json(metrics / "classifier.json", classifier_report)
        evaluation.prediction_table(test, predicted).to_csv(
            plots / "oracle_predictions.csv", index=False
        )
        evaluation.confusion_table(test, proba).to_csv(
            plots / "classifier_confusion.csv", index=False
        )
        for grade, curve in evaluation.roc_tables(test, proba).items():
            curve.to_csv(plots / f"roc_{grade}.csv", index=False)
        mlflow.log_artifacts(str(plots), "plots")
        mlflow.log_metrics(
            {
                **{f"oracle_{k}": v for k, v in params.flatten(oracle_report).items()},
                **{f"classifier_{k}": v for k, v in params.flatten(classifier_report).items()},
            }
        )


if __name__ == "__main__":
    app()
