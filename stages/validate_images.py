"""Stage validate_images: the image dataset's gate before train_yolo."""

import json
from pathlib import Path

import mlflow
import typer

from vertiflow import params, tracking, yolo_data
from vertiflow.errors import DataError, exit_cleanly

app = typer.Typer(add_completion=False)


@app.command()
@exit_cleanly
def main(
    params_file: Path = typer.Option(Path("params.yaml"), "--params"),
    report_path: Path = typer.Option(Path("metrics/images_validation.json"), "--report"),
) -> None:
    section = params.section(params.load(params_file), "images")
    dataset_dir = Path(section["dataset"])
    with tracking.stage_run("validate_images", {"images": section}):
        report: dict = {"dataset": str(dataset_dir), "passed": False}
        try:
            report.update(yolo_data.check(yolo_data.read(dataset_dir)), passed=True)
        except DataError as exc:
            report["problem"] = str(exc)
            raise
        finally:
            report_path.parent.mkdir(parents=True, exist_ok=True)
            report_path.write_text(json.dumps(report, indent=2) + "\n")
            mlflow.log_artifact(str(report_path))
        mlflow.log_metrics({k: v for k, v in report.items() if isinstance(v, int)})


if __name__ == "__main__":
    app()
