"""Stage prepare: raw tables -> per-batch features, split by time into train and test."""

import vertiflow.pin_kernels  # noqa: F401  first: the same CPU kernels on every machine (README)

# isort: split
from pathlib import Path

import mlflow
import typer

from vertiflow import params
from vertiflow.data import dataset, rawdata
from vertiflow.lifecycle import tracking
from vertiflow.stage import stage, write_json


def main(
    params_file: Path = typer.Option(Path("params.yaml"), "--params"),
    out: Path = typer.Option(Path("data/prepared"), help="Folder for the prepared tables."),
) -> None:
    section = params.section(params.load(params_file), "prepare")
    with tracking.stage_run("prepare", {"prepare": section}):
        raw = rawdata.load(Path(section["raw_dir"]))
        prepared = dataset.build_with_params(raw, section)
        out.mkdir(parents=True, exist_ok=True)
        prepared.train.write_parquet(out / "train.parquet")
        prepared.test.write_parquet(out / "test.parquet")
        prepared.truth.write_parquet(out / "truth.parquet")
        write_json(out / "checks.json", prepared.checks)
        write_json(out / "crops.json", prepared.crops)
        write_json(out / "world.json", {"world": raw.world})
        mlflow.log_metrics({k: v for k, v in prepared.checks.items() if isinstance(v, int | float)})
        for crop, spellings in raw.crop_spellings.items():
            typer.echo(
                f"prepare: crop names {', '.join(repr(s) for s in spellings)} differ only in "
                f"case, spaces or accents: read as one crop, '{crop}'.",
                err=True,
            )
        if notice := dataset.optima_notice(section["crop_optima"], prepared.crops):
            typer.echo(f"prepare: {notice}", err=True)
        for notice in dataset.notices(prepared.checks):
            typer.echo(f"prepare: {notice}", err=True)


app = stage(main)

if __name__ == "__main__":
    app()
