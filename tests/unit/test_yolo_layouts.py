"""YOLO datasets as people export them: label rounding, layouts, paths that leave the folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from vertiflow.errors import DataError
from vertiflow.vision import labels, yolo_data
from vertiflow.vision.skin import ImageConfig, write_dataset

TINY = ImageConfig(
    seed=5, classes=["Acne", "Wrinkles"], train_images=6, val_images=3, image_size=64
)


@pytest.fixture
def dataset(tmp_path) -> Path:
    write_dataset(tmp_path / "d", TINY)
    return tmp_path / "d"


def _labels(d: Path, split: str) -> list[Path]:
    return sorted((d / "labels" / split).glob("*.txt"))


def _yaml(d: Path, **changes) -> None:
    data = yaml.safe_load((d / "data.yaml").read_text())
    data.update(changes)
    (d / "data.yaml").write_text(yaml.safe_dump(data))


def test_rounding_past_the_border_is_clipped_and_counted_not_refused(dataset, tmp_path):
    # 5-decimal exports: a box touching the border ends at 1.000005 (as in a real dataset).
    victim = _labels(dataset, "train")[0]
    before = yolo_data.check(yolo_data.read(dataset))["boxes_clipped"]
    before -= labels.parse_label(victim, 2).clipped  # drawn boxes can touch the border too
    victim.write_text("0 0.900003 0.5 0.200004 0.2\n1 0.05 0.5 0.100002 0.3\n")
    report = yolo_data.check(yolo_data.read(dataset))
    assert report["boxes_clipped"] == before + 2
    staged = yolo_data.stage(yolo_data.read(dataset), tmp_path / "staged").parent
    (copy,) = (staged / "labels" / "train").glob(f"*_{victim.stem}.txt")
    assert not copy.is_symlink()  # the dataset's own file is untouched
    for line in copy.read_text().splitlines():
        _, x, _, w, _ = map(float, line.split())
        assert x - w / 2 >= 0.0 and x + w / 2 <= 1.0
    assert victim.read_text().startswith("0 0.900003")


def test_beyond_ultralytics_tolerance_is_still_named(dataset):
    victim = _labels(dataset, "val")[0]
    victim.write_text("0 0.5 0.5 0.2 0.2\n0 0.95 0.5 0.14 0.2\n")  # right edge at 1.02
    with pytest.raises(DataError, match=rf"{victim}, line 2: box .* reaches outside the image"):
        yolo_data.check(yolo_data.read(dataset))


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_nan_and_inf_in_labels_are_named_with_file_and_line(dataset, value):
    victim = _labels(dataset, "train")[1]
    victim.write_text(f"0 0.5 0.5 0.2 0.2\n1 0.5 0.5 {value} 0.2\n")
    with pytest.raises(DataError, match=rf"{victim}, line 2: .*not a finite number"):
        yolo_data.check(yolo_data.read(dataset))


def test_relative_paths_resolve_against_the_dataset_folder_not_the_cwd(dataset, monkeypatch):
    _yaml(dataset, path=".")
    monkeypatch.chdir(dataset.parent.parent)  # elsewhere: a cwd-relative read finds nothing
    data = yolo_data.read(dataset)
    assert all(img.is_relative_to(dataset.resolve()) for img, _ in data.pairs["train"])


def test_absolute_path_outside_the_folder_is_refused(dataset, tmp_path):
    elsewhere = tmp_path / "original_export"
    shutil.copytree(dataset, elsewhere)
    _yaml(dataset, path=str(elsewhere))
    with pytest.raises(
        DataError, match=r"'path:' points to .*original_export, outside the dataset"
    ):
        yolo_data.read(dataset)


def test_a_split_that_climbs_out_of_the_folder_is_refused(dataset, tmp_path):
    shutil.copytree(dataset / "images" / "val", tmp_path / "images" / "val")
    _yaml(dataset, val="../images/val")
    with pytest.raises(DataError, match=r"val \('../images/val'\) points to .*outside the dataset"):
        yolo_data.read(dataset)


def _roboflow(dataset: Path) -> None:
    """Rearrange into train/images + train/labels, valid/..., data.yaml with ../ entries."""
    for split, folder in (("train", "train"), ("val", "valid")):
        for kind in ("images", "labels"):
            (dataset / folder).mkdir(exist_ok=True)
            shutil.move(dataset / kind / split, dataset / folder / kind)
    shutil.rmtree(dataset / "images")
    shutil.rmtree(dataset / "labels")


def test_roboflow_export_layout_with_dotdot_entries(dataset):
    _roboflow(dataset)
    _yaml(dataset, train="../train/images", val="../valid/images")
    data = yolo_data.read(dataset)
    report = yolo_data.check(data)
    assert report["train_images"] == 6 and report["val_images"] == 3
    assert data.pairs["val"][0][1].parent == (dataset / "valid" / "labels").resolve()


def test_splits_found_by_convention_when_data_yaml_names_none(dataset):
    _roboflow(dataset)
    data = yaml.safe_load((dataset / "data.yaml").read_text())
    (dataset / "data.yaml").write_text(yaml.safe_dump({"names": data["names"]}))
    report = yolo_data.check(yolo_data.read(dataset))
    assert report["train_images"] == 6 and report["val_images"] == 3


def test_detector_answers_in_the_apps_class_ids():
    """The default detector trains 5 of the app's 10 conditions (ids 0-4 in its dataset);
    its answers carry the app's ids. A dataset with other names keeps its own."""
    from vertiflow.vision.app_classes import app_class_ids

    five = {0: "Acne", 1: "Blackheads", 2: "Dark-Spots", 3: "Wrinkles", 4: "Skin-Redness"}
    assert app_class_ids(five) == {0: 0, 1: 1, 2: 2, 3: 9, 4: 7}
    assert app_class_ids({0: "Mole", 1: "Acne"}) == {0: 0, 1: 1}


def test_class_names_spelt_otherwise_answer_in_the_apps_ids():
    """Roboflow and Label Studio projects write `Skin Redness`, `wrinkles`, `dark spots`:
    one character off the app's spelling, the detector fell back to the dataset's own ids
    in silence, and the app read Wrinkles as Dry-Skin, Skin Redness as Enlarged-Pores."""
    from vertiflow.vision.app_classes import app_class_ids

    spelt = {0: "acne", 1: "Blackheads", 2: "dark spots", 3: "wrinkles", 4: "Skin Redness"}
    assert app_class_ids(spelt) == {0: 0, 1: 1, 2: 2, 3: 9, 4: 7}
    assert app_class_ids({0: "DRY_SKIN", 1: " Eyebags "}) == {0: 3, 1: 5}


def test_names_the_app_does_not_know_are_warned_with_the_ids_it_then_gets(dataset):
    """A dataset with some of the app's names and some others (or only near misses of
    them) keeps its own ids, which the app reads as other conditions: said, with each
    name, the app's names and the ids; a dataset of other conditions is left alone."""

    def app_warnings(names):
        _yaml(dataset, names=names)
        read = yolo_data.read(dataset)
        counts = yolo_data.check(read)
        return counts, [w for w in yolo_data.warnings(read, counts) if "the app" in w]

    counts, (said,) = app_warnings(["Acne", "Mole"])
    assert counts["app_class_ids"] == {"Acne": 0, "Mole": 1}
    assert "'Mole' match(es) none of the app's" in said and "Skin-Redness, Whiteheads" in said
    assert "1 for 'Mole' (the app's Blackheads)" in said, said
    counts, (said,) = app_warnings(["Dark Spot", "wrinkle"])  # near misses only
    assert "'Dark Spot' (the app's 'Dark-Spots'?), 'wrinkle' (the app's 'Wrinkles'?)" in said
    assert "0 for 'Dark Spot' (the app's Acne)" in said, said
    counts, said = app_warnings(["Mole", "Scar"])
    assert counts["app_class_ids"] == {"Mole": 0, "Scar": 1} and said == []
    counts, said = app_warnings(["acne", "Wrinkles"])
    assert counts["app_class_ids"] == {"acne": 0, "Wrinkles": 9} and said == []


@pytest.mark.parametrize(
    ("names", "said"),
    [
        (["Acne", "Acne"], r"'names' repeats class name\(s\): 'Acne' \(ids 0, 1\)"),
        (
            {0: "Dark-Spots", 1: "dark spots"},
            r"'names' repeats class name\(s\): 'Dark-Spots', 'dark spots' \(ids 0, 1\)",
        ),
        (["Acne", ""], r"'names' has an empty class name \(id 1\)"),
        (["Acne", None], r"'names' has an empty class name \(id 1\)"),
    ],
    ids=["exact", "spelt-otherwise", "empty", "null"],
)
def test_repeated_or_empty_class_names_are_refused(dataset, names, said):
    """Two ids with one name merged in everything keyed by name: Blackheads' objects
    counted as Acne's, per-class metrics overwriting each other, both the app's Acne."""
    _yaml(dataset, names=names)
    with pytest.raises(DataError, match=rf"{dataset / 'data.yaml'}: {said}"):
        yolo_data.read(dataset)


def _cvat_export(dataset: Path, where: Path) -> Path:
    """CVAT's YOLO 1.1 export of the same images: obj.names, train.txt listing Darknet
    paths (data/obj_train_data/...), each label beside its image."""
    where.mkdir()
    names = yaml.safe_load((dataset / "data.yaml").read_text())["names"]
    names = list(names.values()) if isinstance(names, dict) else names
    (where / "obj.names").write_text("".join(f"{n}\n" for n in names))
    for split in ("train", "val"):
        folder = where / f"obj_{split}_data"
        folder.mkdir()
        for image in sorted((dataset / "images" / split).glob("*.png")):
            shutil.copy(image, folder / image.name)
            shutil.copy(dataset / "labels" / split / f"{image.stem}.txt", folder)
        listing = "".join(f"data/obj_{split}_data/{p.name}\n" for p in sorted(folder.glob("*.png")))
        (where / f"{split}.txt").write_text(listing)
    return where


def test_an_export_without_data_yaml_is_told_the_one_to_write(dataset, tmp_path):
    cvat = _cvat_export(dataset, tmp_path / "cvat")
    with pytest.raises(DataError) as err:
        yolo_data.read(cvat)
    said = str(err.value)
    assert "it has obj.names" in said and "names: ['Acne', 'Wrinkles']" in said, said
    with pytest.raises(DataError, match="name the folder holding it"):
        yolo_data.read(dataset / "data.yaml")  # Ultralytics' data= habit


def test_cvat_layout_image_lists_and_labels_beside_images(dataset, tmp_path):
    """Ultralytics reads a split given as a .txt list, and finds a label beside its image
    when the path has no `images` folder (img2label_paths)."""
    cvat = _cvat_export(dataset, tmp_path / "cvat")
    (cvat / "data.yaml").write_text("names: [Acne, Wrinkles]\ntrain: train.txt\nval: val.txt\n")
    with pytest.raises(DataError, match=rf"{cvat / 'train.txt'}, line 1: .*drop that leading"):
        yolo_data.read(cvat)
    for split in ("train", "val"):  # the README's one-line fix
        listing = cvat / f"{split}.txt"
        listing.write_text(listing.read_text().replace("data/obj_", "obj_"))
    read = yolo_data.read(cvat)
    image, label = read.pairs["train"][0]
    assert label == image.with_suffix(".txt") and label.is_file()
    assert yolo_data.check(read) == yolo_data.check(yolo_data.read(dataset)) | {}
    staged = yolo_data.stage(read, tmp_path / "staged").parent
    assert len(list((staged / "labels" / "train").glob("*.txt"))) == TINY.train_images


def test_exports_read_as_ultralytics_reads_them(dataset):
    """A byte-order mark in labels, macOS `._` files, `'0':` name keys, `nc: '2'`, a
    `validation:` key and a YAML not called data.yaml."""
    data = yaml.safe_load((dataset / "data.yaml").read_text())
    (dataset / "data.yaml").unlink()
    data["validation"] = data.pop("val")
    data.update(names={"0": "Acne", "1": "Wrinkles"}, nc="2")
    (dataset / "dataset.yaml").write_text(yaml.safe_dump(data))
    victim = _labels(dataset, "train")[0]
    victim.write_bytes(b"\xef\xbb\xbf" + victim.read_bytes())
    (dataset / "images" / "train" / "._img.png").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    read = yolo_data.read(dataset)
    assert read.names == ["Acne", "Wrinkles"] and read.source.name == "dataset.yaml"
    assert len(read.pairs["train"]) == TINY.train_images
    assert yolo_data.check(read)["train_objects"] > 0


def test_label_files_with_an_upper_case_suffix_are_named(dataset):
    """Ultralytics reads `.txt` labels only: with `.TXT` (as some Windows tools write it)
    their images trained as background, counted as such, with no word."""
    first, second = _labels(dataset, "train")[:2]
    first.rename(first.with_suffix(".TXT"))
    second.rename(second.with_suffix(".Txt"))
    read = yolo_data.read(dataset)
    counts = yolo_data.check(read)  # a warning, not a refusal
    assert counts["labels_with_upper_case_suffix"] == 2
    assert counts["train_background_images"] == 2 and counts["train_labels_without_image"] == 0
    (said,) = [w for w in yolo_data.warnings(read, counts) if "instead of .txt" in w]
    assert f"{first.with_suffix('.TXT')}, {second.with_suffix('.Txt')}" in said, said
    assert "train as background" in said and "rename them to .txt" in said


def test_a_utf16_label_file_is_named_with_its_encoding(dataset):
    """Notepad's 'Unicode' save is UTF-16, which Ultralytics cannot read either."""
    victim = _labels(dataset, "train")[0]
    victim.write_bytes(victim.read_text().encode("utf-16"))
    with pytest.raises(DataError, match=rf"{victim.name}: UTF-16 text .* save it as UTF-8"):
        yolo_data.check(yolo_data.read(dataset))


def test_images_ultralytics_would_drop_are_named(dataset):
    """Pillow's verify() reads headers only: a JPEG cut short passed it, then Ultralytics
    dropped it from training in silence (and the sample plot crashed on it)."""
    from PIL import Image

    train = sorted((dataset / "images" / "train").glob("*.png"))
    cut = train[0].with_suffix(".jpg")
    Image.open(train[0]).convert("RGB").resize((256, 256)).save(cut, quality=95)
    cut.write_bytes(cut.read_bytes()[: len(cut.read_bytes()) // 2])
    tiny = train[1].with_name("tiny.png")
    Image.new("RGB", (8, 8)).save(tiny)
    gif = train[2].with_name("animated.jpg")
    Image.new("RGB", (32, 32)).save(gif, format="GIF")
    heic = train[3].with_name("iphone.HEIC")
    heic.write_bytes(b"\x00\x00\x00\x18ftypheic")
    # Formats Ultralytics trains on, which were left out of the dataset in silence
    for fmt, suffix in (("AVIF", ".avif"), ("JPEG2000", ".jp2")):
        Image.open(train[4]).convert("RGB").save(train[4].with_suffix(suffix), format=fmt)
    for image in (cut, tiny, gif, heic):
        train[0].parent.parent.parent.joinpath("labels", "train", f"{image.stem}.txt").touch()
    train[0].unlink()
    with pytest.raises(DataError) as err:
        yolo_data.check(yolo_data.read(dataset))
    said = str(err.value)
    assert f"{cut}: unreadable image" in said and "truncated" in said, said
    assert f"{tiny}: 8 x 8 px" in said and f"{gif}: a GIF image" in said
    assert f"{heic}: a HEIC photo" in said and "convert it to JPEG" in said
    found = {image.suffix for image, _ in yolo_data.read(dataset).pairs["train"]}
    assert {".avif", ".jp2"} <= found and ".avif" not in said and ".jp2" not in said


def test_a_split_holding_no_usable_image_says_what_it_found(dataset):
    for image in (dataset / "images" / "val").glob("*.png"):
        image.rename(image.with_suffix(".gif"))  # not a format Ultralytics trains on
    with pytest.raises(
        DataError, match=r"val folder .* holds no images \(looked for .*found \.gif"
    ):
        yolo_data.read(dataset)


def test_the_same_images_in_train_and_val_are_counted(dataset):
    _yaml(dataset, val="images/train")
    assert yolo_data.check(yolo_data.read(dataset))["images_in_both_splits"] == TINY.train_images


def test_true_boxes_are_what_training_reads(tmp_path):
    """The registry's per-image loss read labels with np.loadtxt: a background image (no
    label file) crashed evaluate, and outlines were misread."""
    assert labels.true_boxes(tmp_path / "none.txt").shape == (0, 5)
    label = tmp_path / "a.txt"
    label.write_text("1 0.2 0.3 0.4 0.3 0.3 0.6\n0 0.95 0.5 0.100004 0.2\n")
    boxes = labels.true_boxes(label)
    assert boxes[0] == pytest.approx([1, 0.3, 0.45, 0.2, 0.3])
    assert boxes[1][1] + boxes[1][3] / 2 == pytest.approx(1.0)  # clipped at the border
    # A line repeated (an export glitch): Ultralytics trains and scores it once; as two
    # objects, a perfect detector's gate loss was 0.2 instead of 0.
    label.write_text("0 0.5 0.5 0.2 0.2\n0 0.5 0.5 0.2 0.2\n1 0.3 0.3 0.1 0.1\n")
    assert len(labels.true_boxes(label)) == 2
    assert labels.parse_label(label, 2).duplicates == 1


def test_repeated_label_lines_are_counted_and_staged_once(dataset, tmp_path):
    victim = _labels(dataset, "train")[0]
    victim.write_text(victim.read_text() * 2)
    read = yolo_data.read(dataset)
    distinct = len(set(victim.read_text().splitlines()))
    assert yolo_data.check(read)["duplicate_labels_dropped"] == distinct
    staged = yolo_data.stage(read, tmp_path / "staged").parent
    (copy,) = (staged / "labels" / "train").glob(f"*_{victim.stem}.txt")
    assert len(copy.read_text().splitlines()) == distinct


def test_a_val_image_copied_from_train_under_another_name_is_counted_and_named(dataset):
    """Roboflow and Label Studio rename every file, so a photo uploaded twice (or two
    exports merged) lands in train and val under two names: counted by path only, the
    report said 0 while the metrics judged the detector on an image it learnt from."""
    image, label = yolo_data.read(dataset).pairs["train"][2]
    copy = dataset / "images" / "val" / f"IMG_0003_jpg.rf.9cbed13b{image.suffix}"
    shutil.copy(image, copy)
    shutil.copy(label, dataset / "labels" / "val" / f"{copy.stem}.txt")
    read = yolo_data.read(dataset)
    counts = yolo_data.check(read)
    assert counts["images_in_both_splits"] == 1
    (said,) = [w for w in yolo_data.warnings(read, counts) if "also in train" in w]
    assert f"{copy.resolve()} is {image}" in said, said


def test_splits_listed_from_one_flat_folder_have_no_labels_without_image(dataset, tmp_path):
    """Label Studio exports images/ and labels/ flat, with no split; split by image lists
    (Ultralytics' autosplit), each split's label folder holds the other split's labels,
    which were counted as labels without an image (9 here, for none)."""
    flat = tmp_path / "label_studio"
    for kind in ("images", "labels"):
        (flat / kind).mkdir(parents=True)
        for split in ("train", "val"):
            for f in (dataset / kind / split).iterdir():
                shutil.copy(f, flat / kind / f.name)
    listed = {s: sorted((dataset / "images" / s).glob("*.png")) for s in ("train", "val")}
    for split, images in listed.items():
        (flat / f"{split}.txt").write_text("".join(f"./images/{p.name}\n" for p in images))
    (flat / "data.yaml").write_text("names: [Acne, Wrinkles]\ntrain: train.txt\nval: val.txt\n")
    counts = yolo_data.check(yolo_data.read(flat))
    assert counts["train_labels_without_image"] == counts["val_labels_without_image"] == 0
    (flat / "labels" / "removed_by_hand.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    counts = yolo_data.check(yolo_data.read(flat))
    assert counts["train_labels_without_image"] + counts["val_labels_without_image"] == 1


def test_classes_without_objects_are_counted_and_warned(dataset):
    """A class in names never labelled cannot be learnt; one absent from val is left out
    of mAP (Ultralytics averages over the classes val holds): both passed in silence."""
    _yaml(dataset, names=["Acne", "Wrinkles", "Post-inflammatory hyperpigmentation"])
    for label in _labels(dataset, "val"):  # no Wrinkles (class 1) in val
        label.write_text(
            "".join(ln + "\n" for ln in label.read_text().splitlines() if ln[0] != "1")
        )
    read = yolo_data.read(dataset)
    counts = yolo_data.check(read)
    assert counts["train_objects_per_class"]["Post-inflammatory hyperpigmentation"] == 0
    assert counts["val_objects_per_class"]["Wrinkles"] == 0
    assert counts["train_objects_per_class"]["Wrinkles"] > 0
    said = " ".join(yolo_data.warnings(read, counts))
    assert "'Post-inflammatory hyperpigmentation' in train: the detector cannot learn" in said
    assert "'Wrinkles' in val: its detection is never measured" in said, said


def _told(dataset_dir: Path) -> str:
    with pytest.raises(DataError) as err:
        yolo_data.read(dataset_dir)
    return str(err.value)


def test_exports_without_yaml_are_told_their_own_splits(dataset, tmp_path):
    """CVAT's YOLO 1.1 obj.data names its lists (a 'Validation' subset is Validation.txt,
    not the val.txt the advice assumed), and each holds Darknet's data/ paths: one
    message gives both. Label Studio's export has no split at all: the advice used to
    say 'val: val.txt' for a list nothing writes; Ultralytics' autosplit writes one."""
    cvat = _cvat_export(dataset, tmp_path / "cvat")
    (cvat / "val.txt").rename(cvat / "Validation.txt")
    (cvat / "obj.data").write_text(
        "classes = 2\ntrain = data/train.txt\nvalid = data/Validation.txt\n"
        "names = data/obj.names\nbackup = backup/\n"
    )
    said = _told(cvat)
    assert "  train: train.txt\n  val: Validation.txt" in said, said
    assert f"sed -i 's#^data/##' {cvat / 'train.txt'} {cvat / 'Validation.txt'}" in said

    studio = tmp_path / "label_studio"
    for kind in ("images", "labels"):
        (studio / kind).mkdir(parents=True)
        for f in (dataset / kind).rglob("*.*"):
            shutil.copy(f, studio / kind / f.name)
    (studio / "classes.txt").write_text("Acne\nWrinkles\n")
    said = _told(studio)
    assert f"autosplit('{studio / 'images'}', weights=(0.8, 0.2, 0.0))" in said, said
    from vertiflow.vision import yolo

    yolo.ultralytics()  # its settings in the checkout, as the stages have them
    from ultralytics.data.split import autosplit

    autosplit(studio / "images", weights=(0.8, 0.2, 0.0))  # the advice, followed
    told = [ln[2:] for ln in said.splitlines() if ln.startswith(("  names:", "  train:", "  val:"))]
    (studio / "data.yaml").write_text("\n".join(told) + "\n")
    counts = yolo_data.check(yolo_data.read(studio))
    assert counts["train_images"] + counts["val_images"] == TINY.train_images + TINY.val_images
