"""Stage validate_images: the image dataset's gate before train_yolo."""

import vertiflow.pin_kernels  # noqa: F401  first: the same CPU kernels on every machine (README)

# isort: split
from pathlib import Path

import mlflow
import typer

from vertiflow import params
from vertiflow.errors import DataError
from vertiflow.lifecycle import tracking
from vertiflow.stage import stage, write_json
from vertiflow.vision import yolo_data


def main(
    params_file: Path = typer.Option(Path("params.yaml"), "--params"),
    report_path: Path = typer.Option(Path("metrics/images_validation.json"), "--report"),
) -> None:
    section = params.section(params.load(params_file), "images")
    dataset_dir = Path(section["dataset"])
    with tracking.stage_run("validate_images", {"images": section}):
        report: dict = {"dataset": str(dataset_dir), "passed": False}
        try:
            dataset = yolo_data.read(dataset_dir)
            report.update(yolo_data.check(dataset), passed=True)
            for warning in yolo_data.warnings(dataset, report):
                typer.echo(f"validate_images: warning: {warning}", err=True)
        except DataError as exc:
            report["problem"] = str(exc)
            raise
        finally:
            write_json(report_path, report)
            mlflow.log_artifact(str(report_path))
        mlflow.log_metrics({k: v for k, v in report.items() if isinstance(v, int)})


app = stage(main)

if __name__ == "__main__":
    app()
