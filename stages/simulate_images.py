"""Stage simulate_images: write the built-in skin-condition dataset (YOLO format)."""

import vertiflow.pin_kernels  # noqa: F401  first: the same CPU kernels on every machine (README)

# isort: split
import shutil
from pathlib import Path

import mlflow
import typer

from vertiflow import params
from vertiflow.errors import VertiflowError
from vertiflow.lifecycle import tracking
from vertiflow.stage import stage
from vertiflow.vision.skin import ImageConfig, write_dataset


def main(
    params_file: Path = typer.Option(Path("params.yaml"), "--params"),
    out: Path = typer.Option(Path("data/images"), help="Folder for the dataset."),
) -> None:
    section = params.section(params.load(params_file), "simulate_images")
    try:
        config = ImageConfig(**section)
    except TypeError as exc:
        raise VertiflowError(f"params.yaml: simulate_images: {exc}") from None
    with tracking.stage_run("simulate_images", {"simulate_images": section}):
        shutil.rmtree(out, ignore_errors=True)
        mlflow.log_metrics(write_dataset(out, config))


app = stage(main)

if __name__ == "__main__":
    app()
