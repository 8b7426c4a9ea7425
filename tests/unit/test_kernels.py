"""Stage processes run the same CPU kernels on every x86-64-v3 machine (vertiflow.kernels)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from vertiflow import kernels
from vertiflow.testing import PINNED_KERNELS, stage_kernels

pytestmark = pytest.mark.unit
REPO = Path(__file__).resolve().parents[2]
AVX512_CPU = {"avx2", "fma", "avx512f", "sse4_2"}


def test_an_avx512_cpu_is_held_to_avx2_kernels_in_every_library():
    assert kernels.settings(AVX512_CPU, "x86_64", {}) == {
        "OPENBLAS_CORETYPE": "Haswell",
        "MKL_CBWR": "AVX2",
        "ONEDNN_MAX_CPU_ISA": "AVX2",
        "ATEN_CPU_CAPABILITY": "avx2",
        "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR",
    }


def test_an_avx2_cpu_leaves_numpy_alone():
    assert "NPY_DISABLE_CPU_FEATURES" not in kernels.settings({"avx2", "fma"}, "x86_64", {})


@pytest.mark.parametrize(
    ("flags", "machine"),
    [({"avx", "sse4_2"}, "x86_64"), ({"avx2"}, "x86_64"), (set(), "aarch64"), (set(), "arm64")],
)
def test_nothing_is_forced_on_a_cpu_the_kernels_would_crash_on(flags, machine):
    assert kernels.settings(flags, machine, {}) == {}


def test_the_users_variables_win_even_empty():
    chosen = kernels.settings(AVX512_CPU, "x86_64", {"OPENBLAS_CORETYPE": "", "MKL_CBWR": "AUTO"})
    assert "OPENBLAS_CORETYPE" not in chosen and "MKL_CBWR" not in chosen
    assert chosen["ATEN_CPU_CAPABILITY"] == "avx2"
    enabled = kernels.settings(AVX512_CPU, "x86_64", {"NPY_ENABLE_CPU_FEATURES": "AVX512F"})
    assert "NPY_DISABLE_CPU_FEATURES" not in enabled  # numpy refuses both at once


def test_pinning_after_numpy_has_loaded_is_refused():
    late = subprocess.run(
        [sys.executable, "-c", "import numpy, vertiflow.pin_kernels"],
        capture_output=True,
        text=True,
    )
    assert late.returncode != 0
    assert "CPU kernels pinned after numpy loaded" in late.stderr, late.stderr


def test_a_stage_process_runs_the_pinned_kernels():
    numpy_variables = ("NPY_DISABLE_CPU_FEATURES", "NPY_ENABLE_CPU_FEATURES")
    seen = stage_kernels(REPO, unset=(*kernels.X86_64_V3, *numpy_variables))
    if {"avx2", "fma"} <= kernels.cpu_flags():
        assert seen == PINNED_KERNELS
    else:  # nothing can be pinned: the CPU's own kernels
        assert seen["openblas"] != "Haswell"


@pytest.mark.parametrize("script", sorted((REPO / "stages").glob("*.py")), ids=lambda p: p.stem)
def test_every_stage_script_pins_the_kernels_before_any_other_import(script):
    imports = [
        node
        for node in ast.parse(script.read_text()).body
        if isinstance(node, ast.Import | ast.ImportFrom)
    ]
    first = imports[0]
    assert isinstance(first, ast.Import) and first.names[0].name == "vertiflow.pin_kernels", (
        f"{script.name}: its first import must be `import vertiflow.pin_kernels`"
    )
