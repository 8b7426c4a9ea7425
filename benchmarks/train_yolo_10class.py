"""The detector on all ten of the app's conditions: the built-in generator draws every
class in `vision.skin.CLASSES` (ids follow that list, which is the app's), trained with
the pipeline's own `train_yolo` params. Records mAP50 per class and wall time on this
machine (with its load average: the cores may be shared)."""

from __future__ import annotations

import os
import shutil
import time

import yaml

from common import REPO, WORK, write
from vertiflow import params, runtime
from vertiflow.vision import skin, yolo

DATASET = {"seed": 7, "train_images": 256, "val_images": 64, "image_size": 128, "max_objects": 4}


def main() -> None:
    runtime.configure()
    work = WORK / "yolo10"
    shutil.rmtree(work, ignore_errors=True)
    config = skin.ImageConfig(classes=list(skin.CLASSES), **DATASET)
    counts = skin.write_dataset(work / "data", config)
    names = yaml.safe_load((work / "data" / "data.yaml").read_text())["names"]
    assert [names[i] for i in range(10)] == list(skin.CLASSES), names
    section = params.load(REPO / "params.yaml")["train_yolo"]
    section = {**section, "model": str(REPO / section["model"])}
    load_before = os.getloadavg()
    start = time.perf_counter()
    best, metrics, _ = yolo.train(work / "data" / "data.yaml", section, work / "run")
    seconds = time.perf_counter() - start
    load_after = os.getloadavg()
    report, _ = yolo.report(metrics)
    shutil.copyfile(best, work / "best.pt")  # for benchmarks/detector_latency.py
    figures = {
        "dataset": {**DATASET, "classes": list(skin.CLASSES), "objects": counts},
        "train_yolo": {k: v for k, v in section.items() if k != "model"},
        "seconds": round(seconds, 1),
        "load_average_1min": {"before": load_before[0], "after": load_after[0]},
        **{k: report[k] for k in ("mAP50", "mAP50-95", "precision", "recall", "f1")},
        "mAP50_per_class": {c: v["mAP50"] for c, v in report["per_class"].items()},
        "class_ids": {i: c for i, c in enumerate(skin.CLASSES)},
    }
    print(write("train_yolo_10class", figures))


if __name__ == "__main__":
    main()
