"""Error metrics of one result tensor against the float64 oracle.

Errors are measured where the oracle is finite. Non-finite values are judged by class instead:
an element is finite, NaN, +inf or −inf, and the backend's class must match the same-precision
baseline's (an overflow the baseline also makes is not the kernel's fault; a NaN it does not make
is). The ULP distance is counted in the result's own dtype (bf16 included, which NumPy cannot),
between the backend's value and the oracle rounded to that dtype.
"""

from __future__ import annotations

import torch

# Integer dtypes with the bit width of each float dtype, for ULP distances.
_BITS = {torch.float64: torch.int64, torch.float32: torch.int32,
         torch.bfloat16: torch.int16, torch.float16: torch.int16}


def ordered_bits(t: torch.Tensor) -> torch.Tensor:
    """Float bits mapped to integers that are monotone in the float's value, so that the difference
    of two is the number of representable values between them (+0 and −0 both map to 0)."""
    bits = t.contiguous().view(_BITS[t.dtype]).to(torch.int64)
    sign_bit = torch.iinfo(_BITS[t.dtype]).min          # e.g. -2**15 for 16-bit types
    return torch.where(bits < 0, sign_bit - bits, bits)


def ulp_distance(got: torch.Tensor, want: torch.Tensor) -> torch.Tensor:
    """Number of representable values of got.dtype between got and want (rounded to that dtype)."""
    return (ordered_bits(got) - ordered_bits(want.to(got.dtype))).abs()


def value_class(t: torch.Tensor) -> torch.Tensor:
    """0 finite, 1 NaN, 2 +inf, 3 −inf."""
    c = torch.zeros(t.shape, dtype=torch.int8)
    c[torch.isnan(t)] = 1
    c[t == float("inf")] = 2
    c[t == float("-inf")] = 3
    return c


def measure(got: torch.Tensor, oracle: torch.Tensor, baseline: torch.Tensor,
            accumulation: torch.Tensor | None = None) -> dict:
    """Metrics of `got` (and of the baseline, for the verdict) against the oracle.

    max_abs, max_rel, rel_rms and max_ulp are over elements where the oracle and both results are
    finite; `scale` is the oracle's largest finite magnitude there (the floor of the tolerance is
    counted in units of it); nan/inf count the backend's non-finite elements; class_mismatch
    counts elements whose class differs from the baseline's. `accumulation`, when the op declares
    it, is each element's n·Σ|terms|: reported as its max and as its RMS relative to the oracle's.
    """
    got64, base64 = got.double(), baseline.double()
    cls_got, cls_base = value_class(got64), value_class(base64)
    judged = torch.isfinite(oracle) & (cls_got == 0) & (cls_base == 0)
    o = oracle[judged]
    d = (got64[judged] - o).abs()
    db = (base64[judged] - o).abs()
    n = int(judged.sum())
    tiny = torch.finfo(got.dtype).tiny
    o_norm = float(o.norm()) if n else 0.0

    def rel_rms(err):
        return float(err.norm()) / o_norm if o_norm > 0 else float(err.norm()) if n else 0.0

    extra = {}
    if accumulation is not None:
        acc = accumulation[judged].double()
        extra = dict(accumulation=float(acc.max()) if n else 0.0, accumulation_rel=rel_rms(acc))
    return dict(
        numel=got.numel(),
        max_abs=float(d.max()) if n else 0.0,
        max_rel=float((d / o.abs().clamp_min(tiny)).max()) if n else 0.0,
        rel_rms=rel_rms(d),
        max_ulp=int(ulp_distance(got[judged], o).max()) if n else 0,
        scale=float(o.abs().max()) if n else 0.0,
        nan=int(torch.isnan(got64).sum()),
        inf=int(torch.isinf(got64).sum()),
        class_mismatch=int((cls_got != cls_base).sum()),
        base_max_abs=float(db.max()) if n else 0.0,
        base_max_ulp=int(ulp_distance(baseline[judged], o).max()) if n else 0,
        base_rel_rms=rel_rms(db),
        **extra,
    )


def bit_mismatches(got: torch.Tensor, want: torch.Tensor) -> int:
    """Elements whose bits differ (NaN payloads included), for results that must be exact."""
    if got.shape != want.shape or got.dtype != want.dtype:
        return max(got.numel(), want.numel(), 1)
    return int((got.contiguous().view(_BITS[got.dtype]) != want.contiguous().view(_BITS[want.dtype])).sum())
