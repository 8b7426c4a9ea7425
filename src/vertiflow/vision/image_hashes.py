"""Image fingerprints: a file's bytes (exact copies) and a perceptual hash (near-copies:
the same picture re-saved or resized), so that a validation image that is a training
image in disguise is found."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from PIL import Image

# Perceptual hash: a 63-bit DCT hash (pHash) of a 32 x 32 grayscale thumbnail, each low
# frequency above or below their median. Two images at most NEAR_COPY_BITS apart are
# near-copies. Measured (benchmarks/near_copies.py, results/near_copies.json): re-saving
# as JPEG at quality 50-95, or resizing 0.5-2x (as PNG or JPEG), moved a hash at most 8
# bits (320 built-in and 300 photo-like sources, 14,880 copies; only a copy both halved
# and saved at quality 50 went further, up to 12), while no two different pictures came
# within 8: the 320 built-in images (51,040 pairs, nearest 10 apart) and 2,000 photo-like
# ones (1,999,000 pairs, nearest 10). Distances are even (every hash has 31 bits set).
HASH_SIDE = 32
NEAR_COPY_BITS = 8
POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def nearest_hash(a: np.ndarray, b: np.ndarray, rows: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """For each hash in a (n, 8 bytes), the Hamming distance to its nearest in b (m, 8)
    and that one's index; a few rows at a time, so memory stays at rows x m x 8 bytes."""
    distance, nearest = np.empty(len(a), int), np.empty(len(a), int)
    for start in range(0, len(a), rows):
        d = POPCOUNT[a[start : start + rows, None, :] ^ b[None, :, :]].sum(axis=2, dtype=int)
        nearest[start : start + rows] = d.argmin(axis=1)
        distance[start : start + rows] = d.min(axis=1)
    return distance, nearest


def _dct_matrix(n: int) -> np.ndarray:
    k, i = np.arange(n)[:, None], np.arange(n)[None, :]
    m = np.cos(np.pi * (2 * i + 1) * k / (2 * n))
    m[0] /= np.sqrt(2)
    return m


_DCT = _dct_matrix(HASH_SIDE)


def image_hash(image: Path) -> np.ndarray | None:
    """The image's perceptual hash (8 bytes), or None for an image Pillow cannot read
    (named by `image_problem`, which keeps the hash of every image it decodes)."""
    try:
        with Image.open(image) as im:
            return hash_of(im)
    except (OSError, SyntaxError, ImportError, ValueError, Image.DecompressionBombError):
        return None


def hash_of(im: Image.Image) -> np.ndarray:
    gray = _gray(im).resize((HASH_SIDE, HASH_SIDE), Image.Resampling.BOX)
    low = (_DCT @ np.asarray(gray, float) @ _DCT.T)[:8, :8].ravel()[1:]  # no DC term
    return np.packbits(np.append(low > np.median(low), False))


def _gray(im: Image.Image) -> Image.Image:
    """The image as 8-bit grayscale. Pillow's convert("L") clips 16-bit, 32-bit integer
    and float pixels at 255 instead of scaling them: every 16-bit PNG came out white and
    hashed alike, so every val image was a "near copy". 16-bit pixels are scaled from
    their full range, 0-65535 to 0-255 (OpenCV, reading images for Ultralytics, scales
    them so too); 32-bit and float ones, which have no fixed white, from their own range
    (the hash ignores brightness and contrast: it compares DCT terms with their median,
    the mean left out)."""
    if im.mode.startswith("I;16"):
        return Image.fromarray(np.rint(np.asarray(im, float) / 257).astype(np.uint8))
    if im.mode in ("I", "F"):
        pixels = np.nan_to_num(np.asarray(im, float), nan=0, posinf=0, neginf=0)
        pixels -= pixels.min()
        return Image.fromarray(np.rint(pixels * 255 / (pixels.max() or 1)).astype(np.uint8))
    return im.convert("L")


def file_digest(image: Path) -> str:
    """The file's content hash: copies under other names are the same image."""
    with image.open("rb") as f:
        return hashlib.file_digest(f, "md5").hexdigest()
