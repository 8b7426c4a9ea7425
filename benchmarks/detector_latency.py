"""Detector latency per image on this machine's CPU: the pyfunc model in process, and
over HTTP behind `mlflow models serve` on loopback (one image per request, and batches
of 16). Weights: the 10-class benchmark's (run train_yolo_10class.py first) or the
pipeline's models/yolo/best.pt; images: that dataset's validation images (128 px PNG)."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import requests

from common import REPO, WORK, write
from vertiflow import runtime
from vertiflow.lifecycle.stack import free_port
from vertiflow.vision import pyfunc

REQUESTS, WARMUP, BATCH = 100, 5, 16


def percentiles(seconds: list[float], per: int = 1) -> dict[str, float]:
    ms = np.asarray(seconds) * 1000 / per
    return {"p50_ms": round(float(np.percentile(ms, 50)), 1),
            "p95_ms": round(float(np.percentile(ms, 95)), 1)}  # fmt: skip


def main() -> None:
    import mlflow
    import torch

    runtime.configure()
    work = WORK / "latency"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    ten = WORK / "yolo10"
    weights = ten / "best.pt" if (ten / "best.pt").exists() else REPO / "models/yolo/best.pt"
    folder = ten / "data" if (ten / "best.pt").exists() else REPO / "data/images"
    files = sorted((folder / "images" / "val").glob("*.png"))
    images = [base64.b64encode(f.read_bytes()).decode() for f in files]
    model_dir = pyfunc.save(weights, work / "model")

    model = mlflow.pyfunc.load_model(str(model_dir))
    one = [pd.DataFrame({"image": [images[i % len(images)]]}) for i in range(REQUESTS + WARMUP)]
    timings = []
    for i, frame in enumerate(one):
        start = time.perf_counter()
        model.predict(frame)
        if i >= WARMUP:
            timings.append(time.perf_counter() - start)
    in_process = percentiles(timings)

    port = free_port()
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "models", "serve", "-m", str(model_dir),
         "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/invocations"
    try:
        for _ in range(120):
            try:
                requests.get(f"http://127.0.0.1:{port}/ping", timeout=2).raise_for_status()
                break
            except requests.RequestException:
                time.sleep(1)

        def post(batch: list[str]) -> float:
            body = {"dataframe_split": {"columns": ["image"], "data": [[b] for b in batch]}}
            start = time.perf_counter()
            requests.post(url, json=body, timeout=60).raise_for_status()
            return time.perf_counter() - start

        singles = [post([images[i % len(images)]]) for i in range(REQUESTS + WARMUP)]
        batches = [post(images[i : i + BATCH]) for i in range(0, len(images) - BATCH + 1, BATCH)]
    finally:
        server.terminate()
        server.wait(timeout=60)
    figures = {
        "weights": str(weights.relative_to(REPO)),
        "image_px": 128,
        "torch_threads": torch.get_num_threads(),
        "load_average_1min": os.getloadavg()[0],
        "in_process_one_image": in_process,
        "http_one_image_per_request": percentiles(singles[WARMUP:]),
        f"http_batch_{BATCH}_per_image": percentiles(batches, BATCH),
        "requests": REQUESTS,
    }
    print(write("detector_latency", figures))
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
