"""A YOLO-format dataset: read its data YAML, check every image/label pair, stage it.

The layout is Ultralytics' own: a `data.yaml` with `names` and `train`/`val` image
folders, and each image's label at the same place with the last `images` folder replaced
by `labels` and a `.txt` suffix: one line per object, `class x_centre y_centre width
height`, normalised to the image. Paths in the YAML are resolved against the dataset
folder (`path:` first, when given), never the current directory, and must stay inside it:
the folder is what DVC versions, so it must be what trains. The common export layouts are
accepted: `images/train` + `labels/train`, `train/images` + `train/labels`, a `valid/`
split standing for `val`, and `../train/images`-style entries (Ultralytics' own fallback:
the leading `../` is dropped when the path does not exist as written).

Label rounding is tolerated as Ultralytics tolerates it: a box edge up to 0.01 past the
image border is clipped to it (in the staged copy; counted in the report), not refused.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from PIL import Image, UnidentifiedImageError

from vertiflow.errors import DataError

IMAGE_SUFFIXES = {".bmp", ".jpeg", ".jpg", ".png", ".tif", ".tiff", ".webp"}
SPLITS = ("train", "val")
MAX_PROBLEMS = 10
EDGE_TOLERANCE = 0.01  # Ultralytics accepts normalised coordinates in [-0.01, 1.01]
# Where exports put each split when data.yaml does not name it (first found wins).
CONVENTIONAL = {
    "train": ("images/train", "train/images"),
    "val": ("images/val", "val/images", "valid/images", "images/valid"),
}


@dataclass(frozen=True)
class Dataset:
    names: list[str]
    pairs: dict[str, list[tuple[Path, Path]]]  # split -> [(image, label)]


@dataclass
class Label:
    """One label file, parsed: boxes (class, x, y, w, h), its problems, edges clipped."""

    boxes: list[tuple[int, float, float, float, float]]
    problems: list[str]
    clipped: int  # boxes past the border by at most EDGE_TOLERANCE
    polygons: int = 0  # segmentation outlines, read as their bounding boxes

    @property
    def rewritten(self) -> bool:
        """Staged as plain, clipped boxes rather than linked as written."""
        return bool(self.clipped or self.polygons)


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


def label_path(image: Path) -> Path:
    """Ultralytics' rule: the last `images` folder in the path becomes `labels`."""
    parts = list(image.parts)
    idx = len(parts) - 1 - parts[::-1].index("images")
    parts[idx] = "labels"
    return Path(*parts).with_suffix(".txt")


def _names(data: dict[str, Any], source: Path) -> list[str]:
    """Class names; with only `nc`, Ultralytics' own `class_0`, `class_1`, ..."""
    names, nc = data.get("names"), data.get("nc")
    if names is None and isinstance(nc, int) and not isinstance(nc, bool) and nc > 0:
        return [f"class_{i}" for i in range(nc)]
    if isinstance(names, dict) and sorted(names) == list(range(len(names))):
        names = [names[i] for i in range(len(names))]
    if not (isinstance(names, list) and names):
        raise DataError(
            f"{source}: 'names' must be a list of class names or a mapping 0..N-1 -> name; "
            f"found {names!r}."
        )
    if nc is not None and nc != len(names):
        raise DataError(f"{source}: 'nc' is {nc!r} but 'names' lists {len(names)} classes.")
    return [str(n) for n in names]


def _inside(folder: Path, dataset_dir: Path, source: Path, what: str) -> Path:
    """`folder`, resolved, if it lies inside the dataset folder; a clear error if not."""
    resolved, home = folder.resolve(), dataset_dir.resolve()
    if not resolved.is_relative_to(home):
        raise DataError(
            f"{source}: {what} points to {resolved}, outside the dataset folder {home}. "
            "DVC versions that folder, so training must read only from it: make the path "
            "relative to the folder holding data.yaml (or drop 'path:') and copy the images in."
        )
    return resolved


def _split_folders(
    data: dict[str, Any], split: str, root: Path, dataset_dir: Path, source: Path
) -> list[Path]:
    """The image folders of one split: as data.yaml names them, or where exports put them."""
    value = data.get(split)
    if value is None and split == "val":
        value = data.get("valid")
    if value is None:
        found = [root / c for c in CONVENTIONAL[split] if (root / c).is_dir()]
        if not found:
            raise DataError(
                f"{source}: '{split}' must name a folder of images (none given, and none of "
                f"{', '.join(CONVENTIONAL[split])} exists under {root})."
            )
        return [_inside(found[0], dataset_dir, source, f"the {split} folder")]
    entries = value if isinstance(value, list) else [value]
    if not entries or not all(isinstance(e, str) for e in entries):
        raise DataError(f"{source}: '{split}' must name a folder of images (or a list of them).")
    folders = []
    for entry in entries:
        folder = root / entry
        if not folder.exists() and entry.startswith("../"):
            folder = root / entry[3:]  # Ultralytics' fallback for Roboflow-style exports
        folder = _inside(folder, dataset_dir, source, f"{split} ({entry!r})")
        if not folder.is_dir() or "images" not in folder.parts:
            raise DataError(
                f"{source}: {split} folder {root / entry} does not exist or has no 'images' "
                "folder in its path (labels are found by replacing 'images' with 'labels')."
            )
        folders.append(folder)
    return folders


def read(dataset_dir: Path) -> Dataset:
    """Find every image and its label file; the YAML's structure errors come first."""
    source = dataset_dir / "data.yaml"
    try:
        data = yaml.safe_load(source.read_text())
    except FileNotFoundError:
        raise DataError(
            f"{source}: not found; images.dataset must name a folder holding a YOLO data.yaml."
        ) from None
    except yaml.YAMLError as exc:
        raise DataError(f"{source}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise DataError(f"{source}: expected a mapping with names, train and val.")
    names = _names(data, source)
    root = _inside(dataset_dir / str(data.get("path") or "."), dataset_dir, source, "'path:'")
    pairs = {}
    for split in SPLITS:
        images = sorted(
            p
            for folder in _split_folders(data, split, root, dataset_dir, source)
            for p in folder.rglob("*")
            if p.suffix.lower() in IMAGE_SUFFIXES
        )
        if not images:
            raise DataError(f"{source}: {split} folder(s) of {split!r} hold no images.")
        pairs[split] = [(img, label_path(img)) for img in images]
    return Dataset(names, pairs)


def parse_label(label: Path, n_classes: int) -> Label:
    """Parse a label file; boxes up to EDGE_TOLERANCE past the border are counted, kept.

    A line `class x1 y1 x2 y2 x3 y3 ...` is a segmentation outline (exports of segmentation
    projects): Ultralytics' detector trains on its bounding box, and so does ours.
    """
    parsed = Label([], [], 0)
    try:
        text = label.read_text()
    except UnicodeDecodeError:
        parsed.problems.append(f"{label}: not a text file")
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
        else:
            parsed.clipped += int(low < 0 or high > 1)
            parsed.polygons += int(polygon)
            parsed.boxes.append((cls, x, y, w, h))
    return parsed


def clipped_text(boxes: list[tuple[int, float, float, float, float]]) -> str:
    """Label lines with every box clipped to the image (edges in 0..1)."""
    lines = []
    for cls, x, y, w, h in boxes:
        x0, y0 = max(x - w / 2, 0.0), max(y - h / 2, 0.0)
        x1, y1 = min(x + w / 2, 1.0), min(y + h / 2, 1.0)
        lines.append(f"{cls} {(x0 + x1) / 2:.6f} {(y0 + y1) / 2:.6f} {x1 - x0:.6f} {y1 - y0:.6f}")
    return "".join(line + "\n" for line in lines)


def check(dataset: Dataset) -> dict[str, Any]:
    """Every image readable, every label present and sane; raises DataError listing them."""
    problems: list[str] = []
    counts: dict[str, Any] = {"classes": len(dataset.names)}
    clipped = polygons = 0
    for split, pairs in dataset.pairs.items():
        objects = background = 0
        before = len(problems)
        for image, label in pairs:
            try:
                with Image.open(image) as im:
                    im.verify()
            # Once Ultralytics is imported, Image.open answers a file Pillow cannot identify
            # by looking for the pi-heif plugin (offline: not installed, ModuleNotFoundError).
            except (UnidentifiedImageError, OSError, SyntaxError, ImportError):
                problems.append(f"{image}: unreadable image (Pillow cannot identify or decode it)")
            if not label.is_file():  # Ultralytics' rule: no label file, no object
                background += 1
                continue
            parsed = parse_label(label, len(dataset.names))
            problems += parsed.problems
            if not parsed.problems:
                objects += len(parsed.boxes)
                background += int(not parsed.boxes)
                clipped += parsed.clipped
                polygons += parsed.polygons
        # A label file with no image is ignored, as Ultralytics ignores it (an export often
        # keeps the labels of images removed by hand); counted, so a wrong suffix shows.
        labels = {lbl for _, lbl in pairs}
        label_dirs = {lbl.parent for lbl in labels}
        orphans = [p for d in label_dirs for p in d.glob("*.txt") if p not in labels]
        if not objects and len(problems) == before:  # this split's labels parsed, yet empty
            problems.append(
                f"the {split} split has no labelled object in its {len(pairs)} image(s): "
                f"expected label files such as {label_path(pairs[0][0])} (the image's path "
                "with its last 'images' folder replaced by 'labels', and .txt)"
            )
        counts[f"{split}_images"] = len(pairs)
        counts[f"{split}_objects"] = objects
        counts[f"{split}_background_images"] = background  # no label file, or an empty one
        counts[f"{split}_labels_without_image"] = len(orphans)
    counts["boxes_clipped"] = clipped  # within EDGE_TOLERANCE of the border: rounding
    counts["outlines_as_boxes"] = polygons  # segmentation outlines, trained as their boxes
    if problems:
        shown = "\n  - ".join(problems[:MAX_PROBLEMS])
        more = (
            f"\n  ... and {len(problems) - MAX_PROBLEMS} more"
            if len(problems) > MAX_PROBLEMS
            else ""
        )
        raise DataError(f"the image dataset has {len(problems)} problem(s):\n  - {shown}{more}")
    return counts


def stage(dataset: Dataset, workdir: Path) -> Path:
    """Link the dataset into `workdir` in the canonical layout; returns its data.yaml.

    Ultralytics writes a label cache next to the labels; staging keeps that write out of
    the DVC-tracked dataset (it would change its hash) and accepts any layout `read` does.
    A label with boxes a rounding past the border, or with outlines, is written as clipped
    boxes instead of linked.
    """
    for split, pairs in dataset.pairs.items():
        for kind in ("images", "labels"):
            (workdir / kind / split).mkdir(parents=True, exist_ok=True)
        for i, (image, label) in enumerate(pairs):
            stem = f"{i:06d}_{image.stem}"
            os.symlink(image.resolve(), workdir / "images" / split / f"{stem}{image.suffix}")
            target = workdir / "labels" / split / f"{stem}.txt"
            if not label.is_file():
                continue  # a background image, as in the dataset
            parsed = parse_label(label, len(dataset.names))
            if parsed.rewritten:
                target.write_text(clipped_text(parsed.boxes))
            else:
                os.symlink(label.resolve(), target)
    data = {
        "path": str(workdir.resolve()),
        "train": "images/train",
        "val": "images/val",
        "names": dict(enumerate(dataset.names)),
    }
    path = workdir / "data.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path
