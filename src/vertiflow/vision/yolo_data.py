"""A YOLO-format dataset: read its data YAML, check every image/label pair, stage it.

The layout is Ultralytics' own: a `data.yaml` with `names` and `train`/`val` image
folders (relative to the YAML's folder, or to its `path`), and each image's label at the
same place with `images` replaced by `labels` and a `.txt` suffix: one line per object,
`class x_centre y_centre width height`, normalised to the image.
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


@dataclass(frozen=True)
class Dataset:
    names: list[str]
    pairs: dict[str, list[tuple[Path, Path]]]  # split -> [(image, label)]


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
    names = data.get("names")
    if isinstance(names, dict) and sorted(names) == list(range(len(names))):
        return [str(names[i]) for i in range(len(names))]
    if isinstance(names, list) and names:
        return [str(n) for n in names]
    raise DataError(
        f"{source}: 'names' must be a list of class names or a mapping 0..N-1 -> name; "
        f"found {names!r}."
    )


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
    root = dataset_dir / data.get("path", ".")
    pairs = {}
    for split in SPLITS:
        if not isinstance(data.get(split), str):
            raise DataError(f"{source}: '{split}' must name a folder of images.")
        folder = root / data[split]
        if not folder.is_dir() or "images" not in folder.resolve().parts:
            raise DataError(
                f"{source}: {split} folder {folder} does not exist or has no 'images' folder "
                "in its path (labels are found by replacing 'images' with 'labels')."
            )
        images = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if not images:
            raise DataError(f"{source}: {split} folder {folder} holds no images.")
        pairs[split] = [(img, label_path(img)) for img in images]
    return Dataset(names, pairs)


def _check_label(label: Path, n_classes: int) -> list[str]:
    problems = []
    try:
        text = label.read_text()
    except UnicodeDecodeError:
        return [f"{label}: not a text file"]
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split()
        where = f"{label}, line {lineno}"
        if len(fields) != 5:
            problems.append(f"{where}: expected 5 fields 'class x y w h', found {len(fields)}")
            continue
        try:
            cls, x, y, w, h = int(fields[0]), *map(float, fields[1:])
        except ValueError:
            problems.append(f"{where}: expected an integer class and 4 numbers, found {line!r}")
            continue
        if not 0 <= cls < n_classes:
            problems.append(f"{where}: class id {cls} out of range 0..{n_classes - 1}")
        elif not (w > 0 and h > 0):
            problems.append(f"{where}: box width and height must be positive, found {w}, {h}")
        elif x - w / 2 < -1e-6 or y - h / 2 < -1e-6 or x + w / 2 > 1 + 1e-6 or y + h / 2 > 1 + 1e-6:
            problems.append(
                f"{where}: box ({x}, {y}, {w}, {h}) reaches outside the image "
                "(coordinates are normalised: centre +- half size must lie in 0..1)"
            )
    return problems


def check(dataset: Dataset) -> dict[str, Any]:
    """Every image readable, every label present and sane; raises DataError listing them."""
    problems: list[str] = []
    counts: dict[str, Any] = {"classes": len(dataset.names)}
    for split, pairs in dataset.pairs.items():
        objects = 0
        for image, label in pairs:
            try:
                with Image.open(image) as im:
                    im.verify()
            # Once Ultralytics is imported, Image.open answers a file Pillow cannot identify
            # by looking for the pi-heif plugin (offline: not installed, ModuleNotFoundError).
            except (UnidentifiedImageError, OSError, SyntaxError, ImportError):
                problems.append(f"{image}: unreadable image (Pillow cannot identify or decode it)")
            if not label.is_file():
                problems.append(f"{image}: label file {label} is missing")
                continue
            found = _check_label(label, len(dataset.names))
            problems += found
            if not found:
                objects += sum(1 for line in label.read_text().splitlines() if line.strip())
        images = {lbl.stem for _, lbl in pairs}
        label_dir = label_path(pairs[0][0]).parent
        orphans = sorted(p for p in label_dir.glob("*.txt") if p.stem not in images)
        problems += [f"{p}: label file has no image" for p in orphans]
        counts[f"{split}_images"] = len(pairs)
        counts[f"{split}_objects"] = objects
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
    """
    for split, pairs in dataset.pairs.items():
        for kind in ("images", "labels"):
            (workdir / kind / split).mkdir(parents=True, exist_ok=True)
        for i, (image, label) in enumerate(pairs):
            stem = f"{i:06d}_{image.stem}"
            os.symlink(image.resolve(), workdir / "images" / split / f"{stem}{image.suffix}")
            os.symlink(label.resolve(), workdir / "labels" / split / f"{stem}.txt")
    data = {
        "path": str(workdir.resolve()),
        "train": "images/train",
        "val": "images/val",
        "names": dict(enumerate(dataset.names)),
    }
    path = workdir / "data.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path
