"""The monitor: prediction log, drifted batches from the simulator, reports and alerts.

Layout under `.monitoring/` (git-ignored, the skin app's convention):
`predictions/<model>/*.parquet` (one file per logged batch: inputs, prediction, model
version, time; append-only, so concurrent apps never corrupt it), `alerts/*.json` (one
per warning or critical check) and `history.jsonl` (one line per check).
"""

from __future__ import annotations

import json
import tempfile
import uuid
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from vertiflow.errors import DataError
from vertiflow.monitoring import drift

MONITORING_DIR = Path(".monitoring")

# Drifted farms for tests and demos: SimConfig overrides (vertiflow.farm.simulator).
SCENARIOS: dict[str, dict[str, Any]] = {
    "none": {},
    "co2_sensor": {"co2_sensor_offset_ppm": 250.0},  # miscalibrated CO2 sensor
    "hot_summer": {"climate_shift_c": 3.0},  # the HVAC cannot hold setpoints
    "new_cultivar": {  # a new basil cultivar grown warmer and richer, smaller plants
        "setpoint_shift": {"air_temp_setpoint": 3.0, "ec_setpoint": 0.5},
        "yield_scale": 0.75,
    },
}


def log_predictions(
    model: str,
    version: str,
    inputs: pl.DataFrame,
    predictions: Any,
    root: Path = MONITORING_DIR,
) -> Path:
    """Append one batch of predictions with its inputs, model version and time."""
    folder = root / "predictions" / model
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC)
    table = inputs.with_columns(
        pl.Series("prediction", np.asarray(predictions).tolist()),
        pl.lit(str(version)).alias("model_version"),
        pl.lit(now).alias("logged_at"),
    )
    path = folder / f"{now:%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:8]}.parquet"
    tmp = path.with_suffix(".tmp")
    table.write_parquet(tmp)
    tmp.rename(path)  # readers never see half a file
    return path


def read_predictions(model: str, root: Path = MONITORING_DIR) -> pl.DataFrame:
    files = sorted((root / "predictions" / model).glob("*.parquet"))
    if not files:
        raise DataError(f"{root / 'predictions' / model}: no logged predictions for '{model}'.")
    return pl.scan_parquet(files).collect()


def simulated_batch(scenario: str, seed: int, racks: int = 5, cycles: int = 10) -> pl.DataFrame:
    """Prepared features of a fresh simulated farm, optionally drifted (SCENARIOS)."""
    from vertiflow.data import dataset, rawdata
    from vertiflow.farm.simulator import SimConfig, write_farm

    if scenario not in SCENARIOS:
        raise DataError(f"unknown scenario '{scenario}'; known: {', '.join(SCENARIOS)}.")
    config = SimConfig(
        seed=seed, racks=racks, modules_per_rack=4, cycles_per_module=cycles, **SCENARIOS[scenario]
    )
    with tempfile.TemporaryDirectory() as tmp:
        write_farm(Path(tmp), config)
        prepared = dataset.build(rawdata.load(Path(tmp)), 0.5)
    return pl.concat([prepared.train, prepared.test])


def model_columns(params: dict[str, Any]) -> list[str]:
    """The inputs the deployed models read: what drift matters for."""
    columns: list[str] = []
    for stage in ("train_oracle", "train_classifier"):
        features = params[stage]["features"]
        for name in [*features["categorical"], *features["numeric"]]:
            if name not in columns:
                columns.append(name)
    return columns


# The column a model's logged predictions are checked as (see `with_predictions`).
PREDICTION_COLUMN = {"oracle": "predicted_yield_g", "classifier": "predicted_grade"}


def with_predictions(table: pl.DataFrame, oracle, classifier) -> pl.DataFrame:
    """Add the models' outputs, so prediction drift is checked like any feature."""
    from vertiflow.tabular.modeling import frame

    return table.with_columns(
        pl.Series("predicted_yield_g", oracle.predict(frame(table, oracle.feature_names_in_))),
        pl.Series(
            "predicted_grade",
            classifier.predict(frame(table, classifier.feature_names_in_)).astype(str),
        ),
    )


def check(
    reference: pl.DataFrame, current: pl.DataFrame, columns: list[str], t: drift.Thresholds
) -> dict[str, Any]:
    report = drift.detect(reference, current, columns, t)
    report["thresholds"] = asdict(t)
    report["checked_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    return report


def record(report: dict[str, Any], root: Path = MONITORING_DIR) -> Path | None:
    """Append to the history; write an alert file when anything drifted."""
    root.mkdir(parents=True, exist_ok=True)
    summary = {k: report[k] for k in ("checked_at", "severity", "drifted", "rows_current")}
    with (root / "history.jsonl").open("a") as f:
        f.write(json.dumps(summary) + "\n")
    if report["severity"] == "ok":
        return None
    alerts = root / "alerts"
    alerts.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    path = alerts / f"{stamp}-{report['severity']}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    return path


def markdown(report: dict[str, Any], plots: dict[str, str]) -> str:
    lines = [
        f"# Drift check: **{report['severity'].upper()}**",
        "",
        f"{report['rows_current']} rows checked against {report['rows_reference']} training "
        f"rows at {report['checked_at']}. Flagged when PSI and the test agree "
        f"(p < {report['alpha_per_feature']:.2g} per feature, Bonferroni).",
        "",
        "| feature | severity | PSI | test | p-value | mean (train -> now) "
        "| missing (train -> now) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, f in sorted(
        report["features"].items(), key=lambda kv: -drift.SEVERITY.index(kv[1]["severity"])
    ):
        means = (
            f"{f['mean_reference']:.4g} -> {f['mean_current']:.4g}" if "mean_current" in f else ""
        )
        lines.append(
            f"| {name} | {f['severity']} | {f['psi']:.3f} | {f['test']} | {f['p_value']:.3g} | "
            f"{means} | {f['missing_reference']:.1%} -> {f['missing_current']:.1%} |"
        )
    for name, image in plots.items():
        lines += ["", f"## {name}", "", f"![{name}]({image})"]
    return "\n".join(lines) + "\n"


def plot_feature(reference: pl.Series, current: pl.Series, path: Path) -> None:
    import matplotlib.pyplot as plt  # backend from runtime.configure (MPLBACKEND)

    fig, ax = plt.subplots(figsize=(5, 3))
    if reference.dtype.is_numeric():
        ref, cur = reference.drop_nulls().to_numpy(), current.drop_nulls().to_numpy()
        bins = np.histogram_bin_edges(np.concatenate([ref, cur]), bins=30)
        ax.hist(ref, bins, density=True, alpha=0.5, label="training")
        ax.hist(cur, bins, density=True, alpha=0.5, label="now")
    else:
        levels = sorted(set(reference.to_list()) | set(current.to_list()), key=str)
        x = np.arange(len(levels))
        ax.bar(x - 0.2, [(reference == v).mean() for v in levels], 0.4, label="training")
        ax.bar(x + 0.2, [(current == v).mean() for v in levels], 0.4, label="now")
        ax.set_xticks(x, [str(v) for v in levels])
    ax.set_title(reference.name)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
