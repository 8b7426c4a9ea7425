"""dvc.yaml lists, for every stage, the package code its script imports (transitively).

A missing dep means DVC keeps a stale output after that code changes. Modules that
cannot change an output are exempt, each with its reason.
"""

import ast
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "src"

EXEMPT = {
    "vertiflow/errors.py": "error types and their printing: a failure, never an output",
    "vertiflow/stage.py": "the stage skeleton: clean exits, JSON writing with fixed format",
    "vertiflow/runtime.py": "environment switches (telemetry, offline mode, plot backend)",
    # optimise_cortex lists it all the same: key_part names its trace files
    "vertiflow/params.py": "validates params; values pass through unchanged (DVC tracks them)",
    "vertiflow/lifecycle/tracking.py": "MLflow logging only: nothing it does reaches a DVC out",
}


def module_file(name: str) -> Path | None:
    base = SRC / Path(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def imported_modules(path: Path) -> set[str]:
    """vertiflow modules a file imports anywhere (module level or inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("vertiflow")}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("vertiflow"):
            found.add(node.module)
            # `from vertiflow.data import rawdata`: rawdata is a module, not a name
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return {m for m in found if module_file(m)}


def transitive_files(script: Path) -> set[str]:
    seen: set[Path] = set()
    todo = [script]
    while todo:
        for name in imported_modules(todo.pop()):
            parts = name.split(".")
            # importing vertiflow.a.b runs vertiflow/__init__ and vertiflow/a/__init__ too
            for i in range(1, len(parts) + 1):
                f = module_file(".".join(parts[:i]))
                if f and f not in seen:
                    seen.add(f)
                    todo.append(f)
    return {f.relative_to(SRC).as_posix() for f in seen}


def is_marker(file: str) -> bool:
    """A package __init__ holding only its docstring runs no code."""
    body = ast.parse((SRC / file).read_text()).body
    return file.endswith("__init__.py") and all(isinstance(n, ast.Expr) for n in body)


def covered(dep_paths: list[str], file: str) -> bool:
    path = f"src/{file}"
    return any(path == d or path.startswith(d.rstrip("/") + "/") for d in dep_paths)


STAGES = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]


def missing_deps(stage: dict) -> list[str]:
    script = REPO / stage["cmd"].split()[1]
    deps = [d if isinstance(d, str) else next(iter(d)) for d in stage.get("deps", [])]
    assert script.relative_to(REPO).as_posix() in deps, "a stage depends on its own script"
    return sorted(
        f
        for f in transitive_files(script)
        if f not in EXEMPT and not is_marker(f) and not covered(deps, f)
    )


@pytest.mark.parametrize("name", sorted(STAGES))
def test_stage_lists_the_code_it_imports(name):
    missing = missing_deps(STAGES[name])
    assert not missing, f"dvc.yaml stage {name!r} misses deps: " + ", ".join(
        f"src/{m}" for m in missing
    )


def test_the_check_sees_a_removed_dep():
    stage = dict(STAGES["prepare"])
    stage["deps"] = [d for d in stage["deps"] if "farm/agronomy" not in str(d)]
    assert "vertiflow/farm/agronomy.py" in missing_deps(stage)
