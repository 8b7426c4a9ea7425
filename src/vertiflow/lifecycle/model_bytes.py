"""MLflow model folders whose bytes depend only on the model, so that a retrain on the same
data, params and locked environment gives the same md5 in dvc.lock (nothing new to push)
and the registry's "same files as a version" check holds.

What leaks in otherwise, none of it part of the model: MLmodel's random `model_uuid` and
its `utc_time_created` (every flavour), and, in a skops file (a zip), each object's id,
which is its memory address (`id()`), used as an entry name, plus each entry's time. Ids
are renumbered in order of first appearance (shared references keep sharing one id),
entries get the zip epoch, and the uuid becomes a digest of the model's own bytes.
"""

from __future__ import annotations

import hashlib
import json
import re
import zipfile
from pathlib import Path
from typing import Any

from mlflow.models import Model

ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can carry
CREATED = "1980-01-01 00:00:00"  # MLmodel's time: the run that logs the model has the real one
NPY = re.compile(r"^(\d+)\.npy$")


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
    mlmodel.save(folder / "MLmodel")


def pin_model_folder(folder: Path) -> None:
    """Make a saved skops MLflow model folder byte-reproducible (see the module doc)."""
    model_file = folder / "model.skops"
    size = model_file.stat().st_size
    canonical_skops(model_file)
    pin_mlmodel(folder, model_file, model_file.stat().st_size - size)
