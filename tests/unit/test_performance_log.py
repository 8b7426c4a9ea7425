"""The performance log behind `.monitoring/performance_metrics.json`."""

from __future__ import annotations

import json

from vertiflow.lifecycle.apps import ModelMonitor


def test_the_monitors_max_history_is_the_rolling_window(tmp_path):
    monitor = ModelMonitor(max_history=3, root=tmp_path)
    for _ in range(5):
        monitor.log_error("yolo", "CUDA out of memory")
    perf = json.loads((tmp_path / "performance_metrics.json").read_text())["yolo"]
    assert perf["window"] == 3 and perf["errors"] == 3
    assert len(list((tmp_path / "alerts").glob("*-error-yolo.json"))) == 5
