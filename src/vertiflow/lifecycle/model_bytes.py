"""MLflow model folders whose bytes depend only on the model, so that a retrain on the same
data, params and locked environment gives the same md5 in dvc.lock (nothing new to push)
and the registry's "same files as a version" check holds.

What leaks in otherwise, none of it part of the model: MLmodel's random `model_uuid` and
its `utc_time_created` (every flavour), and, in a skops file (a zip), each object's id,
which is its memory address (`id()`), used as an entry name, plus each entry's time. Ids
are renumbered in order of first appearance (shared references keep sharing one id),
entries get the zip epoch, and the uuid becomes a digest of the model's own bytes.

The environment files also name the machine: its Python patch release (3.11.7) and the pip
that release shipped with. They name the series (3.11) and an unpinned pip instead, so a
fresh machine's Python 3.11.x saves the same bytes. MLflow itself compares only
major.minor when loading, and its virtualenv manager installs the newest 3.11.x for
"3.11"; the libraries stay pinned in `requirements.txt`.
"""

from __future__ import annotations

import hashlib
import json
import re
import zipfile
from pathlib import Path
from typing import Any

import yaml
from mlflow.models import Model

ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can carry
CREATED = "1980-01-01 00:00:00"  # MLmodel's time: the run that logs the model has the real one
NPY = re.compile(r"^(\d+)\.npy$")
PATCH = re.compile(r"^(\d+\.\d+)\.\d+\S*$")  # 3.11.7 -> 3.11
PIP = re.compile(r"^pip(\W|$)")  # pip==23.2.1, pip<=23.2.1


def _renumber(node: Any, ids: dict[int, int]) -> Any:
    """A copy of a skops schema with every `__id__` (and the .npy file named after it)
    replaced by its order of first appearance."""
    if isinstance(node, list):
        return [_renumber(item, ids) for item in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key == "__id__" and isinstance(value, int):
            value = ids.setdefault(value, len(ids))
        elif key == "file" and isinstance(value, str) and NPY.match(value):
            value = f"{ids.setdefault(int(NPY.match(value)[1]), len(ids))}.npy"
        out[key] = _renumber(value, ids)
    return out


def canonical_skops(path: Path) -> None:
    """Rewrite a .skops file in place with stable entry names and times."""
    with zipfile.ZipFile(path) as zin:
        entries = {info.filename: (info, zin.read(info)) for info in zin.infolist()}
    ids: dict[int, int] = {}
    schema_info, schema_bytes = entries.pop("schema.json")
    schema = _renumber(json.loads(schema_bytes), ids)
    renamed = {}
    for name, (info, data) in entries.items():
        match = NPY.match(name)
        if not match or int(match[1]) not in ids:
            raise ValueError(f"{path}: unexpected entry {name!r} in a skops file")
        renamed[f"{ids[int(match[1])]}.npy"] = (info.compress_type, data)
    staging = path.with_name(path.name + ".canonical")
    with zipfile.ZipFile(staging, "w") as zout:
        for name in sorted(renamed, key=lambda n: int(n.split(".")[0])):
            compress, data = renamed[name]
            zout.writestr(zipfile.ZipInfo(name, ZIP_EPOCH), data, compress_type=compress)
        text = json.dumps(schema, indent=2).encode()
        zout.writestr(zipfile.ZipInfo("schema.json", ZIP_EPOCH), text, schema_info.compress_type)
    staging.replace(path)


def pin_mlmodel(folder: Path, model_file: Path, size_change: int = 0) -> None:
    """MLmodel's per-save fields made stable: the uuid a digest of `model_file` (the
    weights), the creation time fixed (the run that logs the model has the real one), and
    MLflow's `model_size_bytes` moved by what rewriting the model file changed."""
    mlmodel = Model.load(folder)
    mlmodel.model_uuid = hashlib.sha256(model_file.read_bytes()).hexdigest()[:32]
    mlmodel.utc_time_created = CREATED
    if mlmodel.model_size_bytes is not None:
        mlmodel.model_size_bytes += size_change
    pyfunc = mlmodel.flavors.get("python_function", {})
    if "python_version" in pyfunc:
        pyfunc["python_version"] = _series(pyfunc["python_version"])
    mlmodel.save(folder / "MLmodel")
    _series_environment(folder)


def _series(version: str) -> str:
    match = PATCH.match(str(version))
    return match[1] if match else str(version)


def _series_environment(folder: Path) -> None:
    """python_env.yaml and conda.yaml with the Python series and an unpinned pip."""
    python_env = folder / "python_env.yaml"
    if python_env.is_file():
        env = yaml.safe_load(python_env.read_text())
        env["python"] = _series(env["python"])
        env["build_dependencies"] = [_dependency(dep) for dep in env["build_dependencies"]]
        python_env.write_text(yaml.safe_dump(env, sort_keys=False))
    conda = folder / "conda.yaml"
    if conda.is_file():
        env = yaml.safe_load(conda.read_text())
        env["dependencies"] = [_dependency(dep) for dep in env["dependencies"]]
        conda.write_text(yaml.safe_dump(env, default_flow_style=False))


def _dependency(dep: object) -> object:
    if isinstance(dep, str) and dep.startswith("python="):  # conda's form
        return f"python={_series(dep.removeprefix('python='))}"
    return "pip" if isinstance(dep, str) and PIP.match(dep) else dep


def pin_model_folder(folder: Path) -> None:
    """Make a saved skops MLflow model folder byte-reproducible (see the module doc)."""
    model_file = folder / "model.skops"
    size = model_file.stat().st_size
    canonical_skops(model_file)
    pin_mlmodel(folder, model_file, model_file.stat().st_size - size)
