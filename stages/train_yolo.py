"""Stage train_yolo: the skin-condition detector (Ultralytics), offline and hermetic."""

import vertiflow.pin_kernels  # noqa: F401  first: the same CPU kernels on every machine (README)

# isort: split
from pathlib import Path

import mlflow
import typer

from vertiflow import params
from vertiflow.lifecycle import tracking
from vertiflow.stage import stage
from vertiflow.vision import yolo, yolo_data


def main(
    params_file: Path = typer.Option(Path("params.yaml"), "--params"),
    out: Path = typer.Option(Path("models/yolo"), help="Folder for the best weights."),
    metrics: Path = typer.Option(Path("metrics")),
) -> None:
    all_params = params.load(params_file)
    section = params.section(all_params, "train_yolo")
    dataset_dir = Path(params.section(all_params, "images")["dataset"])
    dataset = yolo_data.read(dataset_dir)
    yolo_data.check(dataset)  # as validate_images: `dvc repro -s train_yolo` skips that stage
    yolo.check_args(section)
    with (
        tracking.stage_run("train_yolo", {"train_yolo": section}),
        yolo.scratch_dir() as tmp,
    ):
        data_yaml = yolo_data.stage(dataset, Path(tmp) / "dataset")
        best, final, table = yolo.train(
            data_yaml, section, Path(tmp), on_epoch=lambda e, m: mlflow.log_metrics(m, step=e)
        )
        report, pr_curve = yolo.report(final)
        yolo.save_weights(best, out, str(dataset.source))
        report, note = yolo.with_test(report, dataset, out / "best.pt", data_yaml, section, tmp)
        if note:
            typer.echo(f"train_yolo: {note}", err=True)

        plots = yolo.write_outputs(metrics, report, table, pr_curve)
        samples = metrics / "yolo_samples.png"
        yolo.sample_predictions(out / "best.pt", dataset.pairs["val"], section, samples)
        mlflow.log_artifact(str(metrics / "yolo.json"))
        mlflow.log_artifacts(str(plots), "plots")
        mlflow.log_artifact(str(samples), "plots")
        headline = {k: v for k, v in report.items() if k != "per_class"}
        images = {"training": tracking.dataset(dataset_dir, "images")}
        tracking.log_model_run(out, "ultralytics-yolo", headline, images)


app = stage(main)

if __name__ == "__main__":
    app()
