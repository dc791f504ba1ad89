"""The tolerance policy: when is a backend's result close enough to the float64 oracle?

A result passes when, over the elements where everything is finite,

    max|got − oracle|  ≤  FACTOR[dtype] · max|baseline − oracle|  +  FLOOR_ULPS · ulp(dtype) · scale

and its non-finite elements sit exactly where the baseline's do. `baseline` is the reference run in
the same precision a kernel of this family uses (fp32 arithmetic, results rounded to their dtype:
reference/precision.py); `scale` is the oracle's largest finite magnitude; ulp(dtype) = 2u is the
spacing of the dtype's values at 1 (u: unit roundoff, 2^-p).

Why these numbers:
- The baseline's error is what a same-precision implementation *does* make on this very case: the
  rounding of inputs and results and fp32 accumulation. A kernel evaluating in another order
  (SIMD lanes, chunked instead of token-by-token, a different exp) has the same first-order bound
  (Higham's γ_n over the same terms), but its realised worst element need not be the baseline's;
  FACTOR = 2 admits that spread. It still fails a kernel that adds one lossy step, e.g. staging an
  fp32 quantity in bf16 (2^16 times the fp32 error) or dropping the l2norm eps.
- The floor covers cases where the baseline happens to be exact or nearly so (a result that is a
  copy, or that rounds to the same value in the output dtype): two correct fp32 evaluations a few
  fp32 ulps apart can still round to neighbouring output values, one ulp at the largest magnitude.
- Results that are copies of inputs (conv state columns, packed weights) are EXACT: every bit must
  equal the baseline's.

The same table is keyed by dtype (JAX style) so that a dtype needing a different factor gets it
with a written reason; today none does.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

UNIT_ROUNDOFF = {torch.float64: 2.0**-53, torch.float32: 2.0**-24, torch.bfloat16: 2.0**-8,
                 torch.float16: 2.0**-11}
FACTOR = {torch.float32: 2.0, torch.bfloat16: 2.0, torch.float16: 2.0}
FLOOR_ULPS = 1.0


@dataclass(frozen=True)
class Verdict:
    ok: bool
    tolerance: float
    reason: str


def tolerance(dtype: torch.dtype, base_max_abs: float, scale: float) -> float:
    return FACTOR[dtype] * base_max_abs + FLOOR_ULPS * 2 * UNIT_ROUNDOFF[dtype] * scale


def judge(name: str, dtype: torch.dtype, m: dict) -> Verdict:
    """Verdict on one result from its metrics (harness.metrics.measure)."""
    tol = tolerance(dtype, m["base_max_abs"], m["scale"])
    if m["class_mismatch"]:
        return Verdict(False, tol, f"{name}: {m['class_mismatch']} elements non-finite where the "
                                   f"baseline is not, or the reverse ({m['nan']} NaN, {m['inf']} inf)")
    if m["max_abs"] > tol:
        return Verdict(False, tol, f"{name}: max error {m['max_abs']:.3g} > tolerance {tol:.3g} "
                                   f"({FACTOR[dtype]:g} × baseline {m['base_max_abs']:.3g} + "
                                   f"{FLOOR_ULPS:g} ulp × scale {m['scale']:.3g})")
    return Verdict(True, tol, "")


def judge_exact(name: str, mismatches: int, numel: int) -> Verdict:
    if mismatches:
        return Verdict(False, 0.0, f"{name}: {mismatches}/{numel} elements differ from the exact result")
    return Verdict(True, 0.0, "")
