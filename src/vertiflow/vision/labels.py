"""YOLO label files: one box per line, `class x_centre y_centre width height`, normalised
to the image; read as Ultralytics reads them (segmentation outlines as their boxes,
rounding past the border clipped), so that what is checked is what trains."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

EDGE_TOLERANCE = 0.01  # label rounding past the border; Ultralytics bounds x, y, w, h by as much


@dataclass
class Label:
    """One label file, parsed: boxes (class, x, y, w, h), its problems, edges clipped."""

    boxes: list[tuple[int, float, float, float, float]]
    problems: list[str]
    clipped: int  # boxes past the border by at most EDGE_TOLERANCE
    polygons: int = 0  # segmentation outlines, read as their bounding boxes
    duplicates: int = 0  # lines repeating an earlier one: dropped, as Ultralytics drops them

    @property
    def rewritten(self) -> bool:
        """Staged as plain, clipped, distinct boxes rather than linked as written."""
        return bool(self.clipped or self.polygons or self.duplicates)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix of xyxy boxes a (n, 4) and b (m, 4)."""
    a, b = np.asarray(a, float).reshape(-1, 4), np.asarray(b, float).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=1)
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def label_path(image: Path, within: Path) -> Path:
    """Ultralytics' rule: the last `images` folder in the path becomes `labels`; a path
    with none has its label beside the image. Only folders inside `within` (the dataset)
    count: an `images` folder above the dataset is not part of its layout."""
    inner = image.relative_to(within)
    folders = list(inner.parts[:-1])
    if "images" in folders:
        folders[len(folders) - 1 - folders[::-1].index("images")] = "labels"
    return (within / Path(*folders, inner.name)).with_suffix(".txt")


def parse_label(label: Path, n_classes: int) -> Label:
    """Parse a label file; boxes up to EDGE_TOLERANCE past the border are counted, kept;
    a line repeating an earlier one is counted and dropped (Ultralytics' np.unique).

    A line `class x1 y1 x2 y2 x3 y3 ...` is a segmentation outline (exports of segmentation
    projects): Ultralytics' detector trains on its bounding box, and so does ours.
    """
    parsed = Label([], [], 0)
    try:
        text = label.read_text(encoding="utf-8-sig")  # a byte-order mark, as Ultralytics
    except UnicodeDecodeError:
        utf16 = label.read_bytes()[:2] in (b"\xff\xfe", b"\xfe\xff")  # its byte-order mark
        parsed.problems.append(
            f"{label}: UTF-16 text (Windows' 'Unicode'); save it as UTF-8, as Ultralytics "
            "reads labels"
            if utf16
            else f"{label}: not UTF-8 text (a YOLO label file is lines of 5 numbers)"
        )
        return parsed
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split()
        where = f"{label}, line {lineno}"
        polygon = len(fields) >= 7 and len(fields) % 2 == 1
        if len(fields) != 5 and not polygon:
            parsed.problems.append(
                f"{where}: expected 5 fields 'class x y w h' (or a class and the x y pairs "
                f"of an outline of 3 or more points), found {len(fields)}"
            )
            continue
        try:
            # Ultralytics reads the class as a float too: some exporters write `0.0`
            number, numbers = float(fields[0]), np.array([float(f) for f in fields[1:]])
            cls = int(number)
            if cls != number:
                raise ValueError
        except (ValueError, OverflowError):
            parsed.problems.append(
                f"{where}: expected an integer class and {len(fields) - 1} numbers, found {line!r}"
            )
            continue
        if polygon:
            points = numbers.reshape(-1, 2)
            (x0, y0), (x1, y1) = points.min(axis=0), points.max(axis=0)
            x, y, w, h = (x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0
        else:
            x, y, w, h = numbers
        x, y, w, h = float(x), float(y), float(w), float(h)
        low, high = min(x - w / 2, y - h / 2), max(x + w / 2, y + h / 2)
        if not np.isfinite([x, y, w, h]).all():
            parsed.problems.append(
                f"{where}: box ({x}, {y}, {w}, {h}) has a value that is not a finite number"
            )
        elif not 0 <= cls < n_classes:
            parsed.problems.append(f"{where}: class id {cls} out of range 0..{n_classes - 1}")
        elif not (w > 0 and h > 0):
            parsed.problems.append(
                f"{where}: box width and height must be positive, found {w}, {h}"
            )
        elif low < -EDGE_TOLERANCE or high > 1 + EDGE_TOLERANCE:
            parsed.problems.append(
                f"{where}: box ({x}, {y}, {w}, {h}) reaches outside the image (coordinates "
                f"are normalised: centre +- half size must lie in 0..1, to within "
                f"{EDGE_TOLERANCE} for rounding)"
            )
        elif (cls, x, y, w, h) in parsed.boxes:  # a detector cannot find one object twice
            parsed.duplicates += 1
        else:
            parsed.clipped += int(low < 0 or high > 1)
            parsed.polygons += int(polygon)
            parsed.boxes.append((cls, x, y, w, h))
    return parsed


def clipped(boxes: list[tuple[int, float, float, float, float]]) -> list[tuple]:
    """Each box (class, x, y, w, h) clipped to the image (edges in 0..1)."""
    out = []
    for cls, x, y, w, h in boxes:
        x0, y0 = max(x - w / 2, 0.0), max(y - h / 2, 0.0)
        x1, y1 = min(x + w / 2, 1.0), min(y + h / 2, 1.0)
        out.append((cls, (x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0))
    return out


def clipped_text(boxes: list[tuple[int, float, float, float, float]]) -> str:
    """Label lines with every box clipped to the image."""
    return "".join(f"{c} {x:.6f} {y:.6f} {w:.6f} {h:.6f}\n" for c, x, y, w, h in clipped(boxes))


def true_boxes(label: Path) -> np.ndarray:
    """A checked label's boxes as training reads them, rows (class, x, y, w, h): no file
    is no box (a background image), an outline is its box, edges are clipped."""
    if not label.is_file():
        return np.zeros((0, 5))
    return np.array(clipped(parse_label(label, sys.maxsize).boxes), float).reshape(-1, 5)
