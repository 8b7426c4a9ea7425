"""`predictions_history.json` written by monitors in several threads of one process."""

from __future__ import annotations

import concurrent.futures as cf
import gc
import json
import sys

import numpy as np

from vertiflow.lifecycle.apps import ModelMonitor


def test_monitors_in_threads_write_the_history_without_losing_a_write(tmp_path, monkeypatch):
    """The Django view makes a monitor per request; each writes the history when it is
    collected. Writers in one process shared one temporary file (named by process id), so
    a threaded server lost writes to FileNotFoundError, raised in the finalizer where
    nobody sees it (15 of 150 requests in 8 threads here), or to a half-written file."""
    failures = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: failures.append(repr(u.exc_value)))
    image = np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    found = {"detections": [{"class": "Acne", "confidence": 0.9, "bbox": [1, 2, 3, 4]}]}

    def request(_):
        monitor = ModelMonitor(root=tmp_path)
        monitor.log_prediction(found, input_data=image)
        monitor.save_history()  # as the finalizer does, at once (no collection to wait for)

    with cf.ThreadPoolExecutor(8) as pool:
        errors = [f.exception() for f in [pool.submit(request, i) for i in range(150)]]
    gc.collect()
    assert [repr(e) for e in errors if e] == [] and failures == []
    assert isinstance(json.loads((tmp_path / "predictions_history.json").read_text()), list)
