"""The reusable Django app, through Django's own test client, on the small pipeline's models."""

from __future__ import annotations

import json

import django  # the `django` extra: CI installs it, so a missing Django fails here
import pytest
from django.conf import settings
from django.urls import include, path

urlpatterns = [path("ml/", include("vertiflow.integration.django_app.urls"))]


@pytest.fixture
def client(small_repo, tmp_path):
    """A site with the app installed, its models from the small pipeline's `models/`."""
    from django.test import Client
    from django.test.utils import override_settings

    if not settings.configured:
        settings.configure(
            SECRET_KEY="test",  # pragma: allowlist secret
            ALLOWED_HOSTS=["testserver"],
            ROOT_URLCONF=__name__,
            INSTALLED_APPS=["vertiflow.integration.django_app"],
            MIDDLEWARE=["django.middleware.csrf.CsrfViewMiddleware"],
            DATABASES={},
        )
        django.setup()
    root = tmp_path / "monitoring"
    vertiflow = {"MODELS_DIR": str(small_repo / "models"), "MONITORING_DIR": str(root)}
    with override_settings(
        VERTIFLOW={**vertiflow, "USE_REGISTRY": False, "MAX_UPLOAD_BYTES": 50_000}
    ):
        yield Client(), root, small_repo


def logged(root) -> list:
    return sorted(p.name for p in root.rglob("*") if p.is_file()) if root.exists() else []


@pytest.mark.pipeline
def test_detector_upload(client):
    c, root, repo = client
    image = next((repo / "data" / "images" / "images" / "val").glob("*.png"))
    with image.open("rb") as f:
        reply = c.post("/ml/detect/", {"image": f, "conf": "0.001"})
    assert reply.status_code == 200, reply.content
    body = reply.json()
    assert body["model"] == "YOLO-SkinDetection" and (body["width"], body["height"]) == (64, 64)
    assert body["boxes"] and {"class_name", "confidence", "x1"} <= set(body["boxes"][0])
    import polars as pl

    (log,) = (root / "predictions" / "yolo").glob("*.parquet")
    row = pl.read_parquet(log)
    assert row["n_boxes"][0] == len(body["boxes"]) and row["conf"][0] == 0.001
    perf = json.loads((root / "performance_metrics.json").read_text())["yolo"]
    assert perf["predictions"] == 1 and perf["latency_p50_ms"] > 0
    assert c.get("/ml/detect/").status_code == 405


@pytest.mark.pipeline
def test_bad_uploads_are_400_and_log_nothing(client, tmp_path):
    from django.core.files.uploadedfile import SimpleUploadedFile

    c, root, repo = client
    png = next((repo / "data" / "images" / "images" / "val").glob("*.png")).read_bytes()
    cases = {
        "no file": ({}, "no file in the form field 'image'"),
        "empty": ({"image": SimpleUploadedFile("a.png", b"")}, "empty"),
        "text": ({"image": SimpleUploadedFile("a.png", b"hello")}, "not an image file"),
        "too big": ({"image": SimpleUploadedFile("a.png", b"0" * 60_000)}, "the limit is"),
        "conf": ({"image": SimpleUploadedFile("a.png", png), "conf": "high"}, "conf"),
    }
    for name, (data, problem) in cases.items():
        reply = c.post("/ml/detect/", data)
        assert reply.status_code == 400, (name, reply.content)
        assert problem in reply.json()["error"], (name, reply.json())
    json_body = c.post("/ml/detect/", {"x": 1}, content_type="application/json")
    assert json_body.status_code == 400
    assert logged(root) == []  # no prediction, no performance event, no alert


@pytest.mark.pipeline
def test_oracle_json(client):
    import polars as pl

    c, root, repo = client
    test = pl.read_parquet(repo / "data" / "prepared" / "test.parquet").head(3)
    rows = json.loads(test.write_json())
    reply = c.post("/ml/oracle/", {"rows": rows}, content_type="application/json")
    assert reply.status_code == 200, reply.content
    assert len(reply.json()["predictions"]) == 3
    assert list((root / "predictions" / "oracle").glob("*.parquet"))
    one = c.post("/ml/oracle/", rows[0], content_type="application/json")
    assert one.status_code == 200 and len(one.json()["predictions"]) == 1
    # a number sent as text is read as `mlflow models serve` reads it; null is missing
    text = c.post(
        "/ml/oracle/",
        {**rows[0], "temp_mean": str(rows[0]["temp_mean"])},
        content_type="application/json",
    )
    assert text.json()["predictions"] == one.json()["predictions"], text.content
    empty = c.post("/ml/oracle/", {**rows[0], "temp_mean": None}, content_type="application/json")
    assert empty.status_code == 200, empty.content
    assert "warnings" not in one.json()
    # a crop the model never saw: answered, and said to be a guess
    tomato = c.post("/ml/oracle/", {**rows[0], "crop": "tomato"}, content_type="application/json")
    assert tomato.status_code == 200 and "crop 'tomato'" in tomato.json()["warnings"][0]

    before = logged(root)
    missing = {k: v for k, v in rows[0].items() if k != "temp_dev"}
    bad = {
        "not json": ("{oops", "not JSON"),
        "not rows": ("[1, 2]", "expected a JSON object"),
        "missing": (json.dumps(missing), "temp_dev"),
        "text in a number": (json.dumps({**rows[0], "co2_mean": "high"}), "co2_mean"),
        "a list in a number": (json.dumps({**rows[0], "temp_mean": [1, 2]}), "temp_mean (row 1)"),
        "a number as the crop": (
            json.dumps({**rows[0], "crop": 123}),
            "crop (row 1): expected text",
        ),
    }
    for name, (body, problem) in bad.items():
        reply = c.post("/ml/oracle/", body, content_type="application/json")
        assert reply.status_code == 400, (name, reply.content)
        assert problem in reply.json()["error"], (name, reply.json())
    assert logged(root) == before


@pytest.mark.pipeline
def test_an_unloadable_model_is_503_and_alerted(client, tmp_path):
    from django.test.utils import override_settings

    c, root, repo = client
    broken = tmp_path / "broken"
    (broken / "yolo").mkdir(parents=True)
    (broken / "yolo" / "best.pt").write_bytes(b"not weights")
    vertiflow = {"MODELS_DIR": str(broken), "MONITORING_DIR": str(root), "USE_REGISTRY": False}
    with override_settings(VERTIFLOW=vertiflow):
        png = next((repo / "data" / "images" / "images" / "val").glob("*.png"))
        with png.open("rb") as f:
            reply = c.post("/ml/detect/", {"image": f})
        assert reply.status_code == 503 and "unavailable" in reply.json()["error"]
        assert c.get("/ml/health/").status_code == 503
    alerts = list((root / "alerts").glob("*-error-yolo.json"))
    assert alerts and "load" in alerts[0].read_text()
    assert c.get("/ml/health/").json()["models"]["yolo"]["loaded"]


@pytest.mark.pipeline
def test_posts_keep_djangos_csrf_protection(client):
    """Without the site's CSRF token a POST is refused (403) and nothing is logged."""
    from django.test import Client

    _, root, repo = client
    strict = Client(enforce_csrf_checks=True)
    image = next((repo / "data" / "images" / "images" / "val").glob("*.png"))
    with image.open("rb") as f:
        assert strict.post("/ml/detect/", {"image": f}).status_code == 403
    assert logged(root) == []
