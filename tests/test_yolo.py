"""The skin-condition dataset, its checks, and train_yolo with real Ultralytics."""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import mlflow
import numpy as np
import pytest
import yaml

from vertiflow.errors import DataError, VertiflowError
from vertiflow.testing import run, tree_digest
from vertiflow.vision import yolo_data
from vertiflow.vision.labels import parse_label
from vertiflow.vision.skin import CLASSES, ImageConfig, write_dataset

TINY = ImageConfig(seed=3, classes=list(CLASSES), train_images=12, val_images=4, image_size=64)


def test_generator_is_deterministic_and_its_boxes_are_exact(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    write_dataset(a, TINY)
    write_dataset(b, TINY)
    write_dataset(c, ImageConfig(**{**TINY.__dict__, "seed": 4}))
    digest = {Path(k).relative_to(a): v for k, v in tree_digest(a).items()}
    assert digest == {Path(k).relative_to(b): v for k, v in tree_digest(b).items()}
    assert digest != {Path(k).relative_to(c): v for k, v in tree_digest(c).items()}
    dataset = yolo_data.read(a)
    counts = yolo_data.check(dataset)  # passes its own checks
    assert counts["train_images"] == 12 and counts["val_images"] == 4
    assert dataset.names == list(CLASSES)


def test_default_classes_all_appear_with_varied_sizes():
    rng = np.random.default_rng(0)
    config = ImageConfig(classes=["Acne", "Blackheads", "Dark-Spots", "Wrinkles", "Skin-Redness"])
    from vertiflow.vision.skin import render

    labels = [label for _ in range(60) for label in render(rng, config)[1]]
    assert {c for c, *_ in labels} == set(range(5))
    widths = np.array([w for *_, w, _h in labels])
    assert widths.min() < 0.15 < widths.max()


def test_unknown_class_is_a_clear_params_error():
    with pytest.raises(VertiflowError, match="Freckles"):
        ImageConfig(classes=["Acne", "Freckles"])


# Malformed datasets: each breaks one rule and must be named by file.
def _no_label_files(d: Path) -> str:
    # One missing label file is a background image (Ultralytics' rule); none at all is a
    # layout mistake (labels beside the images, or in a folder Ultralytics does not look).
    for label in (d / "labels" / "val").glob("*.txt"):
        label.unlink()
    return "the val split has no labelled object in its 4 image(s): expected label files"


def _class_out_of_range(d: Path) -> str:
    victim = sorted((d / "labels" / "val").glob("*.txt"))[0]
    victim.write_text("10 0.5 0.5 0.2 0.2\n")
    return f"{victim}, line 1: class id 10 out of range 0..9"


def _box_outside(d: Path) -> str:
    victim = sorted((d / "labels" / "train").glob("*.txt"))[1]
    victim.write_text("0 0.95 0.5 0.2 0.2\n")
    return f"{victim}, line 1: box (0.95, 0.5, 0.2, 0.2) reaches outside the image"


def _unreadable_image(d: Path) -> str:
    victim = sorted((d / "images" / "train").glob("*.png"))[0]
    victim.write_bytes(b"\x89PNG\r\n\x1a\n but not really")
    return f"{victim}: unreadable image"


def _truncated_image(d: Path) -> str:
    victim = sorted((d / "images" / "val").glob("*.png"))[1]
    victim.write_bytes(victim.read_bytes()[:40])
    return f"{victim}: unreadable image"


def _wrong_field_count(d: Path) -> str:
    victim = sorted((d / "labels" / "train").glob("*.txt"))[3]
    victim.write_text("0 0.5 0.5 0.2\n")
    return f"{victim}, line 1: expected 5 fields"


def _text_in_numbers(d: Path) -> str:
    victim = sorted((d / "labels" / "train").glob("*.txt"))[4]
    victim.write_text("acne 0.5 0.5 0.2 0.2\n")
    return f"{victim}, line 1: expected an integer class"


def _zero_size_box(d: Path) -> str:
    victim = sorted((d / "labels" / "val").glob("*.txt"))[2]
    victim.write_text("1 0.5 0.5 0.0 0.1\n")
    return f"{victim}, line 1: box width and height must be positive"


def _no_names(d: Path) -> str:
    data = yaml.safe_load((d / "data.yaml").read_text())
    del data["names"]
    (d / "data.yaml").write_text(yaml.safe_dump(data))
    return f"{d / 'data.yaml'}: 'names' must be a list"


def _nc_disagrees_with_names(d: Path) -> str:
    data = yaml.safe_load((d / "data.yaml").read_text())
    (d / "data.yaml").write_text(yaml.safe_dump({**data, "nc": 3}))
    return f"{d / 'data.yaml'}: 'nc' is 3 but 'names' lists 10 classes"


def _missing_split_folder(d: Path) -> str:
    shutil.rmtree(d / "images" / "val")
    return f"{d / 'data.yaml'}: val folder"


def _no_data_yaml(d: Path) -> str:
    (d / "data.yaml").unlink()
    return f"{d / 'data.yaml'}: not found"


DEFECTS: list[Callable[[Path], str]] = [
    _no_label_files,
    _class_out_of_range,
    _box_outside,
    _unreadable_image,
    _truncated_image,
    _wrong_field_count,
    _text_in_numbers,
    _zero_size_box,
    _no_names,
    _nc_disagrees_with_names,
    _missing_split_folder,
    _no_data_yaml,
]


@pytest.mark.reliability
@pytest.mark.parametrize("defect", DEFECTS, ids=[d.__name__.strip("_") for d in DEFECTS])
def test_each_dataset_defect_is_named(tmp_path, defect):
    _assert_defect_is_named(tmp_path, defect)


def _assert_defect_is_named(tmp_path: Path, defect: Callable[[Path], str]) -> None:
    write_dataset(tmp_path, TINY)
    expected = defect(tmp_path)
    with pytest.raises(DataError) as err:
        yolo_data.check(yolo_data.read(tmp_path))
    assert expected in str(err.value)


@pytest.mark.reliability
@pytest.mark.parametrize(
    "defect", [_unreadable_image, _truncated_image], ids=["unreadable", "truncated"]
)
def test_unreadable_images_are_named_once_ultralytics_has_patched_pillow(tmp_path, defect):
    """Ultralytics swaps PIL.Image.open on import; CI failed here after another test imported it."""
    from PIL import Image

    from vertiflow.vision.yolo import ultralytics

    ultralytics()  # imports it the way the stage does (offline, settings in the checkout)
    assert Image.open.__module__ == "ultralytics.utils.patches"
    _assert_defect_is_named(tmp_path, defect)


def test_exports_as_ultralytics_reads_them_background_images_and_outlines(tmp_path):
    """A missing or empty label file is a background image; an outline (segmentation
    export) is its bounding box. Both counted, both staged as Ultralytics trains on them."""
    write_dataset(tmp_path / "d", TINY)
    labels = sorted((tmp_path / "d" / "labels" / "train").glob("*.txt"))
    labels[0].unlink()
    labels[1].write_text("")
    labels[2].write_text("3 0.2 0.3 0.4 0.3 0.3 0.6\n")  # a triangle: box 0.2..0.4 x 0.3..0.6
    dataset = yolo_data.read(tmp_path / "d")
    counts = yolo_data.check(dataset)
    assert counts["train_background_images"] == 2 and counts["outlines_as_boxes"] == 1
    staged = tmp_path / "staged"
    yolo_data.stage(dataset, staged)
    by_image = {p.stem.split("_", 1)[1]: p for p in (staged / "labels" / "train").glob("*.txt")}
    assert labels[0].stem not in by_image and by_image[labels[1].stem].read_text() == ""
    cls, *box = by_image[labels[2].stem].read_text().split()
    assert cls == "3" and [float(v) for v in box] == pytest.approx([0.3, 0.45, 0.2, 0.3])


def test_labels_without_image_float_class_ids_and_nc_only_are_read_as_ultralytics_does(
    tmp_path,
):
    """Exports keep labels of images removed by hand, some write classes as `2.0`, and a
    data.yaml may give only `nc`."""
    write_dataset(tmp_path / "d", TINY)
    (tmp_path / "d" / "labels" / "val" / "removed_by_hand.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    victim = sorted((tmp_path / "d" / "labels" / "train").glob("*.txt"))[0]
    victim.write_text("2.0 0.5 0.5 0.2 0.2\n")
    data = yaml.safe_load((tmp_path / "d" / "data.yaml").read_text())
    del data["names"]  # Ultralytics names the classes itself when only `nc` is given
    (tmp_path / "d" / "data.yaml").write_text(yaml.safe_dump({**data, "nc": len(CLASSES)}))
    dataset = yolo_data.read(tmp_path / "d")
    assert dataset.names[:2] == ["class_0", "class_1"]
    counts = yolo_data.check(dataset)
    assert counts["val_labels_without_image"] == 1 and counts["train_labels_without_image"] == 0
    (box,) = parse_label(victim, len(CLASSES)).boxes
    assert box == (2, 0.5, 0.5, 0.2, 0.2) and type(box[0]) is int
    victim.write_text("2.5 0.5 0.5 0.2 0.2\n")
    with pytest.raises(DataError, match=f"{victim}, line 1: expected an integer class"):
        yolo_data.check(dataset)


def test_an_empty_split_is_named_even_when_another_split_has_problems(tmp_path):
    write_dataset(tmp_path, TINY)
    expected = [_box_outside(tmp_path), _no_label_files(tmp_path)]
    with pytest.raises(DataError) as err:
        yolo_data.check(yolo_data.read(tmp_path))
    assert all(e in str(err.value) for e in expected)


def test_staging_keeps_the_dataset_untouched(tmp_path):
    write_dataset(tmp_path / "d", TINY)
    before = tree_digest(tmp_path / "d")
    data_yaml = yolo_data.stage(yolo_data.read(tmp_path / "d"), tmp_path / "staged")
    (tmp_path / "staged" / "labels" / "train.cache").write_text("ultralytics writes here")
    assert yaml.safe_load(data_yaml.read_text())["names"][0] == CLASSES[0]
    assert tree_digest(tmp_path / "d") == before


# The stage for real, under an audit hook that records every socket connection attempt.
PROBE = """
import atexit, runpy, socket, sys, json
seen = []
def hook(event, args):
    if event == "socket.connect":
        seen.append(repr(args[1]))
    elif event == "socket.getaddrinfo":
        seen.append(repr(args[0]))
sys.addaudithook(hook)
sys.argv = ["stages/train_yolo.py"]
# A stage run as a program ends the process itself (runtime.exit_now): exit handlers run.
atexit.register(lambda: open("sockets.json", "w").write(json.dumps(seen)))
runpy.run_path("stages/train_yolo.py", run_name="__main__")
"""

LOOPBACK = ("127.0.0.1", "localhost", "::1", "'/")


@pytest.mark.pipeline
def test_train_yolo_is_offline_hermetic_and_logs_one_run(small_copy):
    repo = small_copy
    images = repo / "data" / "images"  # with a test split (val's images again): scored too
    for kind in ("images", "labels"):
        shutil.copytree(images / kind / "val", images / kind / "test")
    (images / "data.yaml").write_text((images / "data.yaml").read_text() + "test: images/test\n")
    before = {p for p in repo.rglob("*") if ".git" not in p.parts}
    runs = _runs(repo)
    (repo / "probe.py").write_text(PROBE)
    run([sys.executable, "probe.py"], repo, timeout=600)

    contacted = json.loads((repo / "sockets.json").read_text())
    assert all(any(tag in c for tag in LOOPBACK) for c in contacted), contacted
    new_runs = [r for r in _runs(repo) if r.info.run_id not in {x.info.run_id for x in runs}]
    assert [r.data.tags["stage"] for r in new_runs] == ["train_yolo"]
    assert new_runs[0].data.metrics["mAP50"] >= 0
    assert new_runs[0].data.metrics["test_mAP50"] == new_runs[0].data.metrics["mAP50"]
    report = json.loads((repo / "metrics" / "yolo.json").read_text())
    assert report["test_per_class"] == report["per_class"]
    assert "train_box_loss" in mlflow.MlflowClient().get_run(new_runs[0].info.run_id).data.metrics
    history = mlflow.MlflowClient().get_metric_history(new_runs[0].info.run_id, "train_box_loss")
    assert len(history) >= 2  # one point per epoch

    written = {p for p in repo.rglob("*") if ".git" not in p.parts} - before
    allowed = ("models/yolo", "metrics/yolo", ".mlflow", ".ultralytics", "probe.py", "sockets")
    stray = [p for p in written if not str(p.relative_to(repo)).startswith(allowed)]
    assert not stray, stray
    assert not (repo / "runs").exists() and not (repo / "dvclive").exists()


@pytest.mark.pipeline
def test_tiny_training_gives_weights_that_load_and_predict(small_repo):
    from vertiflow.vision import yolo

    weights = small_repo / "models" / "yolo" / "best.pt"
    model = yolo.load_model(str(weights))  # Ultralytics, with our offline settings
    assert set(model.names.values()) <= set(CLASSES)
    image = next((small_repo / "data" / "images" / "images" / "val").glob("*.png"))
    result = model.predict(str(image), imgsz=64, device="cpu", verbose=False)[0]
    assert result.boxes is not None and result.orig_shape == (64, 64)
    report = json.loads((small_repo / "metrics" / "yolo.json").read_text())
    assert {"mAP50", "mAP50-95", "precision", "recall", "per_class"} <= set(report)
    curve = (small_repo / "metrics" / "yolo_plots" / "pr_curve.csv").read_text().splitlines()
    assert curve[0].startswith("recall,precision") and len(curve) > 50


@pytest.mark.reliability
def test_bad_dataset_stops_before_training_and_keeps_the_model(small_copy):
    repo = small_copy
    kept = tree_digest(repo / "models", repo / "metrics" / "yolo.json")
    own = repo / "data" / "own"
    shutil.copytree(repo / "data" / "images", own)
    victim = sorted((own / "labels" / "train").glob("*.txt"))[0]
    victim.write_text("0 1.5 0.5 0.2 0.2\n")
    from vertiflow.testing import set_params

    set_params(repo, {"images.dataset": "data/own"})
    proc = run(["dvc", "repro"], repo, check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "failed to reproduce 'validate_images'" in output
    assert f"data/own/labels/train/{victim.name}, line 1" in output
    assert "Traceback" not in output
    assert tree_digest(repo / "models", repo / "metrics" / "yolo.json") == kept
    report = json.loads((repo / "metrics" / "images_validation.json").read_text())
    assert report["passed"] is False and victim.name in report["problem"]
    # The stage alone, as `dvc repro -s` runs it, without validate_images: it checks too.
    proc = run(["dvc", "repro", "-s", "train_yolo"], repo, check=False)
    assert proc.returncode != 0 and f"{victim.name}, line 1" in proc.stdout + proc.stderr
    # DVC removed the stage's outputs to run it: the cache and git hold them
    run(["dvc", "checkout", "train_yolo"], repo)
    run(["git", "checkout", "--", "metrics"], repo)
    assert tree_digest(repo / "models", repo / "metrics" / "yolo.json") == kept


def test_the_gate_loss_reads_background_images_and_outlines(small_repo, tmp_path):
    """evaluate's per-image loss read labels with np.loadtxt: a validation image with no
    label file (a background image, which validation accepts) crashed it."""
    from vertiflow import params
    from vertiflow.vision import yolo

    val = sorted((small_repo / "data" / "images" / "images" / "val").glob("*.png"))
    box = small_repo / "data" / "images" / "labels" / "val" / f"{val[1].stem}.txt"
    outline = tmp_path / "outline.txt"  # the same boxes, as segmentation outlines
    lines = []
    for line in box.read_text().splitlines():
        c, x, y, w, h = line.split()
        x0, y0, x1, y1 = (float(x) - float(w) / 2, float(y) - float(h) / 2,
                          float(x) + float(w) / 2, float(y) + float(h) / 2)  # fmt: skip
        lines.append(f"{c} {x0} {y0} {x1} {y0} {x1} {y1} {x0} {y1}")
    outline.write_text("\n".join(lines) + "\n")
    section = params.section(params.load(small_repo / "params.yaml"), "train_yolo")
    pairs = [(val[0], tmp_path / "no_label.txt"), (val[1], box), (val[1], outline)]
    errors = yolo.image_errors(small_repo / "models" / "yolo" / "best.pt", pairs, section)
    assert len(errors) == 3 and errors[1] == errors[2], errors


def _runs(repo: Path):
    mlflow.set_tracking_uri(f"sqlite:///{repo / '.mlflow' / 'mlflow.db'}")
    return mlflow.search_runs(search_all_experiments=True, output_format="list")


@pytest.mark.pipeline
def test_a_test_split_is_scored_by_ultralytics_next_to_val(tmp_path):
    """Roboflow's `test:` split was never used: the only figure was val's, the split
    best.pt is chosen on. With the val images again as the test split, Ultralytics'
    model.val(split='test') must give val's very figures (nothing made up or shifted)."""
    from vertiflow import runtime
    from vertiflow.vision import yolo

    runtime.configure()
    d = tmp_path / "d"
    write_dataset(
        d,
        ImageConfig(
            seed=3, classes=["Acne", "Wrinkles"], train_images=48, val_images=8, image_size=64
        ),
    )
    for kind in ("images", "labels"):
        (d / kind / "test").mkdir()
        for f in (d / kind / "val").iterdir():
            shutil.copy(f, d / kind / "test" / f"copy_{f.name}")
    (d / "data.yaml").write_text((d / "data.yaml").read_text() + "test: images/test\n")
    section = {
        "model": "configs/yolo/yolo11t.yaml",
        "epochs": 12,
        "image_size": 64,
        "batch": 8,
        "seed": 0,
        "device": "cpu",
        "workers": 0,
        "hyperparams": {
            "optimizer": "AdamW",
            "lr0": 0.005,
            "nbs": 8,
            "warmup_epochs": 0,
            "mosaic": 0.0,
        },
    }
    dataset = yolo_data.read(d)
    data_yaml = yolo_data.stage(dataset, tmp_path / "staged")
    best, final, _ = yolo.train(data_yaml, section, tmp_path / "run")
    report, _ = yolo.report(final)
    yolo.save_weights(best, tmp_path / "out", str(dataset.source))
    weights = tmp_path / "out" / "best.pt"
    scored, note = yolo.with_test(report, dataset, weights, data_yaml, section, tmp_path)
    assert note is None and scored["test_images"] == 8 and report["mAP50"] > 0
    for key in ("mAP50", "mAP50-95", "precision", "recall"):
        assert scored[f"test_{key}"] == scored[key], key
    assert scored["test_per_class"] == scored["per_class"]  # each class, held out too
    assert list(scored)[-2:] == ["per_class", "test_per_class"]  # after the headline figures
    (d / "data.yaml").write_text((d / "data.yaml").read_text().replace("test: images/test", ""))
    plain = yolo_data.read(d)  # the same data, no test split
    unscored, note = yolo.with_test(report, plain, weights, data_yaml, section, tmp_path)
    assert unscored["test_images"] == 0 and "test_mAP50" not in unscored
    assert "test_per_class" not in unscored
    assert "no test split" in note and "no held-out figure" in note
