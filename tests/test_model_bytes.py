"""A model saved twice, in two processes (so at different memory addresses and times),
gives the same bytes in every file of its MLflow folder, and still loads and predicts."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import zipfile
from pathlib import Path

SAVE = r"""
import sys
from pathlib import Path
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


def _save(folder: Path) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", SAVE, str(folder)],
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
