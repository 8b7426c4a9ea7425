"""The detector at inference time: images in (files, base64 text or arrays), boxes out.

One code path for every caller (the MLflow pyfunc model, the Django app, the monitor):
`decode` turns what a client sent into an RGB uint8 array or raises `ImageError` naming
the problem, and `detect` runs an Ultralytics model on decoded images and returns, per
image, its boxes with class names and confidences. Arrays are RGB, values 0-255.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import numpy as np

from vertiflow.errors import VertiflowError
from vertiflow.vision.app_classes import app_class_ids

MIN_SIDE, MAX_SIDE = 16, 10_000  # pixels
DEFAULT_CONF = 0.25  # Ultralytics' own default: the boxes a user sees
# Inference sizes (`image_size`): Ultralytics rounds up to its stride (32 px); above, at
# most 4 x the training size and never over 4096 px. Memory and time grow with the square
# of the size (the 128-px detector on one 128-px image, CPU: 0.01 s at 128, 3.9 s and
# +2.4 GB at 4096; 100000 px would be a 30 GB letterboxed image), and a detector run far
# from its training scale sees objects at sizes it never learnt.
MIN_IMAGE_SIZE, MAX_IMAGE_SIZE, IMAGE_SIZE_FACTOR = 32, 4096, 4


class ImageError(VertiflowError):
    """A client sent something that is not a usable image (HTTP 400, not 500)."""


class ParamError(VertiflowError):
    """A client sent a param the detector cannot use (HTTP 400, not 500)."""


def training_size(model) -> int:
    """The size the weights were trained at (Ultralytics keeps it in the checkpoint's
    args); 640, Ultralytics' default, for weights that do not say."""
    size = (getattr(model, "overrides", None) or {}).get("imgsz") or 640
    return int(max(size) if isinstance(size, list | tuple) else size)


def image_size_limit(model) -> int:
    return min(IMAGE_SIZE_FACTOR * training_size(model), MAX_IMAGE_SIZE)


def check_image_size(model, image_size: int | None) -> int:
    """`image_size` if the model may run at it (0 or None: the training size); else a
    ParamError naming the param, the value and the range."""
    size = int(image_size or 0)
    limit = image_size_limit(model)
    if size and not MIN_IMAGE_SIZE <= size <= limit:
        raise ParamError(
            f"param image_size: {size} is out of range; give 0 (the training size, "
            f"{training_size(model)} px) or {MIN_IMAGE_SIZE}-{limit} px (at most "
            f"{IMAGE_SIZE_FACTOR} x the training size, and never over {MAX_IMAGE_SIZE}: "
            "memory and time grow with its square)."
        )
    return size


def _from_bytes(data: bytes, where: str) -> np.ndarray:
    import cv2

    if not data:
        raise ImageError(f"{where}: empty (0 bytes).")
    declared = _declared_size(data, where)
    if declared:
        _check_sides(*declared, where)
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ImageError(
            f"{where}: {len(data)} bytes that are not an image file OpenCV can read "
            "(PNG, JPEG, BMP, TIFF, WebP)."
        )
    return image[..., ::-1]  # OpenCV decodes to BGR


def _declared_size(data: bytes, where: str) -> tuple[int, int] | None:
    """Width and height from the file's header, read before decoding: a 48 KB PNG of
    20000 x 20000 pixels took 2.35 GB to decode before its size was refused. None when
    Pillow cannot read the header (OpenCV may still read the file)."""
    import io
    import warnings

    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                return image.size
    except Image.DecompressionBombError:  # over 178 million pixels: a side is over MAX_SIDE
        raise ImageError(
            f"{where}: over {2 * Image.MAX_IMAGE_PIXELS} pixels; each side must be "
            f"{MIN_SIDE}-{MAX_SIDE} pixels."
        ) from None
    except Exception:  # not a format Pillow knows, or a header it cannot parse
        return None


def _check_sides(w: int, h: int, where: str) -> None:
    if min(h, w) < MIN_SIDE or max(h, w) > MAX_SIDE:
        raise ImageError(
            f"{where}: {w} x {h} pixels; each side must be {MIN_SIDE}-{MAX_SIDE} pixels."
        )


def _from_text(text: str, where: str) -> np.ndarray:
    if text.startswith("data:") and "," in text:  # a data URL: data:image/png;base64,...
        text = text.split(",", 1)[1]
    text = "".join(text.split())
    if not text:
        raise ImageError(f"{where}: empty string (expected a base64-encoded image file).")
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ImageError(
            f"{where}: not valid base64 text (expected a base64-encoded image file)."
        ) from None
    return _from_bytes(data, where)


def _from_array(value: Any, where: str) -> np.ndarray:
    try:
        array = np.asarray(value)
    except ValueError:  # ragged nested lists
        raise ImageError(f"{where}: an array image must be rectangular (H x W x 3).") from None
    if array.dtype == object or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise ImageError(
            f"{where}: an array image must hold numbers 0-255, found dtype {array.dtype}."
        )
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise ImageError(
            f"{where}: an array image must be H x W x 3 (RGB), H x W x 4 or H x W; "
            f"found shape {array.shape}."
        )
    array = array[..., :3]
    if array.size and (np.nanmin(array) < 0 or np.nanmax(array) > 255 or np.isnan(array).any()):
        raise ImageError(f"{where}: array values must lie in 0-255 (RGB), or 0-1 as floats.")
    if np.issubdtype(array.dtype, np.floating):
        # float pixels in 0-1 (an app's normalised image) are scaled, as the monitor reads
        # them: cast as they were, they became a black image and a 200 with no boxes
        array = np.rint(array * 255 if array.size and array.max() <= 1 else array)
    return array.astype(np.uint8)


def decode(item: Any, where: str = "image") -> np.ndarray:
    """An RGB uint8 H x W x 3 array from bytes, base64 text or an array; else ImageError."""
    if isinstance(item, bytes | bytearray | memoryview):
        image = _from_bytes(bytes(item), where)
    elif isinstance(item, str):
        image = _from_text(item, where)
    elif isinstance(item, np.ndarray | list | tuple):
        image = _from_array(item, where)
    elif item is None or (isinstance(item, float) and np.isnan(item)):
        raise ImageError(f"{where}: missing (null).")
    else:
        raise ImageError(
            f"{where}: expected a base64-encoded image file or an RGB array, "
            f"found {type(item).__name__}."
        )
    h, w = image.shape[:2]
    _check_sides(w, h, where)
    return np.ascontiguousarray(image)


def detect(
    model,
    images: list[np.ndarray],
    conf: float = DEFAULT_CONF,
    image_size: int | None = None,
    device: str | None = None,
) -> list[dict[str, Any]]:
    """Boxes per image (pixels, xyxy) with class id (`app_class_ids`), name and
    confidence, best first.

    `image_size` None: the size the model was trained at; `device` None: Ultralytics'
    choice (the first GPU when there is one).
    """
    image_size = check_image_size(model, image_size)
    if not images:
        return []
    kwargs: dict[str, Any] = {"conf": float(conf), "verbose": False}
    if image_size:
        kwargs["imgsz"] = int(image_size)
    if device is not None:
        kwargs["device"] = device
    results = model.predict([img[..., ::-1] for img in images], **kwargs)  # Ultralytics: BGR
    ids = app_class_ids(model.names)
    out = []
    for image, result in zip(images, results, strict=True):
        boxes = result.boxes
        xyxy = boxes.xyxy.cpu().numpy()
        confs = boxes.conf.cpu().numpy()
        classes = boxes.cls.cpu().numpy().astype(int)
        order = np.argsort(-confs)
        out.append(
            {
                "boxes": [
                    {
                        "class_id": ids[int(classes[i])],
                        "class_name": str(result.names[int(classes[i])]),
                        "confidence": round(float(confs[i]), 4),
                        "x1": round(float(xyxy[i, 0]), 1),
                        "y1": round(float(xyxy[i, 1]), 1),
                        "x2": round(float(xyxy[i, 2]), 1),
                        "y2": round(float(xyxy[i, 3]), 1),
                    }
                    for i in order
                ],
                "width": int(image.shape[1]),
                "height": int(image.shape[0]),
            }
        )
    return out
