"""Image monitoring: per-image features, and drift on them (no model, no DVC)."""

from __future__ import annotations

import base64
import re

import cv2
import numpy as np
import pytest

from vertiflow.monitoring import drift, images
from vertiflow.vision import detector

THRESHOLDS = drift.Thresholds(psi_warning=0.1, psi_critical=0.25, alpha=0.001, min_rows=30)
BATCH = 40  # images per checked batch
SIZE = 64  # px: the test's speed (the features do not depend on it)


def batch(n, seed, scenario="none"):
    return images.features(images.simulated_images(n, seed, size=SIZE, scenario=scenario))


@pytest.fixture(scope="module")
def reference():
    """Features of the training distribution: 600 images of the built-in generator (a
    reference much larger than the batches, so its own sampling noise is small)."""
    return batch(600, seed=1000)


def test_features_move_with_their_cause_only():
    (img,) = images.simulated_images(1, seed=3)
    base = images.image_features(img)
    dark = images.image_features(images.dim(img, 0.5))
    assert dark["brightness"] == pytest.approx(base["brightness"] * 0.5, rel=0.02)
    for name in ("contrast", "red_share", "blue_share", "sharpness"):
        assert dark[name] == pytest.approx(base[name], rel=0.05), name
    warm = images.image_features(images.colour_cast(img))
    assert warm["red_share"] > base["red_share"] and warm["blue_share"] < base["blue_share"]
    soft = images.image_features(images.blur(img))
    assert soft["sharpness"] < 0.7 * base["sharpness"]
    assert soft["brightness"] == pytest.approx(base["brightness"], rel=0.01)
    assert (base["width"], base["height"]) == (128, 128)


def test_quiet_on_fresh_batches_from_the_training_distribution(reference):
    """20 fresh batches: no alarm (the family-wise false-alarm rate is 0.001 per check)."""
    flagged = []
    for seed in range(20):
        report = images.check(reference, batch(BATCH, seed), THRESHOLDS)
        if report["severity"] != "ok":
            flagged.append((seed, report["drifted"]))
    assert not flagged, flagged


@pytest.mark.parametrize(
    ("scenario", "expected", "untouched"),
    [
        ("dim", {"brightness"}, {"red_share", "blue_share", "sharpness", "contrast", "width"}),
        ("colour_cast", {"red_share", "blue_share"}, {"sharpness", "contrast", "width"}),
        ("blur", {"sharpness"}, {"brightness", "red_share", "blue_share", "width"}),
    ],
)
def test_each_drift_is_flagged_at_its_own_features(reference, scenario, expected, untouched):
    report = images.check(reference, batch(BATCH, 77, scenario), THRESHOLDS)
    assert report["severity"] == "critical", report["features"]
    assert expected <= set(report["drifted"]), report["drifted"]
    assert not untouched & set(report["drifted"]), report["drifted"]


def test_class_mix_and_box_counts_are_checked_when_outputs_are_logged(reference):
    import polars as pl

    rng = np.random.default_rng(0)

    def outputs(n, classes, p, boxes):
        return [
            {
                "boxes": [
                    {"class_name": str(rng.choice(classes, p=p)), "confidence": rng.uniform(0.4, 1)}
                    for _ in range(rng.integers(*boxes))
                ]
            }
            for _ in range(n)
        ]

    ref = pl.concat(
        [reference, images.output_features(outputs(600, ["Acne", "Wrinkles"], [0.5, 0.5], (1, 4)))],
        how="horizontal",
    )
    same = batch(BATCH, seed=5)
    quiet = pl.concat(
        [same, images.output_features(outputs(BATCH, ["Acne", "Wrinkles"], [0.5, 0.5], (1, 4)))],
        how="horizontal",
    )
    assert images.check(ref, quiet, THRESHOLDS)["severity"] == "ok"
    shifted = pl.concat(
        [same, images.output_features(outputs(BATCH, ["Acne", "Wrinkles"], [0.9, 0.1], (4, 7)))],
        how="horizontal",
    )
    report = images.check(ref, shifted, THRESHOLDS)
    assert {"class", "n_boxes"} <= set(report["drifted"]), report["drifted"]
    assert not set(images.INPUT_FEATURES) & set(report["drifted"])


def test_detections_are_read_from_what_apps_hold():
    ours = {"boxes": [{"class_name": "Acne", "confidence": 0.9}], "width": 64, "height": 64}
    assert images.detections_from(ours) == [ours]
    assert images.detections_from({"detections": [ours, ours]}) == [ours, ours]
    assert images.detections_from({"skin_type": "Normal"}) is None


@pytest.mark.parametrize(
    ("item", "problem"),
    [
        ("", "empty string"),
        ("not base64!", "not valid base64"),
        (base64.b64encode(b"hello, not a picture").decode(), "not an image file"),
        (base64.b64encode(b"").decode() + "=", "not valid base64"),
        (12, "found int"),
        (None, "missing"),
        (np.zeros((4, 4, 3), np.uint8), "each side must be"),
        (np.zeros((32, 32, 2), np.uint8), "found shape (32, 32, 2)"),
        (np.full((32, 32, 3), 300), "0-255"),
        ([["a", "b"]], "numbers 0-255"),
    ],
)
def test_bad_images_are_named(item, problem):
    with pytest.raises(detector.ImageError, match="image 3") as err:
        detector.decode(item, "image 3")
    assert problem in str(err.value)


def test_good_images_decode_to_rgb():
    rgb = np.zeros((20, 30, 3), np.uint8)
    rgb[..., 0] = 200  # red
    png = cv2.imencode(".png", rgb[..., ::-1])[1].tobytes()
    text = base64.b64encode(png).decode()
    for item in (png, text, f"data:image/png;base64,{text}", rgb, rgb.tolist()):
        out = detector.decode(item)
        assert out.shape == (20, 30, 3) and out.dtype == np.uint8 and out[0, 0, 0] == 200
    assert detector.decode(np.zeros((20, 30), np.uint8)).shape == (20, 30, 3)


def test_a_float_image_in_0_1_is_served_as_the_monitor_reads_it():
    """An app's normalised image (floats 0-1) was cast to uint8 as it was: a black image,
    and `mlflow models serve` answered 200 with no boxes while the monitor, reading the
    same array scaled, logged a normal picture."""
    rgb = np.zeros((20, 30, 3), np.uint8)
    rgb[..., 0] = 200
    floats = rgb / 255
    for item in (floats, floats.tolist(), floats.astype(np.float32)):
        assert np.array_equal(detector.decode(item), rgb)
    assert np.array_equal(detector.decode(rgb.astype(float)), rgb)  # floats 0-255 as they are
    assert np.array_equal(images.as_images(floats)[0], detector.decode(floats))
    dark = np.ones((20, 30, 3), np.uint8)  # a dark 0-255 image stays dark through the monitor
    assert np.array_equal(images.as_images([dark.astype(float), rgb.astype(float)])[0], dark)


def test_the_inputs_format_of_a_list_of_images_is_one_image_each():
    """{"inputs": {"image": [b64, b64]}} reaches the model as one row holding the list:
    it was read as one array of text ("must hold numbers 0-255, found dtype <U33532"),
    after a 33 KB message echoing the request."""
    import pandas as pd

    from vertiflow.vision import pyfunc

    frame = pd.DataFrame({"image": [["aGk=", "aGk="]]})
    assert pyfunc.rows(frame) == ["aGk=", "aGk="]
    array = np.zeros((2, 2, 3)).tolist()  # an RGB array stays one image
    assert pyfunc.rows(pd.DataFrame({"image": [array]})) == [array]


def test_a_box_whose_confidence_or_bbox_cannot_be_read_is_refused_naming_it():
    """An app's confidence of 85 (a percentage) was logged as 85, a `mean_confidence`
    drift the monitor would invent; "high" and a bbox dict raised Python's bare
    "could not convert string to float". A bbox dict of x1..y2 is read."""
    box = {"class": "Acne", "confidence": 0.8, "bbox": [1, 2, 30, 40]}
    (read,) = images.detections_from(
        {"detections": [{**box, "bbox": dict(x1=1, y1=2, x2=30, y2=40)}]}
    )
    assert [read["boxes"][0][k] for k in images.XYXY] == [1.0, 2.0, 30.0, 40.0]
    for bad, said in (
        ({"confidence": 85}, "confidence 85: expected a number 0-1"),
        ({"confidence": "high"}, "confidence 'high': expected a number 0-1"),
        ({"confidence": None}, "confidence None: expected a number 0-1"),
        ({"bbox": {"left": 1}}, "bbox {'left': 1}: expected x1, y1, x2, y2"),
        ({"bbox": ["a", 2, 3, 4]}, "bbox ['a', 2, 3, 4]: expected x1, y1, x2, y2"),
    ):
        with pytest.raises(images.DataError, match=re.escape(said)):
            images.detections_from({"detections": [{**box, **bad}]})
