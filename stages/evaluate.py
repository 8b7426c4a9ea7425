"""Stage evaluate: held-out metrics of every model, their gap to the Bayes limits, plots.

YOLO is scored by its own stage (on the validation split it trains with); evaluate logs
its figures beside the tabular ones and registers all three models (vertiflow.registry).
"""

import json
from pathlib import Path

import mlflow
import mlflow.sklearn
import polars as pl
import typer

from vertiflow import evaluation, modeling, params, registry, tracking, yolo_data
from vertiflow.errors import exit_cleanly

app = typer.Typer(add_completion=False)


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n")
    mlflow.log_artifact(str(path))


@app.command()
@exit_cleanly
def main(
    params_file: Path = typer.Option(Path("params.yaml"), "--params"),
    prepared: Path = typer.Option(Path("data/prepared")),
    models: Path = typer.Option(Path("models")),
    metrics: Path = typer.Option(Path("metrics")),
) -> None:
    all_params = params.load(params_file)
    register = params.section(all_params, "register")
    dataset_dir = params.section(all_params, "images")["dataset"]
    test = pl.read_parquet(prepared / "test.parquet")
    truth = pl.read_parquet(prepared / "truth.parquet")
    with tracking.stage_run("evaluate", {"register": register, "test_rows": test.height}):
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
        yolo_report = json.loads((metrics / "yolo.json").read_text())
        evaluation.prediction_table(test, predicted).to_csv(
            plots / "oracle_predictions.csv", index=False
        )
        evaluation.confusion_table(test, proba).to_csv(
            plots / "classifier_confusion.csv", index=False
        )
        for grade, curve in evaluation.roc_tables(test, proba).items():
            curve.to_csv(plots / f"roc_{grade}.csv", index=False)
        mlflow.log_artifacts(str(plots), "plots")

        common = {k: v for k, v in tracking.run_tags("evaluate").items() if k != "stage"}
        train_data = tracking.dvc_dep_hash("train_oracle", str(prepared / "train.parquet"))
        tags = {
            "oracle": {**common, "data_version": str(train_data)},
            "classifier": {**common, "data_version": str(train_data)},
            "yolo": {
                **common,
                "data_version": str(tracking.dvc_dep_hash("train_yolo", dataset_dir)),
            },
        }
        decisions = registry.promote_all(
            register,
            test,
            models,
            {"oracle": oracle_report, "classifier": classifier_report, "yolo": yolo_report},
            yolo_data.read(Path(dataset_dir)).pairs["val"],
            params.section(all_params, "train_yolo"),
            tags,
        )
        _write_json(metrics / "registry.json", decisions)
        mlflow.log_metrics(
            {f"{k}_promoted": int(d["promoted"]) for k, d in decisions.items()}
            | {
                f"{k}_improvement_{b}": d["comparison"][stat]
                for k, d in decisions.items()
                if "comparison" in d
                for b, stat in (
                    ("mean", "improvement"),
                    ("ci_low", "ci_low"),
                    ("ci_high", "ci_high"),
                )
            }
        )
        mlflow.log_metrics(
            {
                **{f"oracle_{k}": v for k, v in params.flatten(oracle_report).items()},
                **{f"classifier_{k}": v for k, v in params.flatten(classifier_report).items()},
                **{f"yolo_{k}": v for k, v in params.flatten(yolo_report).items()},
            }
        )


if __name__ == "__main__":
    app()
