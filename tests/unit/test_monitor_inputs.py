"""What an app hands the monitor (PIL images, file paths, grayscale, float images, odd
tables): read as images or refused with a clear error, never a raw traceback or a check
that compared nothing. No model, no DVC."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image

from vertiflow.errors import VertiflowError
from vertiflow.lifecycle.apps import ModelMonitor
from vertiflow.monitoring import images

SIZE = 64


def pictures(n, seed, scenario="none"):
    return images.simulated_images(n, seed, size=SIZE, scenario=scenario)


@pytest.fixture
def mon(tmp_path):
    return ModelMonitor(root=tmp_path / "mon")


def test_pil_images_paths_and_grayscale_batches_are_read_as_images(mon, tmp_path):
    """A list of PIL images gave polars' `cannot cast 'Object' type`; N x H x W a raw
    ValueError; a list of paths was compared as text (the same images under another
    folder: a warning about unseen 'values')."""
    ref, cur = pictures(60, 1), pictures(40, 2, "dim")
    pil = mon.detect_data_drift([Image.fromarray(c) for c in cur], ref)
    assert pil["drifted"] == ["brightness"] and pil["severity"] == "critical", pil["drifted"]

    grey = mon.detect_data_drift(np.stack(cur)[..., 0], np.stack(ref)[..., 0])
    assert grey["drifted"] == ["brightness"], grey["drifted"]

    for day, batch in (("ref", ref), ("new", pictures(40, 3))):
        (tmp_path / day).mkdir()
        for i, img in enumerate(batch):
            cv2.imwrite(str(tmp_path / day / f"img_{i}.png"), img[..., ::-1])
    ref_paths = [str(p) for p in sorted((tmp_path / "ref").glob("*.png"))]
    cur_paths = sorted((tmp_path / "new").glob("*.png"))  # Path objects as well as text
    quiet = mon.detect_data_drift(cur_paths, ref_paths)
    assert quiet["severity"] == "ok" and "brightness" in quiet["features"], quiet
    assert "column_0" not in quiet["features"]

    with pytest.raises(VertiflowError, match=r"current_data\[3\]: .*gone\.png: no such image"):
        mon.detect_data_drift([*cur_paths[:3], tmp_path / "gone.png"], ref_paths)


def test_float_images_are_scaled_and_out_of_range_floats_refused():
    (img,) = pictures(1, 4)
    as_float = img.astype(np.float64) / 255
    (read,) = images.as_images(as_float)
    assert np.abs(read.astype(int) - img).max() <= 1  # not cast to 0 (black)
    (grey,) = images.as_images([as_float[..., 0]])  # a 2-D image in a list
    assert grey.shape == (SIZE, SIZE, 3) and grey.mean() > 10
    with pytest.raises(
        VertiflowError, match=r"float pixel values from -0.8\d+ to 0.7\d+; expected 0-1"
    ):
        images.as_images(as_float * 2 - 1)


def test_tables_with_no_shared_column_are_an_error_not_ok(mon):
    rng = np.random.default_rng(0)
    with pytest.raises(VertiflowError, match=r"share no column.*columns a\b.*columns b\b"):
        mon.detect_data_drift({"a": rng.random(50)}, {"b": rng.random(50)})
    # lists of categories are still tables, not file names
    report = mon.detect_data_drift(["basil"] * 40, ["basil", "lettuce"] * 40)
    assert "column_0" in report["features"]
