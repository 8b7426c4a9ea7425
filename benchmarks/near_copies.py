"""validate_images' near-copy threshold (image_hashes.NEAR_COPY_BITS), measured: how far the
perceptual hash of a photo moves when it is re-saved (JPEG quality 50-95) or resized
(0.5-2x), how close different pictures come (the 320 built-in images; 2,000 distinct
photo-like pictures: a lit gradient, 4-20 shapes, blur, sensor noise), and what the check
costs on a 2,000-image dataset. Hash distances are even (every hash has 31 of 63 bits set).
"""

from __future__ import annotations

import io
import shutil
import time

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from common import WORK, write
from vertiflow.vision import image_hashes, yolo_data
from vertiflow.vision.skin import ImageConfig, write_dataset

THRESHOLDS = (2, 4, 6, 8, 10, 12)
JPEG = [(f"jpeg q{q}", 1.0, "JPEG", q) for q in range(50, 100, 5)]
RESIZE = [
    (f"{s}x {fmt}", s, fmt, 75)
    for s in (0.5, 0.625, 0.75, 1.25, 1.5, 2.0)
    for fmt in ("PNG", "JPEG")
]
BOTH = [("0.5x jpeg q50", 0.5, "JPEG", 50), ("2x jpeg q50", 2.0, "JPEG", 50)]


def photo(rng) -> Image.Image:
    w, h = int(rng.integers(240, 800)), int(rng.integers(240, 640))
    c0, c1 = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    horizontal = rng.random() < 0.5
    t = np.linspace(0, 1, w)[None, :, None] if horizontal else np.linspace(0, 1, h)[:, None, None]
    im = Image.fromarray(((c0 * (1 - t) + c1 * t) * np.ones((h, w, 3))).astype(np.uint8))
    draw = ImageDraw.Draw(im, "RGBA")
    for _ in range(int(rng.integers(4, 20))):
        fill = tuple(int(v) for v in rng.integers(0, 256, 4))
        x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
        box = [x0, y0, x0 + int(rng.integers(10, w // 2)), y0 + int(rng.integers(10, h // 2))]
        kind = rng.integers(3)
        if kind == 0:
            draw.ellipse(box, fill=fill)
        elif kind == 1:
            draw.rectangle(box, fill=fill)
        else:
            draw.polygon(
                [tuple(int(v) for v in rng.integers(0, [w, h])) for _ in range(5)], fill=fill
            )
    im = im.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.5, 3))))
    pixels = np.asarray(im, float) + rng.normal(0, rng.uniform(2, 12), (h, w, 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return image_hashes.POPCOUNT[a[:, None, :] ^ b[None, :, :]].sum(axis=2)


def pairs_within(hashes: np.ndarray) -> dict[str, int]:
    d = distances(hashes, hashes)[np.triu_indices(len(hashes), 1)]
    return {"pairs": int(d.size), "nearest": int(d.min())} | {
        f"within_{t}": int((d <= t).sum()) for t in THRESHOLDS
    }


def main() -> None:
    work = WORK / "near_copies"
    shutil.rmtree(work, ignore_errors=True)
    write_dataset(work / "builtin", ImageConfig())  # the default: 256 + 64 images, seed 7
    builtin = [
        p for s in ("train", "val") for p in sorted((work / "builtin/images" / s).glob("*.png"))
    ]
    rng = np.random.default_rng(1)
    big = work / "photos"
    for i in range(2000):
        split = "train" if i < 1600 else "val"
        for kind in ("images", "labels"):
            (big / kind / split).mkdir(parents=True, exist_ok=True)
        photo(rng).save(big / "images" / split / f"p{i:04d}.jpg", quality=int(rng.integers(75, 96)))
        (big / "labels" / split / f"p{i:04d}.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    (big / "data.yaml").write_text("names: [a]\ntrain: images/train\nval: images/val\n")
    photos = sorted((big / "images").rglob("*.jpg"))

    hb = np.array([image_hashes.image_hash(p) for p in builtin])
    hp = np.array([image_hashes.image_hash(p) for p in photos])
    cross = distances(hb[256:], hb[:256]).ravel()
    different = {
        "builtin_320": pairs_within(hb),
        "builtin_val_vs_train": {"pairs": int(cross.size), "nearest": int(cross.min())}
        | {f"within_{t}": int((cross <= t).sum()) for t in THRESHOLDS},
        "photos_2000": pairs_within(hp),
    }

    moved: dict[str, list[int]] = {}
    sources = [*builtin, *photos[:300]]
    for path in sources:
        h0 = image_hashes.image_hash(path)[None]
        with Image.open(path) as im:
            im = im.convert("RGB")
        for name, scale, fmt, quality in [*JPEG, *RESIZE, *BOTH]:
            size = (round(im.width * scale), round(im.height * scale))
            copy = im if scale == 1 else im.resize(size, Image.Resampling.LANCZOS)
            buf = io.BytesIO()
            copy.save(buf, fmt, **({"quality": quality} if fmt == "JPEG" else {}))
            buf.seek(0)
            moved.setdefault(name, []).append(
                int(distances(h0, image_hashes.image_hash(buf)[None])[0, 0])
            )
    every = np.array(list(moved.values()))
    copies = {
        "sources": f"{len(builtin)} built-in + 300 photo-like",
        "copies": int(every.size),
        "caught_within": {t: int((every <= t).sum()) for t in THRESHOLDS},
        "largest_move": {name: max(v) for name, v in moved.items()},
    }

    seconds = []
    for _ in range(2):
        start = time.perf_counter()
        dataset = yolo_data.read(big)
        counts = yolo_data.check(dataset)
        yolo_data.warnings(dataset, counts)
        seconds.append(round(time.perf_counter() - start, 2))
    start = time.perf_counter()
    found = yolo_data.read(big).near_copies  # the hashes alone, each image decoded for them
    hash_only = round(time.perf_counter() - start, 2)
    path = write(
        "near_copies",
        {
            "threshold_bits": image_hashes.NEAR_COPY_BITS,
            "different_pictures": different,
            "re_saved_copies": copies,
            "validate_2000_jpeg_images_seconds": seconds,
            "near_copies_alone_seconds": hash_only,
            "near_copies_found_in_2000": [counts["near_copies_across_splits"], len(found)],
        },
    )
    print(path.read_text())


if __name__ == "__main__":
    main()
