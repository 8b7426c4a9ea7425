"""A YOLO-format dataset: read its data YAML, check every image/label pair, stage it.

The layout is Ultralytics' own: a `data.yaml` with `names` and `train`/`val` image
folders, and each image's label at the same place with the last `images` folder replaced
by `labels` and a `.txt` suffix: one line per object, `class x_centre y_centre width
height`, normalised to the image. Paths in the YAML are resolved against the dataset
folder (`path:` first, when given), never the current directory, and must stay inside it:
the folder is what DVC versions, so it must be what trains. The common export layouts are
accepted: `images/train` + `labels/train`, `train/images` + `train/labels`, a `valid/`
split standing for `val`, `../train/images`-style entries (Ultralytics' own fallback:
the leading `../` is dropped when the path does not exist as written), a split given as a
`.txt` list of images, and labels beside their images where the path has no `images`
folder (CVAT's and Darknet's layout; Ultralytics' `img2label_paths` does the same).
A `test` split (Roboflow writes `test:`) is read and checked like the others when it is
there: the held-out split `train_yolo` scores the detector on.

Label rounding is tolerated: a box edge up to 0.01 past the image border is clipped to it
(in the staged copy; counted in the report), not refused. Ultralytics checks only that
x, y, w and h lie in [-0.01, 1.01] and clips any box at training; a box reaching further
out is refused here, because it is most often a corner-format label (x1 y1 x2 y2) read as
centre and size. Images are checked as Ultralytics' `check_image` checks them (decoded
in full, at least 10 px a side, a format it reads), so no image that validation passed is
dropped at training.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from PIL import Image, UnidentifiedImageError

from vertiflow.errors import DataError
from vertiflow.vision.app_classes import app_class_ids, app_class_warning, class_key
from vertiflow.vision.image_hashes import (
    NEAR_COPY_BITS,
    file_digest,
    hash_of,
    image_hash,
    nearest_hash,
)
from vertiflow.vision.labels import clipped_text, label_path, parse_label

# Ultralytics' IMG_FORMATS. HEIC/HEIF and DNG need plugins no offline install has: they
# are found, then named as unreadable, rather than left out of the dataset in silence.
IMAGE_SUFFIXES = {
    *(".avif", ".bmp", ".dng", ".heic", ".heif", ".jp2", ".jpeg", ".jpg", ".mpo", ".png"),
    *(".tif", ".tiff", ".webp"),
}
# Pillow's names of the formats it reads: a `.jpg` that is really a GIF is refused, as
# Ultralytics refuses it (after validation passed, it would be dropped from training).
IMAGE_FORMATS = {"AVIF", "BMP", "JPEG", "JPEG2000", "MPO", "PNG", "TIFF", "WEBP"}
MIN_SIDE = 10  # pixels; Ultralytics ignores smaller images
SPLITS = ("train", "val")  # required; `test` is read when data.yaml names one
MAX_PROBLEMS = 10
# Where exports put each split when data.yaml does not name it (first found wins).
CONVENTIONAL = {
    "train": ("images/train", "train/images"),
    "val": ("images/val", "val/images", "valid/images", "images/valid"),
}


@dataclass(frozen=True)
class Dataset:
    names: list[str]
    pairs: dict[str, list[tuple[Path, Path]]]  # split -> [(image, label)]: train, val[, test]
    source: Path | None = None  # the data YAML read
    listings: frozenset[Path] = frozenset()  # splits given as .txt lists of images
    no_test: str | None = None  # why there is no test split, when there is none
    test_named: bool = False  # data.yaml names a test split (there or not)
    # perceptual hashes of the images `check` decoded: each image is decoded once
    hashes: dict[Path, np.ndarray] = field(default_factory=dict, compare=False, repr=False)

    @cached_property
    def shared_images(self) -> list[tuple[Path, Path]]:
        """(image, image of an earlier split) pairs holding the same picture: a val image
        in train, a test image in train or val; one file in both splits, or the same bytes
        under two names (a photo uploaded twice, exports merged: Roboflow and Label Studio
        rename every file). The val metrics and the registry's gate, or the test figure,
        then judge the detector on images it learnt from or was chosen on."""
        seen: dict[str, Path] = {}
        shared = []
        for pairs in self.pairs.values():
            digests = [(image, file_digest(image)) for image, _ in pairs]
            shared += [(image, seen[d]) for image, d in digests if d in seen]
            for image, d in digests:
                seen.setdefault(d, image)
        return shared

    @property
    def in_both_splits(self) -> int:
        return len(self.shared_images)

    @cached_property
    def near_copies(self) -> list[tuple[Path, Path, int]]:
        """(image, image of an earlier split, hash distance) pairs of the same picture in
        other bytes: a photo re-saved at another JPEG quality or resized, which the content
        hash of `shared_images` misses. The nearest earlier image is named; exact copies
        are left to `shared_images`."""
        copied = {image for image, _ in self.shared_images}  # already named as copies
        found: list[tuple[Path, Path, int]] = []
        earlier: list[tuple[Path, np.ndarray]] = []
        for pairs in self.pairs.values():
            hashes = [
                (img, h)
                for img, _ in pairs
                if (h := self.hashes.get(img)) is not None or (h := image_hash(img)) is not None
            ]
            if earlier and hashes:
                distance, nearest = nearest_hash(
                    np.array([h for _, h in hashes]), np.array([h for _, h in earlier])
                )
                found += [
                    (image, earlier[j][0], int(d))
                    for (image, _), d, j in zip(hashes, distance, nearest, strict=True)
                    if d <= NEAR_COPY_BITS and image not in copied
                ]
            earlier += hashes
        return found

    @cached_property
    def shared_labels(self) -> list[tuple[Path, list[Path]]]:
        """(label, its images) for each label file of two or more images: one name with
        other suffixes (img.png beside img.jpg, as a format conversion that kept its
        originals leaves them). Ultralytics finds a label by the image's path less its
        suffix, so each trains with the same boxes, right for one picture at most."""
        images: dict[Path, set[Path]] = {}
        for pairs in self.pairs.values():
            for image, label in pairs:
                images.setdefault(label, set()).add(image)
        return [(label, sorted(found)) for label, found in sorted(images.items()) if len(found) > 1]

    @cached_property
    def misnamed_labels(self) -> list[Path]:
        """Files in the label folders ending in .txt in another case (`.TXT`, as some
        Windows tools write it): Ultralytics reads `.txt` labels only, so their images
        train as background, with no object."""
        folders = {label.parent for pairs in self.pairs.values() for _, label in pairs}
        return sorted(
            p
            for folder in folders
            if folder.is_dir()
            for p in folder.iterdir()
            if p.suffix.lower() == ".txt" and p.suffix != ".txt"
        )

    @cached_property
    def mixed_labels(self) -> list[tuple[Path, list[int], list[int]]]:
        """(label, box lines, outline lines) of label files holding both: box rows of 5
        values and outline rows of more than 6 (Ultralytics' test for an outline). Staged
        here as boxes, so this pipeline trains on them; Ultralytics itself (8.4) drops
        such an image as corrupt ("labels mix segment and detection rows"), and earlier
        versions read each box row as a two-point outline, a wrong box."""
        out = []
        labels = {label for pairs in self.pairs.values() for _, label in pairs}
        for label in sorted(labels):
            try:
                text = label.read_text(encoding="utf-8-sig")
            except (OSError, UnicodeDecodeError):  # none (background), or named by check
                continue
            rows = [(n, len(line.split())) for n, line in enumerate(text.splitlines(), 1)]
            boxes, outlines = [n for n, k in rows if k == 5], [n for n, k in rows if k > 6]
            if boxes and outlines:
                out.append((label, boxes, outlines))
        return out


def _names(data: dict[str, Any], source: Path) -> list[str]:
    """Class names; with only `nc`, Ultralytics' own `class_0`, `class_1`, ..."""
    names, nc = data.get("names"), data.get("nc")
    if isinstance(nc, str) and nc.strip().isdigit():  # `nc: '2'`, as Ultralytics reads it
        nc = int(nc)
    if names is None and isinstance(nc, int) and not isinstance(nc, bool) and nc > 0:
        return [f"class_{i}" for i in range(nc)]
    if isinstance(names, dict) and all(str(k).strip().isdigit() for k in names):
        names = {int(k): v for k, v in names.items()}  # `'0': acne` as well as `0: acne`
    if isinstance(names, dict) and sorted(names) == list(range(len(names))):
        names = [names[i] for i in range(len(names))]
    if not (isinstance(names, list) and names):
        raise DataError(
            f"{source}: 'names' must be a list of class names or a mapping 0..N-1 -> name; "
            f"found {names!r}."
        )
    if nc is not None and nc != len(names):
        raise DataError(f"{source}: 'nc' is {nc!r} but 'names' lists {len(names)} classes.")
    names = ["" if n is None else str(n) for n in names]
    _distinct_names(names, source)
    return names


def _distinct_names(names: list[str], source: Path) -> None:
    """A clear error for an empty class name, or one given to two ids (by `class_key`):
    everything keyed by name (per-class counts and metrics, the app's ids) merged them."""
    if empty := [i for i, n in enumerate(names) if not class_key(n)]:
        raise DataError(
            f"{source}: 'names' has an empty class name ({_ids(empty)}); name each class."
        )
    ids: dict[str, list[int]] = {}
    for i, name in enumerate(names):
        ids.setdefault(class_key(name), []).append(i)
    if repeated := [group for group in ids.values() if len(group) > 1]:
        shown = "; ".join(
            f"{', '.join(map(repr, dict.fromkeys(names[i] for i in group)))} ({_ids(group)})"
            for group in repeated
        )
        raise DataError(
            f"{source}: 'names' repeats class name(s): {shown} (compared ignoring case, "
            "spaces, hyphens and underscores). Per-class counts and metrics, and the app's "
            "ids, would merge those classes: give each its own name, or relabel one as the "
            "other and drop it from 'names'."
        )


def _ids(ids: list[int]) -> str:
    return f"id{'s' if len(ids) > 1 else ''} {', '.join(map(str, ids))}"


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


def _images_in(folder: Path) -> list[Path]:
    """Image files under a folder, hidden ones left out as Ultralytics' glob leaves them
    (macOS's `._photo.jpg` beside every photo copied from a Mac is no image)."""
    return [
        p
        for p in folder.rglob("*")
        if p.suffix.lower() in IMAGE_SUFFIXES
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    ]


def _listed_images(listing: Path, dataset_dir: Path) -> list[Path]:
    """A split given as a text file of image paths, one per line (Ultralytics' form),
    relative to the list's own folder (`./img.jpg` or `img.jpg`) or absolute."""
    images = []
    text = listing.read_text(encoding="utf-8-sig")
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        image = listing.parent / line.strip()
        where = f"{listing}, line {lineno}"
        if not image.is_file():
            raise DataError(
                f"{where}: image {line.strip()!r} not found at {image} (paths in an image "
                "list are read relative to the list's own folder; CVAT's YOLO 1.1 export "
                "writes them relative to Darknet's folder, as data/obj_train_data/...: drop "
                f"that leading 'data/', e.g. sed -i 's#^data/##' {listing})."
            )
        # The folder resolved, not the file: DVC may link a file into its cache.
        _inside(image.parent, dataset_dir, where, f"image {line.strip()!r}")
        images.append(image.parent.resolve() / image.name)
    return images


def _split_images(
    data: dict[str, Any],
    split: str,
    root: Path,
    dataset_dir: Path,
    source: Path,
    listings: set[Path] | None = None,
) -> list[Path]:
    """The images of one split: as data.yaml names them (folders or .txt lists), or where
    exports put them."""
    value = data.get(split)
    if value is None and split == "val":
        value = next((data[k] for k in ("validation", "valid") if data.get(k)), None)
    if value is None:
        found = [root / c for c in CONVENTIONAL[split] if (root / c).is_dir()]
        if not found:
            raise DataError(
                f"{source}: '{split}' must name a folder of images (none given, and none of "
                f"{', '.join(CONVENTIONAL[split])} exists under {root})."
            )
        return _images_in(_inside(found[0], dataset_dir, source, f"the {split} folder"))
    entries = value if isinstance(value, list) else [value]
    if not entries or not all(isinstance(e, str) for e in entries):
        raise DataError(f"{source}: '{split}' must name a folder of images (or a list of them).")
    images = []
    for entry in entries:
        path = root / entry
        if not path.exists() and entry.startswith("../"):
            path = root / entry[3:]  # Ultralytics' fallback for Roboflow-style exports
        path = _inside(path, dataset_dir, source, f"{split} ({entry!r})")
        if path.is_dir():
            found = _images_in(path)
            if not found:
                others = sorted({p.suffix.lower() for p in path.rglob("*.*") if p.is_file()})
                raise DataError(
                    f"{source}: {split} folder {path} holds no images (looked for "
                    f"{', '.join(sorted(IMAGE_SUFFIXES))}; found "
                    f"{', '.join(others) if others else 'no files'})."
                )
            images += found
        elif path.is_file() and path.suffix.lower() == ".txt":
            images += _listed_images(path, dataset_dir)
            if listings is not None:
                listings.add(path)
        else:
            raise DataError(
                f"{source}: {split} folder {path} ({entry!r}) does not exist (nor is it a "
                ".txt list of images)."
            )
    return images


def _data_yaml(dataset_dir: Path) -> Path:
    """The dataset's YAML: data.yaml, or the one YAML file at its top (`dataset.yaml`);
    a clear error for a YAML file given instead of its folder, or for an export that
    has none (CVAT's obj.names, Label Studio's classes.txt), with one to write."""
    if dataset_dir.is_file():
        raise DataError(
            f"images.dataset is the file {dataset_dir}; name the folder holding it "
            f"({dataset_dir.parent}): DVC versions the folder."
        )
    source = dataset_dir / "data.yaml"
    found = sorted([*dataset_dir.glob("*.yaml"), *dataset_dir.glob("*.yml")])
    if source.is_file() or not found:
        if not source.is_file():
            raise DataError(f"{source}: not found; {_write_a_data_yaml(dataset_dir)}")
        return source
    if len(found) > 1:
        raise DataError(
            f"{source}: not found, and {dataset_dir} holds {len(found)} YAML files "
            f"({', '.join(p.name for p in found)}); name the dataset's one data.yaml."
        )
    return found[0]


def _write_a_data_yaml(dataset_dir: Path) -> str:
    """What to do when a dataset has no YAML: the data.yaml to write, names filled in
    from a class list an export left (`obj.names`, `classes.txt`), splits from Darknet's
    `obj.data` (CVAT's YOLO 1.1), or Ultralytics' `autosplit` for an export with none
    (Label Studio's images/ + labels/)."""
    lists = [dataset_dir / n for n in ("obj.names", "classes.txt") if (dataset_dir / n).is_file()]
    if not lists:
        return "images.dataset must name a folder holding a YOLO data.yaml."
    names = [n.strip() for n in lists[0].read_text(encoding="utf-8-sig").splitlines() if n.strip()]
    intro = f"{dataset_dir} looks like an export without one (it has {lists[0].name}). "
    yaml_file = dataset_dir / "data.yaml"
    splits = _darknet_splits(dataset_dir)
    if {"train", "val"} <= splits.keys():
        darknet = [str(p) for p in splits.values() if p.read_text().startswith("data/")]
        sed = (
            "\nand drop the leading 'data/' (Darknet's folder) from their image paths, which "
            f"are read relative to the dataset folder:\n  sed -i 's#^data/##' {' '.join(darknet)}"
        )
        return (
            f"{intro}Write {yaml_file} with its classes and its image lists:\n"
            f"  names: {names}\n  train: {splits['train'].name}\n  val: {splits['val'].name}"
            + (sed if darknet else "")
        )
    folder = next(
        (f for f in (dataset_dir / "images", dataset_dir / "obj_train_data") if f.is_dir()), None
    )
    if folder is None:
        return (
            f"{intro}Write {yaml_file} naming the classes and two different image splits "
            "(folders, or .txt lists of images relative to the dataset folder):\n"
            f"  names: {names}\n  train: images/train\n  val: images/val"
        )
    return (
        f"{intro}It has no train/val split: Ultralytics' autosplit writes one, as "
        f"autosplit_train.txt and autosplit_val.txt beside {folder.name}/ (a fifth of the "
        "images kept out of training):\n"
        '  python -c "from ultralytics.data.split import autosplit; '
        f"autosplit('{folder}', weights=(0.8, 0.2, 0.0))\"\n"
        f"then write {yaml_file}:\n  names: {names}\n"
        "  train: autosplit_train.txt\n  val: autosplit_val.txt"
    )


def _darknet_splits(dataset_dir: Path) -> dict[str, Path]:
    """The image lists of an export, keyed train/val: those Darknet's obj.data names
    (`train = data/train.txt`, `valid = data/Validation.txt`), else train.txt, val.txt
    (valid.txt, validation.txt) in the dataset folder."""
    obj = dataset_dir / "obj.data"
    if obj.is_file():
        lines = obj.read_text(encoding="utf-8-sig", errors="replace").splitlines()
        entries = [
            (key.strip(), Path(value.strip()).name)
            for key, _, value in (line.partition("=") for line in lines)
        ]
    else:
        entries = [(p.stem.lower(), p.name) for p in dataset_dir.glob("*.txt")]
    splits = {"train": "train", "valid": "val", "val": "val", "validation": "val"}
    return {
        splits[key]: dataset_dir / name
        for key, name in entries
        if key in splits and (dataset_dir / name).is_file()
    }


def read(dataset_dir: Path) -> Dataset:
    """Find every image and its label file; the YAML's structure errors come first."""
    source = _data_yaml(dataset_dir)
    try:
        data = yaml.safe_load(source.read_text(encoding="utf-8-sig"))
    except yaml.YAMLError as exc:
        raise DataError(f"{source}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise DataError(f"{source}: expected a mapping with names, train and val.")
    names = _names(data, source)
    root = _inside(dataset_dir / str(data.get("path") or "."), dataset_dir, source, "'path:'")
    home = dataset_dir.resolve()
    pairs, listings = {}, set()
    for split in SPLITS:
        images = sorted(set(_split_images(data, split, root, dataset_dir, source, listings)))
        if not images:
            raise DataError(f"{source}: {split} ({data.get(split)!r}) lists no images.")
        pairs[split] = [(img, label_path(img, home)) for img in images]
    no_test = _no_test(data, root, source)
    if no_test is None:
        images = sorted(set(_split_images(data, "test", root, dataset_dir, source, listings)))
        if not images:  # an empty list of images (an empty folder is no test split)
            raise DataError(f"{source}: test ({data.get('test')!r}) lists no images.")
        pairs["test"] = [(img, label_path(img, home)) for img in images]
    return Dataset(names, pairs, source, frozenset(listings), no_test, bool(data.get("test")))


def _no_test(data: dict[str, Any], root: Path, source: Path) -> str | None:
    """Why the dataset has no test split, or None when it has one to read.

    Roboflow writes `test: ../test/images` into every data.yaml, also for a version
    generated with no test images (no folder then): that is no test split, said, not an
    error; Ultralytics too reads `test` only when asked to evaluate on it."""
    value = data.get("test")
    if not value:
        found = [c for c in ("test/images", "images/test") if (root / c).is_dir()]
        hint = f" ({found[0]} exists: add 'test: {found[0]}' to use it)" if found else ""
        return f"{source} names no test split{hint}"
    entries = value if isinstance(value, list) else [value]
    for entry in entries:
        if not isinstance(entry, str):
            return None  # _split_images names the wrong type
        path = root / entry
        if not path.exists() and entry.startswith("../"):
            path = root / entry[3:]
        if not path.exists():
            return f"{source}: test ({entry!r}) does not exist ({path}), so there is no test split"
        if path.is_dir() and not any(path.iterdir()):
            return f"{source}: test folder {path} ({entry!r}) is empty, so there is no test split"
    return None


def image_problem(image: Path, hashes: dict[Path, np.ndarray] | None = None) -> str | None:
    """Why Ultralytics' `check_image` would drop this image from training, or None; the
    decoded image's perceptual hash goes into `hashes` (decoding is most of the time).

    `verify()` alone reads only the headers: a JPEG cut short in a copy passed it, was
    dropped by Ultralytics at training, and crashed the sample plot after it."""
    if image.suffix.lower() in {".heic", ".heif", ".dng"}:
        return (
            f"{image}: a {image.suffix[1:].upper()} photo; reading it needs a plugin (pi-heif, "
            "rawpy) that this offline install does not have: convert it to JPEG"
        )
    try:
        with Image.open(image) as im:
            im.verify()
        with Image.open(image) as im:  # verify() leaves the image unusable: open it again
            kind, size = im.format, im.size
            im.load()
            if hashes is not None:
                hashes[image] = hash_of(im)
    # Once Ultralytics is imported, Image.open answers a file Pillow cannot identify
    # by looking for the pi-heif plugin (offline: not installed, ModuleNotFoundError).
    except (
        UnidentifiedImageError,
        OSError,
        SyntaxError,
        ImportError,
        ValueError,
        Image.DecompressionBombError,
    ) as exc:
        return f"{image}: unreadable image (Pillow cannot identify or decode it: {exc})"
    if kind not in IMAGE_FORMATS:
        return (
            f"{image}: a {kind} image; Ultralytics trains on "
            f"{', '.join(sorted(IMAGE_FORMATS))} only (convert it, e.g. to PNG)"
        )
    if min(size) < MIN_SIDE:
        return (
            f"{image}: {size[0]} x {size[1]} px; Ultralytics drops images under "
            f"{MIN_SIDE} px a side from training"
        )
    return None


def check(dataset: Dataset) -> dict[str, Any]:
    """Every image readable, every label present and sane; raises DataError listing them."""
    problems: list[str] = []
    counts: dict[str, Any] = {"classes": len(dataset.names)}
    clipped = polygons = duplicates = 0
    # Splits may share a label folder (a flat export split by image lists): a label is
    # without image only when no split has its image; the lists themselves are no labels.
    every_label = {lbl for pairs in dataset.pairs.values() for _, lbl in pairs}
    not_labels = set(dataset.listings) | every_label
    for split, pairs in dataset.pairs.items():
        objects = background = 0
        per_class = dict.fromkeys(dataset.names, 0)
        before = len(problems)
        for image, label in pairs:
            if problem := image_problem(image, dataset.hashes):
                problems.append(problem)
            if not label.is_file():  # Ultralytics' rule: no label file, no object
                background += 1
                continue
            parsed = parse_label(label, len(dataset.names))
            problems += parsed.problems
            if not parsed.problems:
                objects += len(parsed.boxes)
                for box in parsed.boxes:
                    per_class[dataset.names[box[0]]] += 1
                background += int(not parsed.boxes)
                clipped += parsed.clipped
                polygons += parsed.polygons
                duplicates += parsed.duplicates
        # A label file with no image is ignored, as Ultralytics ignores it (an export often
        # keeps the labels of images removed by hand); counted, so a wrong suffix shows.
        label_dirs = {lbl.parent for _, lbl in pairs}
        orphans = {p for d in label_dirs for p in d.glob("*.txt") if p not in not_labels}
        not_labels |= orphans  # counted once, in the first split
        if not objects and len(problems) == before:  # this split's labels parsed, yet empty
            problems.append(
                f"the {split} split has no labelled object in its {len(pairs)} image(s): "
                f"expected label files such as {pairs[0][1]} (the image's path with its "
                "last 'images' folder replaced by 'labels', or beside it, and .txt)"
            )
        counts[f"{split}_images"] = len(pairs)
        counts[f"{split}_objects"] = objects
        counts[f"{split}_background_images"] = background  # no label file, or an empty one
        counts[f"{split}_labels_without_image"] = len(orphans)
        counts[f"{split}_objects_per_class"] = per_class
    counts["boxes_clipped"] = clipped  # within EDGE_TOLERANCE of the border: rounding
    counts["outlines_as_boxes"] = polygons  # segmentation outlines, trained as their boxes
    counts["duplicate_labels_dropped"] = duplicates  # as Ultralytics drops them
    if "test" not in dataset.pairs:
        counts["test_images"] = 0  # why: dataset.no_test
    counts["images_in_both_splits"] = dataset.in_both_splits  # later split's image in an earlier
    counts["near_copies_across_splits"] = len(dataset.near_copies)  # re-encoded, resized
    counts["labels_mixing_outlines_and_boxes"] = len(dataset.mixed_labels)
    counts["labels_shared_by_images"] = len(dataset.shared_labels)  # img.png and img.jpg
    counts["labels_with_upper_case_suffix"] = len(dataset.misnamed_labels)  # .TXT: unread
    # each class's id in the app's answers (app_class_ids, which warnings explains)
    ids = app_class_ids(dict(enumerate(dataset.names)))
    counts["app_class_ids"] = {name: ids[i] for i, name in enumerate(dataset.names)}
    if problems:
        shown = "\n  - ".join(problems[:MAX_PROBLEMS])
        more = (
            f"\n  ... and {len(problems) - MAX_PROBLEMS} more"
            if len(problems) > MAX_PROBLEMS
            else ""
        )
        raise DataError(f"the image dataset has {len(problems)} problem(s):\n  - {shown}{more}")
    return counts


def warnings(dataset: Dataset, counts: dict[str, Any]) -> list[str]:
    """What passes validation, as Ultralytics trains it, yet makes the figures mean less
    than they seem: val or test images the model learnt from (copies, re-saved copies),
    classes it cannot learn or that no metric measures (Ultralytics averages mAP over the
    classes present in val only), labels Ultralytics itself would not train on, and class
    names the app would read as other conditions."""
    out, test = [], "test" in dataset.pairs
    if shared := dataset.shared_images:
        shown = "; ".join(f"{later} is {earlier}" for later, earlier in shared[:3])
        which = (
            "val or test image(s) are also in train or val"
            if test
            else "val image(s) are also in train"
        )
        out.append(
            f"{len(shared)} {which}, as the same file or a copy under another name "
            f"({shown}{'; ...' if len(shared) > 3 else ''}); the validation metrics and the "
            f"registry's gate{' (or the test figure)' if test else ''} then judge the "
            "detector on images it learnt from: keep each photo in one split."
        )
    if near := dataset.near_copies:
        shown = "; ".join(
            f"{later} looks like {earlier} ({d} bits)" for later, earlier, d in near[:5]
        )
        out.append(
            f"{len(near)} image(s) look like a re-saved or resized copy of an image in an "
            f"earlier split (perceptual hashes at most {NEAR_COPY_BITS} of 63 bits apart; "
            f"{shown}{'; ...' if len(near) > 5 else ''}): look at each pair, and keep a photo "
            "and its copies in one split, or the metrics judge the detector on images it "
            "learnt from."
        )
    if mixed := dataset.mixed_labels:
        shown = "; ".join(
            f"{label} (box lines {_lines(boxes)}, outline lines {_lines(outlines)})"
            for label, boxes, outlines in mixed[:5]
        )
        out.append(
            f"{len(mixed)} label file(s) mix box rows (class x y w h) and outline rows "
            f"(class x1 y1 x2 y2 ...): {shown}{'; ...' if len(mixed) > 5 else ''}. This "
            "pipeline trains each outline as its box, but Ultralytics given this folder "
            "itself drops such an image as corrupt ('labels mix segment and detection "
            "rows'; older releases read each box row as a two-point outline, a wrong box): "
            "write each file's rows in one form to train on it elsewhere."
        )
    if shared := dataset.shared_labels:
        shown = "; ".join(
            f"{label} for {' and '.join(image.name for image in images)}"
            for label, images in shared[:5]
        )
        out.append(
            f"{len(shared)} label file(s) serve two or more images of one name with other "
            f"suffixes ({shown}{'; ...' if len(shared) > 5 else ''}): Ultralytics finds a "
            "label by the image's name less its suffix, so each of them trains with the same "
            "boxes, right for one picture at most. Keep one image per name (delete a format "
            "conversion's leftovers), or rename the others and label them."
        )
    if misnamed := dataset.misnamed_labels:
        suffixes = ", ".join(sorted({label.suffix for label in misnamed}))
        shown = ", ".join(map(str, misnamed[:5])) + (", ..." if len(misnamed) > 5 else "")
        out.append(
            f"{len(misnamed)} label file(s) end in {suffixes} instead of .txt ({shown}): "
            "Ultralytics reads '.txt' labels only, so their images train as background, "
            "with no object: rename them to .txt."
        )
    if unknown := app_class_warning(dataset.names):
        out.append(unknown)
    if dataset.no_test and dataset.test_named:  # named, yet not there
        out.append(f"{dataset.no_test}: the detector is measured on val only.")
    train, val = counts["train_objects_per_class"], counts["val_objects_per_class"]
    if unlearnt := [name for name, n in train.items() if not n]:
        out.append(
            f"no labelled object of {', '.join(map(repr, unlearnt))} in train: the detector "
            "cannot learn it (label some, or drop it from 'names' and renumber the labels)."
        )
    if unmeasured := [name for name, n in val.items() if not n and train[name]]:
        out.append(
            f"no labelled object of {', '.join(map(repr, unmeasured))} in val: its detection "
            "is never measured (mAP, precision and recall average over the other classes, "
            "and the registry's gate ignores it)."
        )
    return out


def _lines(numbers: list[int], shown: int = 5) -> str:
    return ", ".join(map(str, numbers[:shown])) + (", ..." if len(numbers) > shown else "")


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
        **({"test": "images/test"} if "test" in dataset.pairs else {}),
        "names": dict(enumerate(dataset.names)),
    }
    path = workdir / "data.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path
