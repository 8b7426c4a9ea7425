"""The README's YOLO ablation: mAP50 of each training-default change, 24 epochs each, on
the built-in dataset (data/images; run `dvc repro simulate_images` first).

Row 2 adds one change to row 1; rows 3 and 4 each add one (mosaic off; milder jitter)
to row 2; the last row has both: the shipped defaults at 24 epochs. On the CPU the
metrics are the same on every run (benchmarks/results/train_yolo_stage.json), so this
needs no repetition; times are recorded but depend on the machine's load.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from common import REPO, write
from vertiflow import params, runtime
from vertiflow.vision import yolo, yolo_data

EPOCHS = 24
BASE = {"optimizer": "AdamW", "lr0": 0.005, "warmup_epochs": 0, "deterministic": False}
ROWS = [
    ("warmup off, AdamW lr0 0.005 (Ultralytics' nbs 64)", {}),
    ("+ nbs 16: one step per batch", {"nbs": 16}),
    ("+ mosaic 0", {"nbs": 16, "mosaic": 0.0}),
    (
        "+ milder colour and scale jitter instead (hsv_s 0.3, hsv_v 0.25, scale 0.3)",
        {"nbs": 16, "hsv_s": 0.3, "hsv_v": 0.25, "scale": 0.3},
    ),
    ("+ both (the shipped defaults)", None),  # None: params.yaml's hyperparams as they are
]


def main() -> None:
    runtime.configure()
    shipped = params.load(REPO / "params.yaml")["train_yolo"]
    dataset = yolo_data.read(REPO / shipped_dataset())
    rows = []
    for label, change in ROWS:
        hyper = shipped["hyperparams"] if change is None else {**BASE, **change}
        section = {**shipped, "epochs": EPOCHS, "hyperparams": hyper}
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            data_yaml = yolo_data.stage(dataset, Path(tmp) / "dataset")
            _best, final, _table = yolo.train(data_yaml, section, Path(tmp))
            report, _ = yolo.report(final)
        rows.append(
            {
                "change": label,
                "hyperparams": hyper,
                "mAP50": report["mAP50"],
                "mAP50-95": report["mAP50-95"],
                "seconds": round(time.perf_counter() - start, 1),
            }
        )
        print(rows[-1])
    print(write("yolo_ablation", {"epochs": EPOCHS, "rows": rows}))


def shipped_dataset() -> str:
    return params.load(REPO / "params.yaml")["images"]["dataset"]


if __name__ == "__main__":
    main()
