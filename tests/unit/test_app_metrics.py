"""The metrics an app hands `register_yolo_model`, checked before anything is registered."""

from __future__ import annotations

import pytest

from vertiflow.errors import VertiflowError
from vertiflow.lifecycle.apps import _checked_metrics


def test_ultralytics_names_become_names_mlflow_accepts():
    found = {"metrics/mAP50(B)": 0.6, "metrics/mAP50-95(B)": 0.4, "fitness": 0.42}
    assert _checked_metrics(found) == {
        "metrics/mAP50_B": 0.6,
        "metrics/mAP50-95_B": 0.4,
        "fitness": 0.42,
    }


@pytest.mark.parametrize(
    ("metrics", "said"),
    [
        ({"mAP": 85.0}, r"metrics\['mAP'\] = 85: expected a fraction in \[0, 1\] .*give 0.85"),
        ({"mAP": None}, r"metrics\['mAP'\]: expected a number, found None"),
        ({"precision": 0.8}, r"no mAP at IoU 0.5 .* Found: precision"),
        # True was read as an mAP of 1.0 and made the first champion; NaN asked "give nan"
        ({"mAP": True}, r"metrics\['mAP'\]: expected a number, found True"),
        ({"mAP": 0.8, "recall": False}, r"metrics\['recall'\]: expected a number, found False"),
        ({"mAP": float("nan")}, r"metrics\['mAP'\]: expected a finite number, found nan"),
    ],
)
def test_metrics_the_gate_cannot_judge_are_refused(metrics, said):
    """A percentage passed any floor and made a first champion; None was a TypeError; no
    mAP registered a version that failed the gate in silence."""
    with pytest.raises(VertiflowError, match=said):
        _checked_metrics(metrics)
