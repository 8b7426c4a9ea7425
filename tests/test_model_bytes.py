"""A model saved twice, in two processes (so at different memory addresses and times),
gives the same bytes in every file of its MLflow folder, and still loads and predicts;
also when saved on another machine's Python 3.11.x with its own pip."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import zipfile
from pathlib import Path

SAVE = r"""
import sys
from pathlib import Path
if len(sys.argv) > 2:  # another machine: its Python patch release and the pip it ships
    import mlflow.pyfunc, mlflow.utils.environment as environment
    mlflow.pyfunc.PYTHON_VERSION = environment.PYTHON_VERSION = sys.argv[2]
    installed = environment._get_package_version
    environment._get_package_version = lambda name: "99.1" if name == "pip" else installed(name)
import numpy as np, pandas as pd, skops.io, mlflow.pyfunc, mlflow.sklearn
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from vertiflow.lifecycle.model_bytes import pin_model_folder

rng = np.random.default_rng(0)
x = pd.DataFrame(rng.normal(size=(200, 3)), columns=list("abc"))
y = 2 * x["a"] + rng.normal(size=200)
boosted = HistGradientBoostingRegressor(max_iter=20, random_state=0)
model = make_pipeline(StandardScaler(), boosted).fit(x, y)
trusted = skops.io.get_untrusted_types(data=skops.io.dumps(model))
mlflow.sklearn.save_model(
    model, sys.argv[1], serialization_format="skops", skops_trusted_types=trusted,
    input_example=x.head(3),
)
pin_model_folder(Path(sys.argv[1]))
loaded = mlflow.pyfunc.load_model(sys.argv[1])
print(model.predict(x.head(5)).tolist() == loaded.predict(x.head(5)).tolist())
"""


def _save(folder: Path, *machine: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", SAVE, str(folder), *machine],
        capture_output=True,
        text=True,
        check=True,
    )
    return proc.stdout.strip()


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_two_saves_give_identical_bytes_and_the_model_still_predicts(tmp_path):
    assert _save(tmp_path / "one") == _save(tmp_path / "two") == "True"  # loads, predicts
    assert _digests(tmp_path / "one") == _digests(tmp_path / "two")
    names = zipfile.ZipFile(tmp_path / "one" / "model.skops").namelist()
    numbers = [int(name.removesuffix(".npy")) for name in names[:-1]]  # not addresses
    assert names[-1] == "schema.json" and numbers == sorted(numbers) and max(numbers) < 1000


def test_another_python_patch_release_and_pip_give_identical_bytes(tmp_path):
    """The model folders are DVC outputs: a fresh machine's Python 3.11.x must not change
    their md5s in dvc.lock. The files name the series, which is what MLflow checks."""
    assert _save(tmp_path / "here") == _save(tmp_path / "there", "3.11.99") == "True"
    assert _digests(tmp_path / "here") == _digests(tmp_path / "there")
    env = (tmp_path / "here" / "python_env.yaml").read_text()
    assert "python: '3.11'" in env and "- pip\n" in env, env
