"""The same CPU code paths on every x86-64 machine, so that models come out byte for byte.

numpy, OpenBLAS, MKL, oneDNN and PyTorch each pick SIMD kernels for the CPU when they load,
and one CPU's kernels and another's differ in the last bits of exp, log and matrix
products. Measured on two Intel Xeons of this workplace with the same params, data and
locked environment: other md5s for both tabular models in dvc.lock, and a detector at
mAP50 0.925 against 0.905. Every stage script first imports `vertiflow.pin_kernels`, which
calls `pin`: it holds every library to x86-64-v3 kernels (AVX2 and FMA: Intel since
Haswell, AMD since Zen; MKL honours its variable on Intel CPUs only), with the variables
the reproseed project documents. Each library reads its variable when it loads, so
pinning after numpy, torch or scikit-learn is refused. A variable you set (even empty)
wins. On a CPU without AVX2 and FMA, or not x86-64 (Apple silicon, Graviton), nothing is
set and the models may differ in their last bits (README, Reproducibility).
"""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

LOAD_KERNELS = ("numpy", "scipy", "sklearn", "torch")  # read the variables when they load
X86_64_V3 = {
    "OPENBLAS_CORETYPE": "Haswell",  # numpy's and scipy's OpenBLAS
    "MKL_CBWR": "AVX2",  # PyTorch's MKL (Intel CPUs; AMD ones get MKL's default)
    "ONEDNN_MAX_CPU_ISA": "AVX2",  # PyTorch's convolutions
    "ATEN_CPU_CAPABILITY": "avx2",  # PyTorch's own kernels
}
NUMPY_AVX512 = "X86_V4 AVX512_ICL AVX512_SPR"  # numpy >= 2.4's AVX-512 targets, each one


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    try:
        text = cpuinfo.read_text()
    except OSError:  # not Linux: nothing is known, nothing is pinned
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.partition(":")[2].split())
    return set()


def settings(flags: set[str], machine: str, environ: dict[str, str]) -> dict[str, str]:
    """The variables to set: forcing AVX2 kernels on a CPU without them would crash, and
    numpy refuses to disable a target when NPY_ENABLE_CPU_FEATURES is set."""
    if machine.lower() not in ("x86_64", "amd64") or not {"avx2", "fma"} <= flags:
        return {}
    wanted = dict(X86_64_V3)
    if "avx512f" in flags and "NPY_ENABLE_CPU_FEATURES" not in environ:
        wanted["NPY_DISABLE_CPU_FEATURES"] = NUMPY_AVX512
    return {name: value for name, value in wanted.items() if name not in environ}


def pin() -> dict[str, str]:
    """Set the variables for this process and the stage's children; returns those set."""
    loaded = [name for name in LOAD_KERNELS if name in sys.modules]
    if loaded:
        raise RuntimeError(
            f"CPU kernels pinned after {', '.join(loaded)} loaded: their kernels are already "
            "chosen. Import vertiflow.pin_kernels first in the stage script."
        )
    chosen = settings(cpu_flags(), platform.machine(), dict(os.environ))
    os.environ.update(chosen)
    return chosen
