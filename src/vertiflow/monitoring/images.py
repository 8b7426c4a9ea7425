"""Image monitoring: what the detector is shown, what it answers, and drift on both.

Each image becomes a row of features a farm or clinic can reason about, chosen so that
one cause moves one feature:

- `brightness`: mean luma (0-1). Lighting.
- `contrast`: luma standard deviation over its mean (RMS contrast; unchanged when the
  light is only dimmer or brighter).
- `red_share`, `green_share`, `blue_share`: each channel's share of the summed channel
  means (chromaticity; unchanged by dimming, moved by another camera's white balance).
- `sharpness`: standard deviation of the luma Laplacian over the mean luma (falls with
  blur or focus loss; unchanged by dimming).
- `width`, `height`: pixels.

The detector's answers per image are `n_boxes` and `mean_confidence` (over images with
boxes), and over all boxes `class` (the class mix). Drift uses the tables' machinery
(`monitoring.drift`): PSI and a KS or chi-squared test per feature, Bonferroni over all
of them, flagged only when both agree.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from vertiflow.errors import DataError
from vertiflow.monitoring import drift
from vertiflow.vision.detector import ImageError

INPUT_FEATURES = (
    "brightness",
    "contrast",
    "red_share",
    "green_share",
    "blue_share",
    "sharpness",
    "width",
    "height",
)
OUTPUT_FEATURES = ("n_boxes", "mean_confidence")
CLASS_MIX = "class"
LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def image_features(image: np.ndarray) -> dict[str, float]:
    """The features of one RGB uint8 image (H x W x 3)."""
    import cv2

    rgb = np.asarray(image, np.float32)
    luma = rgb @ LUMA
    mean = float(luma.mean())
    channels = rgb.reshape(-1, 3).mean(axis=0)
    shares = channels / max(float(channels.sum()), 1e-6)
    laplacian = cv2.Laplacian(luma, cv2.CV_32F)
    return {
        "brightness": mean / 255,
        "contrast": float(luma.std()) / max(mean, 1e-6),
        "red_share": float(shares[0]),
        "green_share": float(shares[1]),
        "blue_share": float(shares[2]),
        "sharpness": float(laplacian.std()) / max(mean, 1e-6),
        "width": int(image.shape[1]),
        "height": int(image.shape[0]),
    }


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def as_images(data: Any, where: str = "input_data") -> list[np.ndarray] | None:
    """RGB uint8 images from what an app holds, or None when `data` is not images (a
    table, a feature matrix, a list of numbers or categories).

    Images: one H x W x C array, a batch (N x H x W x C, or N x H x W grayscale), a PIL
    image, a file path (`Path`, or text ending in an image suffix), or a list of any of
    these (2-D arrays in a list are grayscale images). Grayscale becomes three equal
    channels, as OpenCV and Ultralytics read a grayscale file. Float pixels in 0-1 are
    scaled to 0-255 (a float image cast as is would be logged black); floats outside
    0-255 are refused. A lone 2-D array stays a feature matrix (its rows the samples).
    """
    if isinstance(data, list | tuple):
        kinds = [_is_image(d, in_list=True) for d in data]
        if not data or not any(kinds):
            return None
        if not all(kinds):
            bad = kinds.index(False)
            raise ImageError(
                f"{where}: item {bad} is {type(data[bad]).__name__}, not an image; a list must "
                "hold only images (arrays, PIL images or file paths)."
            )
        arrays = [_array(d, f"{where}[{i}]") for i, d in enumerate(data)]
        scale = _float_scale(arrays, where)
        return [_rgb(a * scale, f"{where}[{i}]") for i, a in enumerate(arrays)]
    if not _is_image(data, in_list=False):
        return None
    if isinstance(data, np.ndarray) and (
        data.ndim == 4 or (data.ndim == 3 and data.shape[2] not in (1, 3, 4))
    ):
        scale = _float_scale([data], where)  # N x H x W x C, or N x H x W grayscale
        return [_rgb(d * scale, f"{where}[{i}]") for i, d in enumerate(data)]
    array = _array(data, where)
    return [_rgb(array * _float_scale([array], where), where)]


def _is_image(item: Any, in_list: bool) -> bool:
    if isinstance(item, np.ndarray):
        if item.ndim == 2:
            return in_list  # alone: a feature matrix, not a grayscale picture
        return item.ndim == 4 or (item.ndim == 3 and min(item.shape[:2]) > 1)
    if isinstance(item, Path):
        return True
    if isinstance(item, str):
        return item.lower().endswith(IMAGE_SUFFIXES)
    return _is_pil(item)


def _is_pil(item: Any) -> bool:
    return type(item).__module__.startswith("PIL.") and hasattr(item, "convert")


def _array(item: Any, where: str) -> np.ndarray:
    """An array from a PIL image or a file (RGB), or the array itself."""
    if _is_pil(item):
        return np.asarray(item.convert("RGB"))
    if isinstance(item, str | Path):
        from vertiflow.vision import detector

        path = Path(item)
        if not path.is_file():
            raise ImageError(f"{where}: {path}: no such image file.")
        return detector.decode(path.read_bytes(), f"{where} ({path})")
    return np.asarray(item)


def _float_scale(arrays: list[np.ndarray], where: str) -> float:
    """1/255 -> x255 for float images in 0-1; 1 for 0-255 (or integer) images."""
    floats = [a for a in arrays if np.issubdtype(a.dtype, np.floating) and a.size]
    if not floats:
        return 1
    low = min(float(np.min(a)) for a in floats)
    high = max(float(np.max(a)) for a in floats)
    if not (np.isfinite(low) and np.isfinite(high)) or low < 0 or high > 255:
        raise ImageError(
            f"{where}: float pixel values from {low:g} to {high:g}; expected 0-1 (scaled to "
            "0-255) or 0-255."
        )
    return 255 if high <= 1 else 1


def _rgb(image: np.ndarray, where: str = "image") -> np.ndarray:
    from vertiflow.vision import detector

    if np.issubdtype(image.dtype, np.floating):
        # 0.999 * 255 is 255, not 254; uint8 once scaled here (by the batch's range), so
        # that decode does not read a dark 0-255 image as one of 0-1
        image = np.rint(image).astype(np.uint8)
    return detector.decode(image, where)


def features(images: list[np.ndarray]) -> pl.DataFrame:
    """One row of input features per image."""
    rows = [image_features(img) for img in images]
    return pl.DataFrame(rows, schema=dict.fromkeys(INPUT_FEATURES, pl.Float64))


def output_features(detections: list[dict[str, Any] | None]) -> pl.DataFrame:
    """Per image: number of boxes, their mean confidence (null without boxes), classes;
    all null for an image without detector output (None)."""
    rows: list[dict[str, Any]] = []
    for d in detections:
        if d is None:
            rows.append({"n_boxes": None, "mean_confidence": None, "classes": None})
            continue
        boxes = d.get("boxes") or []
        confs = [float(b["confidence"]) for b in boxes]
        rows.append(
            {
                "n_boxes": len(boxes),
                "mean_confidence": float(np.mean(confs)) if confs else None,
                "classes": [str(b["class_name"]) for b in boxes],
            }
        )
    return pl.DataFrame(
        rows,
        schema={"n_boxes": pl.Int64, "mean_confidence": pl.Float64, "classes": pl.List(pl.String)},
    )


DETECTION_KEYS = ("boxes", "detections", "yolo_detections", "predictions")
CLASS_KEYS = ("class_name", "class", "name", "label")


def is_results(item: Any) -> bool:
    """An Ultralytics Results (told by its boxes, without importing Ultralytics)."""
    return hasattr(getattr(item, "boxes", None), "conf")


def results_in(prediction: Any) -> list[Any]:
    """The Ultralytics Results in a prediction (alone, a list, or under a detection key)."""
    if isinstance(prediction, dict):
        key = next((k for k in DETECTION_KEYS if k in prediction), None)
        return results_in(prediction[key]) if key else []
    if isinstance(prediction, list | tuple):
        return [r for p in prediction for r in results_in(p)]
    return [prediction] if is_results(prediction) else []


def detections_from(prediction: Any) -> list[dict[str, Any]] | None:
    """Per image, `{"boxes": [...]}` from what an app holds, or None if not detections.

    Understood: our own output (`detector.detect`, one image or a list); a dict wrapping
    detections under `detections`, `yolo_detections` or `predictions`; a list of box
    dicts for one image, as the app writes them (`{"class", "confidence", "bbox"}`,
    `bbox` x1, y1, x2, y2 in pixels); Ultralytics Results (one or a list). Boxes keep
    class id and coordinates, so a dashboard can draw what was logged.
    """
    if isinstance(prediction, dict):
        if isinstance(prediction.get("boxes"), list):
            return [{**prediction, "boxes": [_box(b) for b in prediction["boxes"]]}]
        for key in DETECTION_KEYS[1:]:
            if key in prediction:
                inner = prediction[key]
                if isinstance(inner, list | tuple) and not inner:
                    return [{"boxes": []}]  # one image, nothing found
                return detections_from(inner)
        return None
    if isinstance(prediction, list | tuple):
        if prediction and all(_is_box(p) for p in prediction):
            return [{"boxes": [_box(b) for b in prediction]}]  # one image's boxes
        found = [detections_from(p) for p in prediction]
        if found and all(f is not None for f in found):
            return [d for f in found for d in f]  # type: ignore[union-attr]
        return None
    if is_results(prediction):
        from vertiflow.vision import detector

        boxes, names = prediction.boxes, prediction.names
        ids = detector.app_class_ids(names)  # as `detector.detect` logs them
        rows = zip(boxes.cls.tolist(), boxes.conf.tolist(), boxes.xyxy.tolist(), strict=True)
        return [
            {
                "boxes": [
                    {
                        "class_id": ids[int(c)],
                        "class_name": str(names[int(c)]),
                        "confidence": round(float(p), 4),
                        **{k: round(float(v), 1) for k, v in zip(XYXY, xyxy, strict=True)},
                    }
                    for c, p, xyxy in rows
                ]
            }
        ]
    return None


XYXY = ("x1", "y1", "x2", "y2")


def _is_box(item: Any) -> bool:
    return isinstance(item, dict) and "confidence" in item and any(k in item for k in CLASS_KEYS)


def _box(box: Any) -> dict[str, Any]:
    """One box in our form (class_name, confidence; class_id and x1..y2 when known)."""
    if not _is_box(box):
        raise DataError(
            f"a box {box!r}: expected a dict with 'confidence' and a class "
            f"({' or '.join(repr(k) for k in CLASS_KEYS)})."
        )
    out = dict(box)
    label = next(box[k] for k in CLASS_KEYS if k in box)
    if isinstance(label, int | np.integer) and not isinstance(label, bool):
        out.setdefault("class_id", int(label))
    out["class_name"] = str(label)
    out["confidence"] = _confidence(box["confidence"])
    bbox = box.get("bbox", box.get("xyxy"))
    if bbox is not None and not all(k in box for k in XYXY):
        corners = [bbox.get(k) for k in XYXY] if isinstance(bbox, dict) else bbox
        try:
            if len(corners) == 4:
                out.update({k: float(v) for k, v in zip(XYXY, corners, strict=True)})
        except (TypeError, ValueError):
            corners = None
        if corners is None or None in corners:  # Python's "could not convert" named neither
            raise DataError(
                f"a box's bbox {bbox!r}: expected x1, y1, x2, y2 in pixels (a list of four "
                "numbers, or a dict with those keys)."
            )
    return out


def _confidence(value: Any) -> float:
    """A fraction 0-1: a percentage (85) logged as it came became a `mean_confidence`
    drift the monitor invented."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if not 0 <= number <= 1:
        raise DataError(f"a box's confidence {value!r}: expected a number 0-1 (85 %: give 0.85).")
    return number


def speed_s(prediction: Any) -> float | None:
    """Seconds an Ultralytics call took, from its Results' `speed` (ms per image for
    preprocess, inference, postprocess; summed over the images of the call)."""
    results = prediction if isinstance(prediction, list | tuple) else [prediction]
    speeds = [getattr(r, "speed", None) for r in results]
    if not results or not all(
        isinstance(v, dict) and hasattr(r, "boxes") for v, r in zip(speeds, results, strict=True)
    ):
        return None
    return sum(float(t) for v in speeds for t in v.values() if t is not None) / 1000


def check(reference: pl.DataFrame, current: pl.DataFrame, t: drift.Thresholds) -> dict[str, Any]:
    """Drift of image batches: input features, and detector outputs where both sides have
    them (`n_boxes`, `mean_confidence`, `classes`). Same report as `drift.detect`."""
    columns = [c for c in INPUT_FEATURES if c in reference.columns and c in current.columns]
    drift.require_columns(current, list(INPUT_FEATURES))
    # a row without image features is detections logged without their image: no input
    # to compare, not a missing value (which would warn)
    shown = current.filter(pl.col("brightness").is_not_null())
    pairs = {c: (reference[c], shown[c]) for c in columns}
    if "n_boxes" in reference.columns and "n_boxes" in current.columns:
        # outputs may be known for some rows only (the reference's validation images)
        pairs["n_boxes"] = (reference["n_boxes"].drop_nulls(), current["n_boxes"].drop_nulls())
        # over images with boxes: "nothing found" is n_boxes' business, not a missing value
        pairs["mean_confidence"] = (
            reference["mean_confidence"].drop_nulls(),
            current["mean_confidence"].drop_nulls(),
        )
        pairs[CLASS_MIX] = (
            reference["classes"].explode().drop_nulls(),
            current["classes"].explode().drop_nulls(),
        )
        pairs = {k: v for k, v in pairs.items() if len(v[0]) and len(v[1])}
    return drift.detect_pairs(pairs, reference.height, current.height, t)


def reference(dataset_dir, weights, conf: float) -> pl.DataFrame:
    """What the detector was trained on: input features of every image of the dataset,
    and its outputs (at confidence `conf`) on the validation images, which it did not
    learn from (on training images it is more confident than it will ever be in use)."""
    import cv2

    from vertiflow.vision import detector, yolo, yolo_data

    dataset = yolo_data.read(dataset_dir)
    tables = []
    model = yolo.load_model(str(weights))
    for split in ("train", "val"):
        files = [image for image, _ in dataset.pairs[split]]
        pictures = [detector.decode(cv2.imread(str(f))[..., ::-1], str(f)) for f in files]
        table = features(pictures)
        found = detector.detect(model, pictures, conf) if split == "val" else None
        outputs = output_features(found or [None] * len(pictures))
        tables.append(pl.concat([table, outputs], how="horizontal"))
    return pl.concat(tables)


# Simulated drift for tests and demos: what changes when the camera or the room does.
def dim(image: np.ndarray, factor: float = 0.6) -> np.ndarray:
    """Darker lighting: every channel scaled down."""
    return np.clip(image.astype(np.float32) * factor, 0, 255).astype(np.uint8)


def colour_cast(image: np.ndarray, gains=(1.12, 1.0, 0.85)) -> np.ndarray:
    """Another camera's white balance: warmer (more red, less blue)."""
    return np.clip(image.astype(np.float32) * np.float32(gains), 0, 255).astype(np.uint8)


def blur(image: np.ndarray, sigma: float = 1.2) -> np.ndarray:
    """Focus loss or a softer lens."""
    import cv2

    return cv2.GaussianBlur(image, (0, 0), sigma)


SCENARIOS = {"none": lambda img: img, "dim": dim, "colour_cast": colour_cast, "blur": blur}


def simulated_images(n: int, seed: int, size: int = 128, scenario: str = "none"):
    """Fresh images from the built-in generator (the training distribution), optionally
    drifted (SCENARIOS)."""
    from vertiflow.vision import skin

    if scenario not in SCENARIOS:
        raise DataError(f"unknown scenario '{scenario}'; known: {', '.join(SCENARIOS)}.")
    rng = np.random.default_rng(seed)
    config = skin.ImageConfig(seed=seed, image_size=size)
    return [SCENARIOS[scenario](skin.render(rng, config)[0]) for _ in range(n)]
