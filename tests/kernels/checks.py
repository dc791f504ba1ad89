"""Checks the kernel tests share: error bounds from unit roundoff, and exact pool invariants."""

from __future__ import annotations

import torch

from cases.layouts import SENTINEL
from harness.invariants import covered, storage_elements
from harness.policy import UNIT_ROUNDOFF

# Unit roundoff u = 2^-p per dtype is the tolerance policy's (harness/policy.py); the floor of
# rounding to a dtype is half its smallest subnormal.
SUBNORMAL_FLOOR = {torch.float32: 2.0**-150, torch.bfloat16: 2.0**-134, torch.float16: 2.0**-25}


def assert_within_bound(got, oracle, bound, what):
    """|got − oracle| ≤ bound elementwise; the message names the worst element and the numbers."""
    assert got.shape == oracle.shape, f"{what}: shape {tuple(got.shape)} != {tuple(oracle.shape)}"
    err = (got.double() - oracle).abs()
    assert not torch.isnan(got).any(), f"{what}: {int(torch.isnan(got).sum())} NaN elements"
    excess = err - bound
    if (excess > 0).any():
        i = int(excess.flatten().argmax())
        idx = tuple(int(v) for v in torch.unravel_index(torch.tensor(i), err.shape))
        raise AssertionError(f"{what}: {int((excess > 0).sum())}/{err.numel()} elements over the "
                             f"bound; worst at {idx}: got {got.flatten()[i].item():.6g}, oracle "
                             f"{oracle.flatten()[i].item():.6g}, error {err.flatten()[i].item():.3g}"
                             f" > bound {bound.flatten()[i].item():.3g}")


# The bf16 prefill's SiLU (silu_bf16_out in kernels/csrc/conv.cpp) is evaluated to 1.4e-4 relative
# before the final rounding, not to a few fp32 ulps: a result that close to a rounding boundary can
# land on the other bf16 neighbour.
SILU_REL = {torch.bfloat16: 1.4e-4}


def conv_bound(oracle, abs_sum, dtype, width, silu=False):
    """Error bound of an fp32-accumulated conv rounded once to `dtype`.

    One rounding to the output dtype: u·|y|, or half a subnormal below the normal range. The fp32 sum of width+1 terms (taps and bias):
    (width+1)·u32·Σ|terms| (Higham's γ_n), doubled to cover SiLU's exp (a few fp32 ulps, |silu'| ≤
    1.1) and the rounding of the fp32 result before the final cast. With `silu`, also the SiLU's own
    relative error where a path evaluates it more coarsely (SILU_REL).
    """
    u = UNIT_ROUNDOFF[dtype] + (SILU_REL.get(dtype, 0.0) if silu else 0.0)
    return (u * oracle.abs() + SUBNORMAL_FLOOR[dtype]
            + 2 * (width + 2) * UNIT_ROUNDOFF[torch.float32] * abs_sum)


def outside_view(t: torch.Tensor) -> torch.Tensor:
    """The elements of t's storage that the view t does not cover (slot gaps, guards, tails)."""
    return storage_elements(t)[~covered(t)]


def assert_gaps_and_metadata(pool, meta_before, what="pool"):
    """After an in-place op: the bytes outside the view (slot gaps, tail) still hold the sentinel,
    and the caller's tensor metadata is unchanged."""
    assert (pool.shape, pool.stride(), pool.storage_offset()) == meta_before, \
        f"{what}: metadata changed from {meta_before} to {(pool.shape, pool.stride(), pool.storage_offset())}"
    gaps = outside_view(pool)
    assert (gaps == SENTINEL).all(), f"{what}: {int((gaps != SENTINEL).sum())} gap elements overwritten"


def assert_pool_invariants(pool, expected_logical, meta_before, what="pool"):
    """The above, and the pool's logical contents equal the reference exactly (only the indexed
    slots' columns may differ from before)."""
    assert_gaps_and_metadata(pool, meta_before, what)
    assert torch.equal(pool.double(), expected_logical.double()), \
        f"{what}: {int((pool.double() != expected_logical.double()).sum())} elements differ from the reference"


def meta(t):
    return (t.shape, t.stride(), t.storage_offset())


def assert_near_baseline(got, oracle, baseline, dtype, what):
    """The kernel's worst error against the float64 oracle may be at most twice that of the
    same-precision baseline (the reference run in fp32 and rounded like a kernel), plus one unit
    roundoff of `dtype` at the largest magnitude (the floor when the baseline happens to be exact).
    The message carries both errors."""
    assert got.shape == oracle.shape, f"{what}: shape {tuple(got.shape)} != {tuple(oracle.shape)}"
    assert not torch.isnan(got).any(), f"{what}: {int(torch.isnan(got).sum())} NaN elements"
    err = (got.double() - oracle).abs().max().item() if got.numel() else 0.0
    base = (baseline.double() - oracle).abs().max().item() if got.numel() else 0.0
    floor = UNIT_ROUNDOFF[dtype] * (oracle.abs().max().item() if got.numel() else 0.0)
    assert err <= 2 * base + floor, (f"{what}: max error {err:.3g} > 2 × baseline {base:.3g} + "
                                     f"floor {floor:.3g}")


def assert_compiles_like_eager(op, args, pool_index):
    """torch.compile(fullgraph=True) traces the op, and the compiled call returns eager's output
    and leaves the pool (args[pool_index], written in place) as eager leaves its copy."""
    eager = list(args)
    eager[pool_index] = args[pool_index].clone()
    want = op(*eager)
    got = torch.compile(lambda *a: op(*a), fullgraph=True, backend="aot_eager")(*args)
    assert torch.equal(got, want) and torch.equal(args[pool_index], eager[pool_index])


# Inputs whose result vdpbf16ps (subnormals read as zero, subnormal products and sums flushed)
# would lose, for the bf16 dot-product conv paths: subnormal data (x, the history and the bias),
# subnormal taps and bias, and normal data and bias in [2^-125, 2^-124) whose products with O(1)
# taps fall below 2^-126.
UNDERFLOWS = ("subnormal-data", "subnormal-taps", "flushed-products")


def underflow_inputs(kind, x, pool, w, bias):
    """(x, pool, w, bias) with the magnitudes of `kind`, from unit-scale bf16 tensors."""
    if kind == "subnormal-data":
        return x * 2.0**-130, pool.mul_(2.0**-130), w, bias * 2.0**-130
    if kind == "subnormal-taps":
        return x, pool, w * 2.0**-130, bias * 2.0**-130
    assert kind == "flushed-products", kind
    g = torch.Generator().manual_seed(7)
    normal_tiny = lambda t: (torch.where(t < 0, -1.0, 1.0)   # noqa: E731
                             * (1 + torch.rand(t.shape, generator=g)) * 2.0**-125).to(t.dtype)
    return normal_tiny(x), pool.copy_(normal_tiny(pool)), w, normal_tiny(bias)
