"""The built-in image dataset: face-skin patches with skin conditions, in YOLO format.

Skin-Twin-AI's detector knows ten conditions (CLASSES). Each is drawn as what makes it
recognisable to a dermatologist at patch scale: acne a raised red papule with a pale head,
blackheads a cluster of dark pores, dark spots a brown irregular macule, wrinkles a few
parallel creases, redness a diffuse erythema, and so on. Skin tone, texture and lighting
vary per image; conditions vary in size, shape, contrast and may overlap a little. Boxes
come from each lesion's own drawn mask, so they are tight and always inside the image.
Everything is a function of the seed: the same params give byte-identical files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import yaml

from vertiflow.errors import VertiflowError
from vertiflow.vision.labels import box_iou

CLASSES = (
    "Acne",
    "Blackheads",
    "Dark-Spots",
    "Dry-Skin",
    "Enlarged-Pores",
    "Eyebags",
    "Oily-Skin",
    "Skin-Redness",
    "Whiteheads",
    "Wrinkles",
)

# Skin tones from very light to deep (RGB), Fitzpatrick I-VI and between.
TONES = np.array(
    [
        [246, 218, 196],
        [234, 192, 160],
        [222, 172, 136],
        [198, 144, 106],
        [166, 112, 78],
        [128, 84, 56],
        [96, 62, 42],
    ],
    dtype=np.float32,
)


@dataclass(frozen=True)
class ImageConfig:
    seed: int = 7
    classes: list[str] = field(default_factory=lambda: list(CLASSES))
    train_images: int = 256
    val_images: int = 64
    image_size: int = 128
    max_objects: int = 4

    def __post_init__(self) -> None:
        unknown = [c for c in self.classes if c not in CLASSES]
        if unknown or not self.classes:
            raise VertiflowError(
                f"params.yaml: simulate_images.classes: {unknown or 'empty'} not among the "
                f"known conditions {', '.join(CLASSES)}."
            )
        if self.image_size < 64 or self.max_objects < 1 or self.train_images < 1:
            raise VertiflowError(
                "params.yaml: simulate_images needs image_size >= 64, max_objects >= 1 "
                "and train_images >= 1."
            )


def _skin(rng: np.random.Generator, size: int) -> np.ndarray:
    """A skin background: a tone, low-frequency mottling, fine grain and a light gradient."""
    tone = TONES[rng.integers(len(TONES))] * rng.uniform(0.94, 1.06, 3)
    mottle = cv2.GaussianBlur(rng.normal(0, 1, (size, size)).astype(np.float32), (0, 0), size / 10)
    mottle *= 6.0 / (mottle.std() + 1e-6)
    grain = rng.normal(0, 2.5, (size, size)).astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size - 0.5
    light = 1 + rng.uniform(0.05, 0.25) * (np.cos(angle) * xx + np.sin(angle) * yy)
    img = (tone[None, None, :] + (mottle + grain)[..., None]) * light[..., None]
    return img


def _blend(img: np.ndarray, mask: np.ndarray, colour: np.ndarray) -> None:
    img[:] = img * (1 - mask[..., None]) + colour[None, None, :] * mask[..., None]


def _shade(img: np.ndarray, mask: np.ndarray, factor: np.ndarray) -> None:
    """Multiply the skin under the mask (keeps its texture: pigment, not paint)."""
    img[:] = img * (1 + mask[..., None] * (factor[None, None, :] - 1))


def _ellipse_mask(size: int, centre, axes, angle: float, blur: float) -> np.ndarray:
    mask = np.zeros((size, size), np.float32)
    cv2.ellipse(
        mask,
        (int(centre[0]), int(centre[1])),
        (max(1, int(axes[0])), max(1, int(axes[1]))),
        angle,
        0,
        360,
        1.0,
        -1,
        cv2.LINE_AA,
    )
    return cv2.GaussianBlur(mask, (0, 0), blur) if blur > 0 else mask


def _draw(name: str, img: np.ndarray, rng: np.random.Generator, cx: float, cy: float, s: float):
    """Draw one condition centred at (cx, cy) with scale s (pixels); returns its mask."""
    size = img.shape[0]
    u = rng.uniform
    if name == "Acne":  # inflamed papule with a pale pustule head
        r = s * u(0.18, 0.3)
        halo = _ellipse_mask(size, (cx, cy), (r * 1.6, r * 1.4), u(0, 180), r * 0.35)
        _shade(img, halo, np.array([1.05, 0.72, 0.7]) * u(0.85, 1.0))
        head = _ellipse_mask(size, (cx, cy), (r * 0.45, r * 0.45), 0, r * 0.15)
        _blend(img, head * 0.85, np.array([250, 240, 205]))
        return halo
    if name == "Whiteheads":  # closed comedo: small pale dome, no inflammation
        r = s * u(0.12, 0.18)
        dome = _ellipse_mask(size, (cx, cy), (r, r * u(0.8, 1.0)), u(0, 180), r * 0.25)
        _blend(img, dome * 0.9, np.array([252, 246, 232]))
        return dome
    if name == "Blackheads":  # a congested patch of dark open pores
        r = s * u(0.2, 0.3)
        patch = _ellipse_mask(size, (cx, cy), (r, r * u(0.7, 1.0)), u(0, 180), r * 0.15)
        _shade(img, patch * 0.6, np.array([0.9, 0.86, 0.84]))
        dots = np.zeros((size, size), np.float32)
        for _ in range(rng.integers(5, 10)):
            rho, phi = r * 0.8 * np.sqrt(u(0, 1)), u(0, 2 * np.pi)
            px, py = cx + rho * np.cos(phi), cy + rho * np.sin(phi)
            dots = np.maximum(dots, _ellipse_mask(size, (px, py), (s * u(0.04, 0.07),) * 2, 0, 0.6))
        _blend(img, dots * 0.95, np.array([40, 30, 25]))
        return np.maximum(patch, dots)
    if name == "Dark-Spots":  # irregular brown macule: a few overlapping ellipses
        mask = np.zeros((size, size), np.float32)
        for _ in range(rng.integers(2, 4)):
            ox, oy = rng.normal(0, s * 0.12, 2)
            blob = _ellipse_mask(
                size, (cx + ox, cy + oy), (s * u(0.2, 0.35), s * u(0.15, 0.3)), u(0, 180), s * 0.05
            )
            mask = np.maximum(mask, blob)
        _shade(img, mask, np.array([0.62, 0.5, 0.42]) * u(0.8, 1.05))
        return mask
    if name == "Skin-Redness":  # diffuse erythema
        mask = _ellipse_mask(
            size, (cx, cy), (s * u(0.4, 0.6), s * u(0.3, 0.5)), u(0, 180), s * 0.12
        )
        _shade(img, mask * u(0.7, 1.0), np.array([1.1, 0.7, 0.72]))
        return mask
    if name == "Wrinkles":  # a few near-parallel curved creases
        mask = np.zeros((size, size), np.float32)
        angle = u(0, np.pi)
        direction = np.array([np.cos(angle), np.sin(angle)])
        normal = np.array([-direction[1], direction[0]])
        half, bend, gap = s * u(0.4, 0.6), u(-0.2, 0.2), s * u(0.1, 0.15)
        thickness = max(1, round(s * 0.035))
        lines = int(rng.integers(3, 5))
        for k in range(lines):
            t = np.linspace(-1, 1, 24)
            offset = (k - (lines - 1) / 2) * gap
            pts = (
                np.array([cx, cy])
                + np.outer(t * half * u(0.8, 1.0), direction)
                + np.outer(offset + bend * half * (t**2), normal)
            )
            cv2.polylines(mask, [pts.astype(np.int32)], False, 1.0, thickness, cv2.LINE_AA)
        mask = cv2.GaussianBlur(mask, (0, 0), 0.6)
        _shade(img, mask, np.array([0.5, 0.45, 0.43]))
        return mask
    if name == "Dry-Skin":  # pale flaky patch crossed by fine cracks
        patch = _ellipse_mask(size, (cx, cy), (s * u(0.35, 0.5), s * u(0.3, 0.45)), u(0, 180), 2)
        _blend(img, patch * 0.35, np.array([235, 225, 215]))
        cracks = np.zeros((size, size), np.float32)
        for _ in range(rng.integers(5, 9)):
            a, b = rng.normal([cx, cy], s * 0.22, (2, 2))
            cv2.line(cracks, tuple(a.astype(int)), tuple(b.astype(int)), 1.0, 1, cv2.LINE_AA)
        _blend(img, cracks * patch * 0.8, np.array([250, 245, 240]))
        return patch
    if name == "Enlarged-Pores":  # a regular field of dark pits
        patch = _ellipse_mask(size, (cx, cy), (s * 0.4, s * 0.35), u(0, 180), 1)
        pits = np.zeros((size, size), np.float32)
        step = max(3, int(s * 0.12))
        for y in range(int(cy - s * 0.4), int(cy + s * 0.4), step):
            for x in range(int(cx - s * 0.4), int(cx + s * 0.4), step):
                cv2.circle(pits, (x + int(rng.integers(-1, 2)), y), 1, 1.0, -1)
        _shade(img, pits * patch, np.array([0.6, 0.55, 0.55]))
        return patch
    if name == "Eyebags":  # a dark crescent with a soft lower edge
        outer = _ellipse_mask(size, (cx, cy), (s * 0.55, s * 0.3), 0, 2)
        inner = _ellipse_mask(size, (cx, cy - s * 0.15), (s * 0.5, s * 0.25), 0, 2)
        crescent = np.clip(outer - inner, 0, 1)
        _shade(img, crescent, np.array([0.7, 0.62, 0.68]))
        return crescent
    if name == "Oily-Skin":  # specular sheen: bright, soft highlight
        mask = _ellipse_mask(size, (cx, cy), (s * u(0.3, 0.45), s * u(0.2, 0.35)), u(0, 180), 3)
        _blend(img, mask * 0.55, np.array([255, 252, 245]))
        return mask
    raise AssertionError(name)


def _box(mask: np.ndarray, threshold: float = 0.3) -> tuple[int, int, int, int] | None:
    ys, xs = np.nonzero(mask > threshold)
    if len(xs) == 0:
        return None
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def render(rng: np.random.Generator, config: ImageConfig) -> tuple[np.ndarray, list[tuple]]:
    """One image (uint8 RGB) and its labels [(class_id, x_c, y_c, w, h) normalised]."""
    size = config.image_size
    img = _skin(rng, size)
    boxes: list[tuple[int, int, int, int]] = []
    labels = []
    for _ in range(int(rng.integers(1, config.max_objects + 1))):
        cls = int(rng.integers(len(config.classes)))
        for _attempt in range(10):  # some overlap is allowed, stacking is not
            s = size * rng.uniform(0.2, 0.42)
            cx, cy = rng.uniform(s * 0.3, size - s * 0.3, 2)
            probe = (int(cx - s / 2), int(cy - s / 2), int(cx + s / 2), int(cy + s / 2))
            if not boxes or box_iou(probe, boxes).max() < 0.25:
                break
        else:
            continue
        box = _box(_draw(config.classes[cls], img, rng, cx, cy, s))
        if box is None or box[2] - box[0] < 3 or box[3] - box[1] < 3:
            continue
        boxes.append(box)
        x0, y0, x1, y1 = box
        labels.append(
            (cls, (x0 + x1) / 2 / size, (y0 + y1) / 2 / size, (x1 - x0) / size, (y1 - y0) / size)
        )
    return np.clip(img, 0, 255).astype(np.uint8), labels


def write_dataset(out: Path, config: ImageConfig) -> dict[str, Any]:
    """Write images/{train,val}, labels/{train,val} and data.yaml; returns counts to log."""
    rng = np.random.default_rng(config.seed)
    counts = {name: 0 for name in config.classes}
    for split, n in (("train", config.train_images), ("val", config.val_images)):
        (out / "images" / split).mkdir(parents=True, exist_ok=True)
        (out / "labels" / split).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            img, labels = render(rng, config)
            stem = f"{split}_{i:05d}"
            cv2.imwrite(str(out / "images" / split / f"{stem}.png"), img[..., ::-1])
            lines = [f"{c} {x:.6f} {y:.6f} {w:.6f} {h:.6f}" for c, x, y, w, h in labels]
            (out / "labels" / split / f"{stem}.txt").write_text("\n".join(lines) + "\n")
            for c, *_ in labels:
                counts[config.classes[c]] += 1
    data = {"train": "images/train", "val": "images/val", "names": dict(enumerate(config.classes))}
    (out / "data.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return {
        "images": config.train_images + config.val_images,
        **{f"objects_{k}": v for k, v in counts.items()},
    }
