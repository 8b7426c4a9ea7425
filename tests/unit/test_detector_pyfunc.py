"""The served detector's params, through the pyfunc model as `mlflow models serve` loads
it (`mlflow.pyfunc.load_model` of the folder evaluate registers). An untrained yolo11t
from its YAML, its checkpoint saying it was trained at 64 px: nothing downloaded, no
training, no server."""

from __future__ import annotations

import mlflow.pyfunc
import numpy as np
import pytest
from mlflow.exceptions import MlflowException

from vertiflow.vision import pyfunc, yolo

IMAGE = {"image": [np.full((64, 64, 3), 128, np.uint8)]}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("detector")
    model = yolo.load_model("configs/yolo/yolo11t.yaml")
    model.ckpt = {"train_args": {"imgsz": 64}}  # as Ultralytics' training writes it
    model.save(str(root / "best.pt"))
    pyfunc.save(root / "best.pt", root / "model")
    return mlflow.pyfunc.load_model(str(root / "model"))


def refused(served, params) -> str:
    with pytest.raises(MlflowException) as caught:
        served.predict(IMAGE, params=params)
    assert caught.value.error_code == "INVALID_PARAMETER_VALUE"  # a 400 over HTTP
    return caught.value.message


def test_a_huge_image_size_is_refused_naming_param_value_and_range(served):
    """image_size=100000 went to Ultralytics, which letterboxes the image to 100000 px
    square (30 GB); 4096 already took 3.9 s and 2.4 GB for one image on CPU."""
    said = refused(served, {"image_size": 100_000})
    assert "param image_size: 100000 is out of range" in said, said
    assert "0 (the training size, 64 px) or 32-256 px" in said, said
    assert "image_size: -5 is out of range" in refused(served, {"image_size": -5})
    assert "image_size: 8 is out of range" in refused(served, {"image_size": 8})
    for ok in (0, 32, 256):  # the range's ends answer
        (answer,) = served.predict(IMAGE, params={"image_size": ok, "conf": 0.5})
        assert (answer["width"], answer["height"]) == (64, 64)
