"""Real-photo YOLO exports: a test split (Roboflow's `test:`), photos re-saved into another
split, and label files mixing outlines and boxes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from PIL import Image

from vertiflow.errors import DataError
from vertiflow.vision import image_hashes, yolo_data
from vertiflow.vision.skin import ImageConfig, write_dataset

TINY = ImageConfig(
    seed=5, classes=["Acne", "Wrinkles"], train_images=6, val_images=3, image_size=96
)


@pytest.fixture
def dataset(tmp_path) -> Path:
    write_dataset(tmp_path / "d", TINY)
    return tmp_path / "d"


def _roboflow(d: Path, test: int = 2) -> Path:
    """Roboflow's layout: train/, valid/, test/ (the last `test` train images moved
    there), each with images/ and labels/, and its data.yaml's `../` paths."""
    rf = d.parent / "roboflow"
    for split, source in (("train", "train"), ("valid", "val")):
        for kind in ("images", "labels"):
            shutil.copytree(d / kind / source, rf / split / kind)
    for kind in ("images", "labels"):
        (rf / "test" / kind).mkdir(parents=True)
    for image in sorted((rf / "train" / "images").glob("*.png"))[-test:]:
        image.rename(rf / "test" / "images" / image.name)
        label = rf / "train" / "labels" / f"{image.stem}.txt"
        label.rename(rf / "test" / "labels" / label.name)
    (rf / "data.yaml").write_text(
        "train: ../train/images\nval: ../valid/images\ntest: ../test/images\n"
        "nc: 2\nnames: ['Acne', 'Wrinkles']\n"
    )
    return rf


def test_a_test_split_is_read_checked_and_staged_like_the_others(dataset, tmp_path):
    """Roboflow writes `test:` in data.yaml; the split was never read, so a broken test
    label passed validation, and the only figure was val's, the split best.pt is chosen on."""
    rf = _roboflow(dataset)
    read = yolo_data.read(rf)
    assert [len(read.pairs[s]) for s in ("train", "val", "test")] == [4, 3, 2]
    counts = yolo_data.check(read)
    assert counts["test_images"] == 2 and counts["test_objects"] > 0
    staged = yaml.safe_load(yolo_data.stage(read, tmp_path / "staged").read_text())
    assert staged["test"] == "images/test"
    assert len(list((tmp_path / "staged" / "images" / "test").iterdir())) == 2
    victim = sorted((rf / "test" / "labels").glob("*.txt"))[0]
    victim.write_text("0 1.5 0.5 0.2 0.2\n")
    with pytest.raises(DataError, match=rf"{victim}, line 1: box .* reaches outside"):
        yolo_data.check(yolo_data.read(rf))


def test_a_test_image_copied_from_train_or_val_is_counted_and_named(dataset):
    rf = _roboflow(dataset)
    image = sorted((rf / "valid" / "images").glob("*.png"))[0]
    copy = rf / "test" / "images" / f"IMG_0001_jpg.rf.0a1b2c{image.suffix}"
    shutil.copy(image, copy)
    read = yolo_data.read(rf)
    counts = yolo_data.check(read)
    assert counts["images_in_both_splits"] == 1
    (said,) = [w for w in yolo_data.warnings(read, counts) if "also in train or val" in w]
    assert f"{copy.resolve()} is {image.resolve()}" in said, said


def test_a_test_split_named_but_not_exported_is_no_test_split_and_said(dataset):
    """Roboflow names `test: ../test/images` also in a version generated without test
    images: no folder, which Ultralytics ignores unless asked to test; so do we, aloud."""
    rf = _roboflow(dataset)
    shutil.rmtree(rf / "test")
    read = yolo_data.read(rf)
    assert "test" not in read.pairs
    counts = yolo_data.check(read)
    assert counts["test_images"] == 0 and "test ('../test/images') does not exist" in read.no_test
    assert any("measured on val only" in w for w in yolo_data.warnings(read, counts))


def test_no_test_split_is_said_not_invented(dataset):
    read = yolo_data.read(dataset)
    counts = yolo_data.check(read)
    assert "test" not in read.pairs and counts["test_images"] == 0
    assert read.no_test.endswith("names no test split")
    assert not any("test" in w for w in yolo_data.warnings(read, counts))


def _resave(image: Path, to: Path, scale: float = 1.0, quality: int | None = None) -> Path:
    with Image.open(image) as im:
        im = im.convert("RGB")
        if scale != 1:
            im = im.resize((round(im.width * scale), round(im.height * scale)))
        im.save(to, quality=quality) if quality else im.save(to)
    return to


@pytest.mark.parametrize(
    ("scale", "quality", "suffix"),
    [(1, 50, ".jpg"), (1, 95, ".jpg"), (0.5, None, ".png"), (2, 75, ".jpg")],
    ids=["jpeg50", "jpeg95", "half-size", "double-size-jpeg"],
)
def test_a_train_photo_resaved_into_val_is_flagged_with_the_pair_named(
    dataset, scale, quality, suffix
):
    """Exact copies were caught by their md5; the same photo re-saved (another JPEG
    quality, another size) has other bytes and passed unnoticed into val."""
    assert yolo_data.check(yolo_data.read(dataset))["near_copies_across_splits"] == 0
    image, label = yolo_data.read(dataset).pairs["train"][1]
    copy = _resave(image, dataset / "images" / "val" / f"resaved{suffix}", scale, quality)
    shutil.copy(label, dataset / "labels" / "val" / "resaved.txt")
    read = yolo_data.read(dataset)
    counts = yolo_data.check(read)  # a warning, not a refusal
    assert counts["near_copies_across_splits"] == 1 and counts["images_in_both_splits"] == 0
    (said,) = [w for w in yolo_data.warnings(read, counts) if "re-saved or resized" in w]
    assert f"{copy.resolve()} looks like {image}" in said, said


def _photo(rng) -> Image.Image:
    """A photo-like picture: a lit gradient, a few shapes, blur and sensor noise."""
    import numpy as np
    from PIL import ImageDraw, ImageFilter

    w, h = int(rng.integers(160, 320)), int(rng.integers(120, 240))
    ramp = np.linspace(rng.integers(0, 256, 3), rng.integers(0, 256, 3), w)
    im = Image.fromarray((ramp[None] * np.ones((h, 1, 1))).astype("uint8"))
    draw = ImageDraw.Draw(im, "RGBA")
    for _ in range(int(rng.integers(4, 12))):
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        box = [x, y, x + int(rng.integers(10, w // 2)), y + int(rng.integers(10, h // 2))]
        fill = tuple(int(v) for v in rng.integers(0, 256, 4))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=fill)
    pixels = np.asarray(im.filter(ImageFilter.GaussianBlur(1.0)), float)
    return Image.fromarray(np.clip(pixels + rng.normal(0, 6, pixels.shape), 0, 255).astype("uint8"))


def test_distinct_photos_are_not_flagged(tmp_path):
    """Different pictures are far apart (benchmarks/near_copies.py: none of 1,999,000
    pairs of such pictures within the threshold): no pair named."""
    import numpy as np

    rng = np.random.default_rng(0)
    d = tmp_path / "d"
    for split, n in (("train", 48), ("val", 16)):
        (d / "images" / split).mkdir(parents=True)
        (d / "labels" / split).mkdir(parents=True)
        for i in range(n):
            _photo(rng).save(d / "images" / split / f"{i}.jpg", quality=85)
            (d / "labels" / split / f"{i}.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    (d / "data.yaml").write_text("names: [a]\ntrain: images/train\nval: images/val\n")
    read = yolo_data.read(d)
    assert yolo_data.check(read)["near_copies_across_splits"] == 0


def test_labels_mixing_outlines_and_boxes_are_named_with_their_lines(dataset, tmp_path):
    """Ultralytics drops an image whose label file mixes box rows and outline rows, as
    corrupt; validation passed it without a word. Here it trains (staged as boxes): the
    file is named, with its lines, as a warning."""
    from vertiflow.vision.yolo import ultralytics

    ultralytics()  # its settings in the checkout, as the stages have them
    from ultralytics.data.utils import verify_image_label

    image, label = yolo_data.read(dataset).pairs["train"][0]
    label.write_text("0 0.5 0.5 0.2 0.2\n1 0.1 0.1 0.3 0.1 0.3 0.4 0.1 0.4\n1 0.7 0.7 0.1 0.1\n")
    args = (str(image), str(label), "", False, 2, 0, 0, False)
    assert verify_image_label(args)[0] is None  # what Ultralytics does: the image is dropped
    read = yolo_data.read(dataset)
    counts = yolo_data.check(read)
    assert counts["labels_mixing_outlines_and_boxes"] == 1
    (said,) = [w for w in yolo_data.warnings(read, counts) if "mix box rows" in w]
    assert f"{label} (box lines 1, 3, outline lines 2)" in said, said
    assert "drops such an image as corrupt" in said
    yolo_data.stage(read, tmp_path / "staged")  # what this pipeline trains on: all three
    (staged,) = (tmp_path / "staged" / "labels" / "train").glob(f"*_{label.stem}.txt")
    kept = verify_image_label((str(image), str(staged), "", False, 2, 0, 0, False))
    assert kept[0] is not None and len(kept[1]) == 3


def test_an_empty_test_list_is_named_as_the_other_splits_are(dataset):
    (dataset / "test.txt").write_text("\n")
    (dataset / "data.yaml").write_text((dataset / "data.yaml").read_text() + "test: test.txt\n")
    with pytest.raises(DataError, match=r"data.yaml: test \('test.txt'\) lists no images"):
        yolo_data.read(dataset)


def test_images_of_one_name_with_other_suffixes_sharing_a_label_are_named(dataset):
    """A format conversion that kept its originals leaves img.png beside img.jpg, another
    picture: Ultralytics finds a label by the image's name less its suffix, so both
    trained on the png's boxes, and the report counted 21 images, in silence."""
    image, label = yolo_data.read(dataset).pairs["train"][0]
    other = image.with_suffix(".jpg")
    with Image.open(yolo_data.read(dataset).pairs["train"][1][0]) as im:
        im.convert("RGB").save(other)
    read = yolo_data.read(dataset)
    counts = yolo_data.check(read)  # a warning, not a refusal
    assert counts["labels_shared_by_images"] == 1
    (said,) = [w for w in yolo_data.warnings(read, counts) if "serve two or more images" in w]
    assert f"{label} for {other.name} and {image.name}" in said, said


def _sixteen_bit(image: Path) -> Path:
    """The image re-saved in place as a 16-bit grayscale PNG (Pillow's I;16)."""
    import numpy as np

    with Image.open(image) as im:
        gray = np.asarray(im.convert("L")).astype(np.uint16) * 257
    Image.fromarray(gray).save(image.with_suffix(".png"))
    return image


def test_16_bit_images_are_hashed_as_the_picture_they_hold(dataset):
    """Pillow's convert("L") clips 16-bit pixels at white: every 16-bit PNG had one hash,
    and every val image was named a near copy of the first train image (0 bits)."""
    image, label = yolo_data.read(dataset).pairs["train"][1]
    copy = _resave(image, dataset / "images" / "val" / "resaved.png", scale=0.5)
    shutil.copy(label, dataset / "labels" / "val" / "resaved.txt")
    for each in (dataset / "images").rglob("*.png"):
        _sixteen_bit(each)
    with Image.open(copy) as im:
        assert im.mode == "I;16"
    read = yolo_data.read(dataset)
    counts = yolo_data.check(read)
    assert counts["near_copies_across_splits"] == 1  # the copy, no other val image
    (said,) = [w for w in yolo_data.warnings(read, counts) if "re-saved or resized" in w]
    assert f"{copy.resolve()} looks like {image}" in said, said


@pytest.mark.parametrize("mode", ["I", "F"])
def test_32_bit_and_float_images_hash_as_their_8_bit_picture(dataset, tmp_path, mode):
    """32-bit integer and float pixels (TIFF) have no fixed white: convert("L") clipped
    them too; hashed from their own range, they hash as the 8-bit picture does."""
    import numpy as np

    image = yolo_data.read(dataset).pairs["train"][0][0]
    with Image.open(image) as im:
        gray = np.asarray(im.convert("L"), float)
    wide = gray * 1000 + 5000 if mode == "I" else gray / 255
    Image.fromarray(wide.astype(np.int32 if mode == "I" else np.float32)).save(tmp_path / "w.tif")
    with Image.open(tmp_path / "w.tif") as im:
        assert im.mode == mode
    a, b = image_hashes.image_hash(image), image_hashes.image_hash(tmp_path / "w.tif")
    assert int(np.unpackbits(a ^ b).sum()) <= 2
