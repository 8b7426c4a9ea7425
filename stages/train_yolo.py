"""Stage train_yolo: the skin-condition detector (Ultralytics), offline and hermetic."""

import json
import shutil
import tempfile
from pathlib import Path

import mlflow
import typer

from vertiflow import params, tracking, yolo, yolo_data
from vertiflow.errors import exit_cleanly

app = typer.Typer(add_completion=False)


@app.command()
@exit_cleanly
def main(
    params_file: Path = typer.Option(Path("params.yaml"), "--params"),
    out: Path = typer.Option(Path("models/yolo"), help="Folder for the best weights."),
    metrics: Path = typer.Option(Path("metrics")),
) -> None:
    all_params = params.load(params_file)
    section = params.section(all_params, "train_yolo")
    dataset_dir = Path(params.section(all_params, "images")["dataset"])
    dataset = yolo_data.read(dataset_dir)
    with (
        tracking.stage_run("train_yolo", {"train_yolo": section}),
        tempfile.TemporaryDirectory(prefix="vertiflow-yolo-") as tmp,
    ):
        data_yaml = yolo_data.stage(dataset, Path(tmp) / "dataset")
        best, final, table = yolo.train(
            data_yaml, section, Path(tmp), on_epoch=lambda e, m: mlflow.log_metrics(m, step=e)
        )
        report, pr_curve = yolo.report(final)
        yolo.save_weights(best, out, str(dataset_dir / "data.yaml"))
        mlflow.log_artifact(str(out / "best.pt"), "weights")

        (metrics / "yolo.json").write_text(json.dumps(report, indent=2) + "\n")
        plots = metrics / "yolo_plots"
        shutil.rmtree(plots, ignore_errors=True)
        plots.mkdir(parents=True)
        table.to_csv(plots / "training.csv", index=False)
        pr_curve.to_csv(plots / "pr_curve.csv", index=False)
        samples = [image for image, _ in dataset.pairs["val"][:8]]
        yolo.sample_predictions(out / "best.pt", samples, section, metrics / "yolo_samples.png")
        mlflow.log_artifact(str(metrics / "yolo.json"))
        mlflow.log_artifacts(str(plots), "plots")
        mlflow.log_artifact(str(metrics / "yolo_samples.png"), "plots")
        mlflow.log_metrics({k: v for k, v in report.items() if k != "per_class"})


if __name__ == "__main__":
    app()
