"""The model names apps give the monitor become file names: its logs and alerts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vertiflow.errors import VertiflowError
from vertiflow.lifecycle.apps import AlertingSystem, ModelMonitor, PerformanceTracker


@pytest.mark.parametrize("name", ["yolo/v8", "../escape", "..", "farm\\oracle"])
def test_a_model_name_that_is_a_path_is_refused_before_anything_is_logged(tmp_path, name):
    """'yolo/v8' logged the detections, then failed with FileNotFoundError
    (performance/yolo/v8.jsonl); '../escape' wrote escape.jsonl outside performance/ and
    then raised KeyError '../escape'. The same names failed the alerts' file names."""
    image = np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    found = {"detections": [{"class": "Acne", "confidence": 0.9, "bbox": [1, 2, 3, 4]}]}
    said = f"model_name {name!r}: expected a plain name"
    calls = [
        lambda: ModelMonitor(root=tmp_path).log_prediction(
            found, input_data=image, model_name=name
        ),
        lambda: ModelMonitor(root=tmp_path).log_prediction(
            [1.0], input_data=pd.DataFrame({"x": [1.0]}), model_name=name
        ),
        lambda: AlertingSystem(tmp_path / "alerts").send_performance_alert(name, "f1", 0.5, 0.8),
        lambda: PerformanceTracker(root=tmp_path).track_inference_time(name, 0.02),
    ]
    for call in calls:
        with pytest.raises(VertiflowError, match=said.replace("\\", "\\\\").replace(".", r"\.")):
            call()
    written = [p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()]
    assert written == [], written
