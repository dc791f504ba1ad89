"""Error metrics of one result tensor against the float64 oracle.

Errors are measured where the oracle is finite. Non-finite values are judged by class instead:
an element is finite, NaN, +inf or −inf, and the backend's class must match the same-precision
baseline's (an overflow the baseline also makes is not the kernel's fault; a NaN it does not make
is). The ULP distance is counted in the result's own dtype (bf16 included, which NumPy cannot),
between the backend's value and the oracle rounded to that dtype.

Rounding bias is measured as the mean of the signed ULP distance to the correctly rounded oracle,
each element's distance clipped to ±1: a result rounded to nearest averages about 0, one rounded
toward zero about −0.5 (half its elements one value short in magnitude), toward −∞ about −0.5 in
the plain sign. Clipping keeps one cancellation-prone element (millions of ulps off, and within the
normwise tolerance) from deciding the mean; the statistic is about how often and which way values
land on the wrong neighbour. See harness/policy.py for how it is judged.
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


def signed_ulps(got: torch.Tensor, want: torch.Tensor) -> torch.Tensor:
    """got − want rounded to got's dtype, in representable values, clipped to [−1, 1] (float64)."""
    return (ordered_bits(got) - ordered_bits(want.to(got.dtype))).clamp(-1, 1).double()


def bias(got: torch.Tensor, oracle: torch.Tensor, baseline: torch.Tensor,
         where: torch.Tensor) -> dict:
    """Rounding bias of got and of the baseline over the elements `where` (module docstring):
    `bias` the mean signed distance (negative: toward −∞), `bias_mag` the mean distance in the
    direction of the oracle's sign (negative: toward zero), `base_bias_rms` the RMS of the
    baseline's clipped distances (how often a correct result lands on another neighbour than the
    rounded oracle) and `bias_n` the number of distinct oracle values among them: elements that
    hold the same value (a broadcast input repeats a row) are one sample, not several, for the
    scatter of the mean (harness/policy.py)."""
    o = oracle[where]
    n = int(o.numel())
    if not n:
        return {}
    sign = torch.sign(o)
    s_got, s_base = signed_ulps(got[where], o), signed_ulps(baseline[where], o)
    return dict(bias=float(s_got.mean()), bias_mag=float((s_got * sign).mean()),
                base_bias=float(s_base.mean()), base_bias_mag=float((s_base * sign).mean()),
                base_bias_rms=float(s_base.square().mean().sqrt()), bias_n=int(torch.unique(o).numel()))


def measure(got: torch.Tensor, oracle: torch.Tensor, baseline: torch.Tensor,
            accumulation: torch.Tensor | None = None, where: torch.Tensor | None = None,
            finite_only: bool = False) -> dict:
    """Metrics of `got` (and of the baseline, for the verdict) against the oracle.

    max_abs, max_rel, rel_rms and max_ulp are over elements where the oracle and both results are
    finite; `scale` is the oracle's largest finite magnitude there (the floor of the tolerance is
    counted in units of it); nan/inf count the backend's non-finite elements; class_mismatch
    counts elements whose class differs from the baseline's. `accumulation`, when the op declares
    it, is each element's n·Σ|terms|: reported as its max and as its RMS relative to the oracle's.
    The rounding bias (`bias`) is over the judged elements within `where` (for a pool: the slots
    the call may write; the others are copies, whose zero distance would dilute the mean).

    `finite_only` compares classes as finite or not: for a case with a NaN or an infinity among
    its inputs, where which non-finite value an element gets depends on the order of evaluation
    (inf − inf, 0·inf), but whether it is finite does not (SPEC, shared conventions).
    """
    got64, base64 = got.double(), baseline.double()
    cls_got, cls_base = value_class(got64), value_class(base64)
    if finite_only:
        cls_got, cls_base = (cls_got != 0).to(torch.int8), (cls_base != 0).to(torch.int8)
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
        **bias(got, oracle, baseline, judged if where is None else judged & where),
    )


def bit_mismatches(got: torch.Tensor, want: torch.Tensor, any_nan: bool = False) -> int:
    """Elements whose bits differ (NaN payloads included: a repeated call must give the same bits).
    With `any_nan`, for results that must equal the baseline exactly (copies), two NaNs match
    whatever their payloads: the baseline's copy goes through fp32 and back, and the conversion
    rewrites a NaN's payload (ATen's vectorised bf16 rounding gives 0xffff for the input's
    0x7fc0), while a kernel that moves the bits keeps it."""
    if got.shape != want.shape or got.dtype != want.dtype:
        return max(got.numel(), want.numel(), 1)
    differ = got.contiguous().view(_BITS[got.dtype]) != want.contiguous().view(_BITS[want.dtype])
    if any_nan:
        differ &= ~(torch.isnan(got) & torch.isnan(want))
    return int(differ.sum())
