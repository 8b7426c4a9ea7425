"""YOLO datasets as people export them: label rounding, layouts, paths that leave the folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from vertiflow.errors import DataError
from vertiflow.vision import yolo_data
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
    before -= yolo_data.parse_label(victim, 2).clipped  # drawn boxes can touch the border too
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
    from vertiflow.vision.detector import app_class_ids

    five = {0: "Acne", 1: "Blackheads", 2: "Dark-Spots", 3: "Wrinkles", 4: "Skin-Redness"}
    assert app_class_ids(five) == {0: 0, 1: 1, 2: 2, 3: 9, 4: 7}
    assert app_class_ids({0: "Mole", 1: "Acne"}) == {0: 0, 1: 1}
