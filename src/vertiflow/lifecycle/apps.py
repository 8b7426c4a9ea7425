"""The interfaces the farm's and Skin-Twin-AI's code already call, over the real thing.

Thin wrappers: `ModelRegistry` over `lifecycle.registry`, `ModelLoader` over
`lifecycle.serving`, `ModelMonitor` over `monitoring.monitor` and `monitoring.drift`.
Files live under `.monitoring/` as those apps expect.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import polars as pl

from vertiflow.lifecycle import registry, serving
from vertiflow.monitoring import drift, monitor


class ModelRegistry:
    def register_yolo_model(
        self, model_path: str | Path, metrics: dict[str, float], tags: dict[str, str] | None = None
    ) -> int:
        """Register weights (a .pt file or a folder holding best.pt) as YOLO-SkinDetection."""
        import mlflow

        path = Path(model_path)
        with tempfile.TemporaryDirectory() as tmp:
            if path.is_file():
                shutil.copyfile(path, Path(tmp) / "best.pt")
                path = Path(tmp)
            with mlflow.start_run(run_name="register_yolo_model"):
                version, _ = registry.register("yolo", path, "ultralytics", tags or {}, metrics)
        return int(version.version)


class ModelLoader:
    def __init__(self, use_registry: bool = True, alias: str = registry.CHAMPION):
        self.use_registry, self.alias = use_registry, alias

    def load_all_models(self) -> dict[str, Any]:
        return serving.load_all_models(alias=self.alias, use_registry=self.use_registry)


class ModelMonitor:
    def __init__(self, root: Path = monitor.MONITORING_DIR):
        self.root = root

    def log_prediction(
        self, model_name: str, inputs: Any, predictions: Any, model_version: str = "local"
    ) -> Path:
        return monitor.log_predictions(
            model_name, model_version, _frame(inputs), predictions, self.root
        )

    def detect_data_drift(
        self, current: Any, reference: Any, columns: list[str] | None = None
    ) -> dict[str, Any]:
        """Per-feature drift (not one KS test over flattened arrays); recorded and alerted."""
        current, reference = _frame(current), _frame(reference)
        columns = columns or [c for c in reference.columns if c in current.columns]
        report = monitor.check(reference, current, columns, drift.Thresholds())
        monitor.record(report, self.root)
        return report


def _frame(data: Any) -> pl.DataFrame:
    if isinstance(data, pl.DataFrame):
        return data
    if isinstance(data, pd.DataFrame):
        return pl.from_pandas(data)
    return pl.DataFrame(data)
