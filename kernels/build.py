"""Build and load the C++ kernels: one torch C++ extension compiled with ninja into a stable,
per-configuration build directory, so a second load is instant and only a changed source rebuilds.

Compile flags follow the CPU: AVX-512 (with BF16 where present) on x86 machines that have it,
AVX2 otherwise, and ATen's portable vector code anywhere else. KERNELS_ISA=avx512|avx2|generic
forces a choice (e.g. to test the fallback).
"""

from __future__ import annotations

import hashlib
import os
import platform
from pathlib import Path

import torch
import torch.utils.cpp_extension as cpp_extension

NAMESPACE = "gdn_kernels"
SRC = Path(__file__).parent / "csrc"
SOURCES = sorted(SRC.glob("*.cpp"))
DEFAULT_BUILD_ROOT = Path(__file__).parent / "build"

_ISA_FLAGS = {
    "avx512": ["-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mfma",
               "-DCPU_CAPABILITY_AVX512", "-DCPU_CAPABILITY=AVX512"],
    "avx512bf16": ["-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mavx512bf16",
                   "-mfma", "-DCPU_CAPABILITY_AVX512", "-DCPU_CAPABILITY=AVX512"],
    "avx2": ["-mavx2", "-mfma", "-mf16c", "-DCPU_CAPABILITY_AVX2", "-DCPU_CAPABILITY=AVX2"],
    "generic": [],
}


def cpu_flags() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def detect_isa() -> str:
    forced = os.environ.get("KERNELS_ISA")
    if forced:
        if forced not in _ISA_FLAGS:
            raise ValueError(f"KERNELS_ISA: expected one of {sorted(_ISA_FLAGS)}, got {forced!r}")
        return forced
    if platform.machine() not in ("x86_64", "AMD64"):
        return "generic"
    flags = cpu_flags()
    if {"avx512f", "avx512bw", "avx512vl", "avx512dq"} <= flags:
        return "avx512bf16" if "avx512_bf16" in flags else "avx512"
    if {"avx2", "fma", "f16c"} <= flags:
        return "avx2"
    return "generic"


def compile_flags(isa: str) -> list[str]:
    # C++17 on purpose: with torch's default C++20 the conv prefill measured ~1.6× slower here (the
    # same source; ATen's vector headers optimise differently). Both standards compile and pass.
    return ["-O3", "-std=c++17", "-fopenmp", *_ISA_FLAGS[isa]]


def build_dir(isa: str) -> Path:
    """One directory per (torch version, ISA, flags): switching never rebuilds the other."""
    root = Path(os.environ.get("KERNELS_BUILD_DIR", DEFAULT_BUILD_ROOT))
    tag = hashlib.sha1(" ".join([torch.__version__, *compile_flags(isa)]).encode()).hexdigest()[:8]
    return root / f"{isa}-{tag}"


def build(name: str, sources, directory: Path, isa: str, verbose: bool = False) -> None:
    """Compile `sources` into `directory` (ninja: only what changed) and load the library.

    A compile error is raised as a RuntimeError carrying the compiler's output.
    """
    directory.mkdir(parents=True, exist_ok=True)
    cpp_extension.load(
        name=name, sources=[str(s) for s in sources], extra_cflags=compile_flags(isa),
        extra_include_paths=[str(SRC)], extra_ldflags=["-fopenmp"], build_directory=str(directory),
        is_python_module=False, verbose=verbose)


_loaded: str | None = None


def load(verbose: bool = False):
    """Build if needed, load, and return the ops namespace (torch.ops.gdn_kernels)."""
    global _loaded
    if _loaded is None:
        isa = detect_isa()
        build(f"{NAMESPACE}_{isa}", SOURCES, build_dir(isa), isa, verbose)
        from kernels import fake  # noqa: F401  (registers the fake implementations)
        _loaded = isa
    return getattr(torch.ops, NAMESPACE)


def loaded_isa() -> str | None:
    return _loaded
