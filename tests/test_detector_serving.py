"""The detector over HTTP: `models:/YOLO-SkinDetection@champion` behind a real
`mlflow models serve` on a loopback port (registered as a pyfunc model by evaluate)."""

from __future__ import annotations

import base64
import subprocess
import time
from pathlib import Path

import cv2
import pytest
import requests

from vertiflow.testing import env
from vertiflow.vision import skin


def serve(repo: Path, model_uri: str):
    """Start `mlflow models serve` on a free loopback port; returns (process, url)."""
    from vertiflow.lifecycle.stack import free_port

    port = free_port()
    log = (repo / "serve.log").open("w")
    server = subprocess.Popen(
        [
            "mlflow",
            "models",
            "serve",
            "-m",
            model_uri,
            "--env-manager",
            "local",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        cwd=repo,
        env={**env(), "MLFLOW_TRACKING_URI": f"sqlite:///{repo / '.mlflow' / 'mlflow.db'}"},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"mlflow models serve exited:\n{(repo / 'serve.log').read_text()}")
        try:
            if requests.get(f"{url}/ping", timeout=2).ok:
                return server, url
        except requests.ConnectionError:
            time.sleep(1)
    server.terminate()
    raise AssertionError(f"no answer from {url}:\n{(repo / 'serve.log').read_text()}")


def stop(server) -> None:
    server.terminate()
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()


def split(*images) -> dict:
    return {"dataframe_split": {"columns": ["image"], "data": [[i] for i in images]}}


@pytest.mark.pipeline
def test_champion_detector_served_over_http(small_copy):
    repo = small_copy
    val = sorted((repo / "data" / "images" / "images" / "val").glob("*.png"))
    b64 = base64.b64encode(val[0].read_bytes()).decode()
    rgb = cv2.imread(str(val[1]))[..., ::-1]
    names = set((repo / "data" / "images" / "data.yaml").read_text().split())
    server, url = serve(repo, "models:/YOLO-SkinDetection@champion")
    try:
        # A barely trained test model: a low threshold so that it answers with boxes.
        ok = requests.post(
            f"{url}/invocations", json={**split(b64, rgb.tolist()), "params": {"conf": 0.001}}
        )
        assert ok.status_code == 200, ok.text
        first, second = ok.json()["predictions"]
        assert (first["width"], first["height"]) == (64, 64) == (second["width"], rgb.shape[0])
        assert first["boxes"] and second["boxes"]
        box = first["boxes"][0]
        assert box["class_name"] in names and 0.001 <= box["confidence"] <= 1
        every = [b for p in (first, second) for b in p["boxes"]]  # ids: the app's list
        assert all(b["class_id"] == skin.CLASSES.index(b["class_name"]) for b in every)
        assert 0 <= box["x1"] < box["x2"] <= 64 and 0 <= box["y1"] < box["y2"] <= 64
        confidences = [b["confidence"] for b in first["boxes"]]
        assert confidences == sorted(confidences, reverse=True)
        # an app's normalised image (floats 0-1) is the same picture, not a black one (this
        # barely trained model answers alike for any picture: the unit test in
        # tests/unit/test_image_features.py is the one that tells them apart)
        floats = requests.post(
            f"{url}/invocations", json={**split((rgb / 255).tolist()), "params": {"conf": 0.001}}
        )
        assert floats.status_code == 200 and floats.json()["predictions"][0] == second, floats.text
        # MLflow's "inputs" format with a list of images: one answer per image
        listed = {"inputs": {"image": [b64, b64]}, "params": {"conf": 0.001}}
        reply = requests.post(f"{url}/invocations", json=listed)
        assert reply.status_code == 200 and reply.json()["predictions"] == [first, first], (
            reply.text
        )
        negative = requests.post(
            f"{url}/invocations", json={**split(b64), "params": {"image_size": -5}}
        )
        assert negative.status_code == 400 and "image_size: -5 is out of range" in negative.text
        huge = requests.post(
            f"{url}/invocations", json={**split(b64), "params": {"image_size": 100_000}}
        )  # before: OpenCV asked for 30 GB (a 500, or a server killed for memory)
        assert huge.status_code == 400 and "image_size: 100000 is out of range" in huge.text
        assert "or 32-256 px" in huge.text, huge.text  # 4 x the test pipeline's 64 px
        default = requests.post(f"{url}/invocations", json=split(b64)).json()["predictions"][0]
        assert all(b["confidence"] >= 0.25 for b in default["boxes"])  # the signature's default

        bad = {
            "not base64!": "not valid base64",
            "": "empty string",
            base64.b64encode(b"GIF89a, or so it claims").decode(): "not an image file",
            12: "found int",
        }
        for item, problem in bad.items():
            reply = requests.post(f"{url}/invocations", json=split(b64, item))
            assert reply.status_code == 400, (item, reply.status_code, reply.text[:300])
            said = reply.json()  # our message, no traceback for a client's mistake
            assert "image 1" in said["message"] and problem in said["message"], said
            assert "stack_trace" not in said, said["stack_trace"][-300:]
        tiny = requests.post(f"{url}/invocations", json=split([[[0, 0, 0]] * 4] * 4))
        assert tiny.status_code == 400 and "each side must be" in tiny.json()["message"]
        # MLflow's records format: {"instances": [{"image": ...}, ...]}
        records = {"instances": [{"image": b64}, {"image": "xx"}]}
        reply = requests.post(f"{url}/invocations", json=records)
        assert reply.status_code == 400 and "image 1: not valid base64" in reply.text
        wrong = requests.post(
            f"{url}/invocations", json={"dataframe_split": {"columns": ["img"], "data": [[b64]]}}
        )
        assert 400 <= wrong.status_code < 500 and "image" in wrong.text
    finally:
        stop(server)
