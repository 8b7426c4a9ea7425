"""Shared fixtures: scratch clones of this checkout with a pipeline reproduced in them.

The helpers they use (run, set_params, clone_checkout...) live in `vertiflow.testing`, which
the benchmarks import too.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

# `-n 2` runs two test processes at once, and each one's OpenMP (scikit-learn's gradient
# boosting, in the tests and in the stages they start) would use every core: on a 2-core
# VM the oversubscribed unit lane took 6 min 30 s instead of 54 s (measured). Each worker
# gets its share of the cores, as the README's queued sweeps do; the models' bytes do not
# depend on the thread count (README, Reproducibility). Set before anything loads OpenMP.
if workers := int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0")):
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // workers)))

from vertiflow.testing import (
    SMALL,
    YOLO_CI_EPOCHS,
    clone_checkout,
    commit_all,
    run,
    set_params,
)


@pytest.fixture(scope="session")
def default_repo(tmp_path_factory) -> Path:
    """A clean clone with `dvc repro` done on the default params (the README's pipeline).

    One exception, for CI's time budget: the detector trains 10 epochs instead of 22 (the
    full run is benchmarked: benchmarks/results/train_yolo_stage.json). 10 is the fewest
    that learn: mAP50 0.70 here at 10, 0.0 at 3 (Ultralytics needs ~100 steps to start).
    """
    repo = clone_checkout(tmp_path_factory.mktemp("default"))
    set_params(repo, {"train_yolo.epochs": YOLO_CI_EPOCHS})
    out = run(["dvc", "repro"], repo, timeout=900).stdout
    (repo.parent / "repro_stdout.txt").write_text(out)  # which stages DVC actually ran
    return repo


@pytest.fixture(scope="session")
def small_repo(tmp_path_factory) -> Path:
    """A clean clone with a small pipeline reproduced and committed; copy it, don't mutate it."""
    repo = clone_checkout(tmp_path_factory.mktemp("small"))
    set_params(repo, SMALL)
    run(["dvc", "repro"], repo, timeout=600)
    commit_all(repo, "small pipeline")
    return repo


@pytest.fixture
def small_copy(small_repo: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "repo"
    shutil.copytree(small_repo, dest, symlinks=True)
    return dest


def pytest_collection_modifyitems(items) -> None:
    """tests/unit is the fast lane: `pytest -m unit` (or `pytest tests/unit`)."""
    unit = Path(__file__).parent / "unit"
    for item in items:
        if unit in Path(item.fspath).parents:
            item.add_marker(pytest.mark.unit)
