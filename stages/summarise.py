"""Stage summarise: every model's headline metric next to its limit, in one table.

Its own stage so that a Cortex-only change (prices, tariffs) re-runs Cortex and this
table, not evaluate and the registry.
"""

import json
from pathlib import Path

import mlflow
import typer

from vertiflow import evaluation, tracking
from vertiflow.errors import exit_cleanly

app = typer.Typer(add_completion=False)


@app.command()
@exit_cleanly
def main(metrics: Path = typer.Option(Path("metrics"))) -> None:
    reports = {
        name: json.loads((metrics / f"{name}.json").read_text())
        for name in ("oracle", "classifier", "cortex", "yolo")
    }
    with tracking.stage_run("summarise", {"models": ",".join(reports)}):
        quality = evaluation.quality_table(**reports)
        (metrics / "quality.json").write_text(json.dumps(quality, indent=2) + "\n")
        mlflow.log_artifact(str(metrics / "quality.json"))
        mlflow.log_metrics({f"{k}_gap": v["gap"] for k, v in quality.items() if v and v["gap"]})


if __name__ == "__main__":
    app()
