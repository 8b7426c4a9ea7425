"""The detector as an MLflow pyfunc model, so `mlflow models serve` can serve it.

The model folder holds the Ultralytics weights as an artifact (`artifacts/best.pt`), a
signature and this wrapper (pickled by reference: the `vertiflow` package must be
installed where the model is served, as it is with `--env-manager local`).

Input: a column `image`, one image per row, as base64 text of an image file (PNG, JPEG,
...; a `data:` URL works too) or as an RGB array (H x W x 3, values 0-255). Params
(optional): `conf`, the confidence threshold (default 0.25), and `image_size` (0: the
size the model was trained at; else 32 px to 4 x that size, at most 4096). MLflow drops
any other param before the model sees it, with a line in the server's log only. Output,
per image: `boxes` (class_id, class_name, confidence, x1, y1, x2, y2 in pixels, best
first), `width`, `height`. A row that is not a usable image fails the whole request with
a 400 naming the row and the problem.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import Model, ModelSignature
from mlflow.types.schema import (
    AnyType,
    Array,
    ColSpec,
    DataType,
    Object,
    ParamSchema,
    ParamSpec,
    Property,
    Schema,
)

from vertiflow.lifecycle.model_bytes import pin_mlmodel
from vertiflow.vision import detector

WEIGHTS = "weights"  # the artifact's key; the file lands at artifacts/best.pt

BOX = Object(
    [
        Property("class_id", DataType.long),
        Property("class_name", DataType.string),
        Property("confidence", DataType.double),
        Property("x1", DataType.double),
        Property("y1", DataType.double),
        Property("x2", DataType.double),
        Property("y2", DataType.double),
    ]
)
SIGNATURE = ModelSignature(
    inputs=Schema([ColSpec(AnyType(), "image")]),
    outputs=Schema(
        [
            ColSpec(Array(BOX), "boxes"),
            ColSpec(DataType.long, "width"),
            ColSpec(DataType.long, "height"),
        ]
    ),
    params=ParamSchema(
        [
            ParamSpec("conf", DataType.double, detector.DEFAULT_CONF),
            ParamSpec("image_size", DataType.long, 0),
        ]
    ),
)


class Detector(mlflow.pyfunc.PythonModel):
    """Ultralytics YOLO behind MLflow's pyfunc interface."""

    def load_context(self, context) -> None:
        from vertiflow.vision import yolo

        self.model = yolo.load_model(context.artifacts[WEIGHTS])  # configures the runtime

    def predict(self, context, model_input, params=None):  # no hints: MLflow reads them
        params = params or {}
        try:
            images = [
                detector.decode(item, f"image {i}") for i, item in enumerate(rows(model_input))
            ]
        except detector.ImageError as exc:
            raise MlflowException.invalid_parameter_value(str(exc)) from None
        conf = float(params.get("conf", detector.DEFAULT_CONF))
        if not 0 <= conf <= 1:
            raise MlflowException.invalid_parameter_value(f"conf must be 0-1, found {conf}.")
        try:  # detect checks image_size (-5 and 100000 had reached Ultralytics)
            return detector.detect(self.model, images, conf, params.get("image_size"))
        except detector.ParamError as exc:
            raise MlflowException.invalid_parameter_value(str(exc)) from None


def rows(model_input: Any) -> list[Any]:
    """The images of a request: a DataFrame's `image` column, a dict, a list or a batch."""
    if isinstance(model_input, pd.DataFrame):
        if "image" not in model_input.columns:
            raise detector.ImageError(
                f"input has no 'image' column (found {', '.join(map(str, model_input.columns))})."
            )
        images = []
        for item in model_input["image"].tolist():
            if isinstance(item, list | tuple | np.ndarray) and _all_text(item):
                # {"inputs": {"image": [b64, ...]}}: MLflow hands the list over as one cell
                images.extend(item)
            else:
                images.append(item)
        return images
    if isinstance(model_input, dict):
        if "image" not in model_input:
            raise detector.ImageError("input has no 'image' key.")
        # {"image": [...]} in Python, one image per element (over HTTP MLflow makes
        # {"inputs": {"image": [...]}} a one-row frame holding the list: see above)
        value = model_input["image"]
        return list(value) if isinstance(value, list | tuple | np.ndarray) else [value]
    if isinstance(model_input, np.ndarray) and model_input.ndim == 4:
        return list(model_input)  # N x H x W x C
    if isinstance(model_input, list | tuple):
        return list(model_input)
    return [model_input]


def _all_text(item) -> bool:
    """A list of encoded images, not an RGB array (whose leaves are numbers)."""
    return len(item) > 0 and all(isinstance(v, str | bytes) for v in item)


def weights_in(folder: Path) -> Path:
    """The .pt file of a detector folder: a pyfunc model's artifact or a bare best.pt."""
    for candidate in (folder / "artifacts" / "best.pt", folder / "best.pt"):
        if candidate.is_file():
            return candidate
    found = sorted(folder.rglob("*.pt"))
    if not found:
        from vertiflow.errors import VertiflowError

        raise VertiflowError(f"{folder}: no detector weights (.pt) in this model folder.")
    return found[0]


def save(weights: Path, dest: Path) -> Path:
    """Write the pyfunc model folder for `weights` at `dest` (which must not exist)."""
    from importlib.metadata import version

    import ultralytics

    with warnings.catch_warnings():  # MLflow's advice on type hints and input examples
        warnings.simplefilter("ignore", UserWarning)
        mlflow.pyfunc.save_model(
            path=str(dest),
            python_model=Detector(),
            artifacts={WEIGHTS: str(weights)},
            signature=SIGNATURE,
            pip_requirements=[
                f"mlflow=={mlflow.__version__}",
                f"ultralytics=={ultralytics.__version__}",
                f"torch=={version('torch')}",
                f"torchvision=={version('torchvision')}",
                "vertiflow",
            ],
        )
    mlmodel = Model.load(dest)
    for artifact in mlmodel.flavors["python_function"]["artifacts"].values():
        artifact["uri"] = artifact["path"]  # not the source path (differs per save)
    mlmodel.save(dest / "MLmodel")
    pin_mlmodel(dest, weights)  # so the registry sees the same weights as the same files
    return dest
