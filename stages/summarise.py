"""Stage summarise: every model's headline metric next to its limit, in one table.

Its own stage so that a Cortex-only change (prices, tariffs) re-runs Cortex and this
table, not evaluate and the registry.
"""

import vertiflow.pin_kernels  # noqa: F401  first: the same CPU kernels on every machine (README)

# isort: split
import json
from pathlib import Path

import mlflow
import typer

from vertiflow.lifecycle import tracking
from vertiflow.stage import stage, write_json
from vertiflow.tabular import evaluation


def main(metrics: Path = typer.Option(Path("metrics"))) -> None:
    reports = {
        name: json.loads((metrics / f"{name}.json").read_text())
        for name in ("oracle", "classifier", "cortex", "yolo")
    }
    with tracking.stage_run("summarise", {"models": ",".join(reports)}):
        quality = evaluation.quality_table(**reports)
        write_json(metrics / "quality.json", quality)
        mlflow.log_artifact(str(metrics / "quality.json"))
        mlflow.log_metrics({f"{k}_gap": v["gap"] for k, v in quality.items() if "gap" in v})


app = stage(main)

if __name__ == "__main__":
    app()
