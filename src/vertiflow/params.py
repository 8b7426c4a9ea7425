"""Read `params.yaml`, the single home of every tunable (DVC tracks it per stage)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from vertiflow.errors import VertiflowError


def load(path: Path = Path("params.yaml")) -> dict[str, Any]:
    try:
        params = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise VertiflowError(f"{path}: not found; run stages from the repository root.") from None
    except yaml.YAMLError as exc:
        raise VertiflowError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(params, dict):
        raise VertiflowError(
            f"{path}: expected a mapping of sections, got {type(params).__name__}."
        )
    return params


def section(params: dict[str, Any], name: str) -> dict[str, Any]:
    try:
        return params[name]
    except KeyError:
        raise VertiflowError(f"params.yaml: section '{name}' is missing.") from None


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{'a': {'b': 1}} -> {'a.b': 1}: the dotted names `dvc exp run -S` and MLflow use."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat
