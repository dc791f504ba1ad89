"""The tolerance policy: when is a backend's result close enough to the float64 oracle?

A result passes when, over the elements where everything is finite,

    max|got − oracle|  ≤  FACTOR[dtype] · max|baseline − oracle|  +  FLOOR_ULPS · ulp(dtype) · scale
                                                                   +  u(fp32) · accumulation
    rms(got − oracle) / rms(oracle)  ≤  FACTOR[dtype] · (the same for the baseline)  +  FLOOR_ULPS · ulp(dtype)
                                                     +  u(fp32) · rms(accumulation) / rms(oracle)

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
- Under cancellation (a conv output much smaller than its terms), one element's baseline error
  is luck: the fp32 sum's error scales with Σ|terms|, not with |y|. Where an op declares its
  accumulations, `accumulation` = n·max Σ|terms| (n terms per sum), and u(fp32) times it is
  Higham's γ_n bound: no correct fp32 sum in any order exceeds it.
- The max criterion alone is normwise: it is blind to an error confined to the small elements of a
  result with a wide range (1% of the largest value spread over every element passes it in bf16).
  The relative-RMS criterion sees such errors: for a correct kernel it is a mean over many
  roundings and sits close to the baseline's, so the same FACTOR holds it with room to spare.
- Elementwise, where an op declares its accumulations (each result element one fp32 sum of n
  terms, rounded once to the result's dtype: the convs), every element must also meet Higham's
  bound for that computation, which no correct implementation exceeds in any summation order:

      |got − oracle| ≤ (u(dtype) + APPROX[dtype])·|oracle| + SUBNORMAL_FLOOR[dtype]
                       + UNDERFLOW_OPS·SUBNORMAL_FLOOR[fp32] + 3·u(fp32)·acc

  u·|y|: the one rounding to the output dtype; half the smallest subnormal below the normal range;
  below fp32's normal range each fp32 product and addition may itself round by half an fp32
  subnormal (gradual underflow is absolute, not relative: Higham's γ_n assumes none), so
  UNDERFLOW_OPS = 34 such roundings (up to 16 taps and a bias: 17 products, 17 additions; 2^-144
  in all, far below anything but an fp32 subnormal result);
  acc = n·Σ|terms|, so u32·acc is γ_n's first-order bound on the fp32 sum, tripled to cover an
  activation applied in fp32 before the rounding (SiLU's exp and division: a few fp32 ulps,
  |silu'| ≤ 1.1, |silu(z)| ≤ |z| ≤ Σ|terms|). APPROX admits a transcendental evaluated to u/16
  before the final rounding (a polynomial SiLU for a bf16 result needs no more than 4 bits beyond
  the output's). The normwise criteria cannot see an error confined to small elements, nor a
  whole-range sweep whose scale is the dtype's largest value; this one can, and it fails any
  evaluation that loses one bit of the output. It is reported as `<result>_elem_score`.
- Results that are copies of inputs (conv state columns, packed weights) are EXACT: every bit must
  equal the baseline's.

Rounding bias. The criteria above bound the size of the error, not its sign: a bf16 or fp16
result rounded toward zero instead of to nearest is within one ulp everywhere and passes them, yet
a state written back that way loses magnitude on every step of a decode chain (after 200 steps
the error is several times the baseline's). So each result also reports its mean signed ULP
distance to the correctly rounded oracle, clipped to ±1 per element (harness/metrics.py), both in
the plain sign (`bias`: toward −∞ negative) and toward the oracle's magnitude (`bias_mag`: toward
zero negative), and passes when both differ from the baseline's by at most

    BIAS_FLOOR  +  FACTOR · rms(baseline's clipped distances)  +  1/√n

- A correctly rounded result sits on the rounded oracle except where its own fp32 error crosses a
  rounding boundary; the baseline's RMS distance measures how often that happens on this case, and
  a kernel with another evaluation order lands on the other neighbour about as often, in either
  direction: FACTOR of it, as for the size criteria.
- Those disagreements are ±1 each and of no preferred sign, so their mean over n elements scatters
  by at most 1/√n (the standard deviation of a mean of n values of modulus ≤ 1): a bias must stand
  out of that noise, so a call with a handful of elements can show none. n counts distinct oracle
  values: elements that repeat one value (a broadcast input) land on the same neighbour together
  and are one sample.
- BIAS_FLOOR = 1/8 admits a transcendental evaluated with a one-sided error below u/16 (APPROX),
  which moves at most about 1/16 of the results by one value.
- Rounding toward zero (or truncating fp32 to bf16) moves about half the results by one value:
  a distance of about 0.5 against a tolerance of 1/8 + FACTOR·(a few hundredths) + 1/√n, so it
  fails in one call once n exceeds about 16. Where a result's error is many ulps (an fp32 result
  after a long accumulation), the baseline's RMS is near 1 and the criterion admits anything:
  there the size criteria are the only judges, and an accumulated bias shows in them.

The chunked prefill is judged against the fp32 token-by-token recurrence, in the unit tests as in
the property suite: the contract is the token-by-token math (SPEC §3), and a chunked kernel is one
way of evaluating it, so its bar is what a straightforward fp32 evaluation of that math achieves on
the same case. The fp32 chunked reference (the same algorithm class as the kernel) would be a bar
that moves with the algorithm: where the chunk's triangular system is ill-conditioned it loses
accuracy the recurrence does not, and a kernel inheriting that loss must show it. Only a variant
that chooses a lower precision on purpose (our `brgemm_bf16` GEMM path) gets a baseline of its own,
declared by its backend (harness/backends.py), with the same roundings in fp32.

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
APPROX = {dtype: u / 16 for dtype, u in UNIT_ROUNDOFF.items()}
BIAS_FLOOR = 1 / 8
UNDERFLOW_OPS = 34
# Half the smallest subnormal: the rounding error of a result that falls below the normal range.
SUBNORMAL_FLOOR = {torch.float64: 2.0**-1075, torch.float32: 2.0**-150, torch.bfloat16: 2.0**-134,
                   torch.float16: 2.0**-25}


@dataclass(frozen=True)
class Verdict:
    ok: bool
    tolerance: float          # on the max abs error
    rms_tolerance: float      # on the relative RMS error
    score: float              # the larger of error / tolerance over every criterion; > 1 fails
    reason: str
    bias_tolerance: float = 0.0   # on the rounding bias beyond the baseline's (ulps)


def tolerance(dtype: torch.dtype, base_max_abs: float, scale: float, accumulation: float = 0.0) -> float:
    return (FACTOR[dtype] * base_max_abs + FLOOR_ULPS * 2 * UNIT_ROUNDOFF[dtype] * scale
            + UNIT_ROUNDOFF[torch.float32] * accumulation)


def rms_tolerance(dtype: torch.dtype, base_rel_rms: float, accumulation_rel: float = 0.0) -> float:
    return (FACTOR[dtype] * base_rel_rms + FLOOR_ULPS * 2 * UNIT_ROUNDOFF[dtype]
            + UNIT_ROUNDOFF[torch.float32] * accumulation_rel)


def elementwise_tolerance(dtype: torch.dtype, oracle: torch.Tensor,
                          accumulation: torch.Tensor) -> torch.Tensor:
    """The per-element bound (module docstring) for results of one rounded fp32 sum each."""
    return ((UNIT_ROUNDOFF[dtype] + APPROX[dtype]) * oracle.abs() + SUBNORMAL_FLOOR[dtype]
            + UNDERFLOW_OPS * SUBNORMAL_FLOOR[torch.float32]
            + 3 * UNIT_ROUNDOFF[torch.float32] * accumulation)


def elementwise(got: torch.Tensor, oracle: torch.Tensor, accumulation: torch.Tensor) -> dict:
    """The worst element against its own bound, over elements where the oracle and got are finite
    (non-finite ones are judged by class): elem_score (error / bound; > 1 fails) and where."""
    judged = torch.isfinite(oracle) & torch.isfinite(got)
    if not judged.any():
        return dict(elem_score=0.0, elem_worst="")
    err = (got.double() - oracle).abs()
    ratio = torch.where(judged, err / elementwise_tolerance(got.dtype, oracle, accumulation.double()),
                        torch.zeros((), dtype=torch.float64))
    i = int(ratio.flatten().argmax())
    idx = [int(v) for v in torch.unravel_index(torch.tensor(i), ratio.shape)]
    return dict(elem_score=float(ratio.flatten()[i]),
                elem_worst=f"at {idx}: got {got.flatten()[i].item():.6g}, oracle "
                           f"{oracle.flatten()[i].item():.6g}")


def bias_tolerance(dtype: torch.dtype, base_bias_rms: float, n: int) -> float:
    """The bound on a result's rounding bias beyond the baseline's (module docstring)."""
    return BIAS_FLOOR + FACTOR[dtype] * base_bias_rms + n ** -0.5


def bias_excess(m: dict) -> float:
    """How far the result's rounding bias is from the baseline's, in ulps: the larger of the plain
    and the toward-magnitude mean distances."""
    return max(abs(m["bias"] - m["base_bias"]), abs(m["bias_mag"] - m["base_bias_mag"]))


def _ratio(err: float, tol: float) -> float:
    return err / tol if tol > 0 else (0.0 if err == 0 else float("inf"))


def judge(name: str, dtype: torch.dtype, m: dict) -> Verdict:
    """Verdict on one result from its metrics (harness.metrics.measure)."""
    tol = tolerance(dtype, m["base_max_abs"], m["scale"], m.get("accumulation", 0.0))
    rms_tol = rms_tolerance(dtype, m["base_rel_rms"], m.get("accumulation_rel", 0.0))
    biased = bias_tol = 0.0
    if m.get("bias_n"):
        biased, bias_tol = bias_excess(m), bias_tolerance(dtype, m["base_bias_rms"], m["bias_n"])
    score = max(_ratio(m["max_abs"], tol), _ratio(m["rel_rms"], rms_tol), m.get("elem_score", 0.0),
                _ratio(biased, bias_tol) if bias_tol else 0.0)
    verdict = lambda ok, reason="": Verdict(ok, tol, rms_tol, score, reason, bias_tol)  # noqa: E731
    if m["class_mismatch"]:
        return verdict(False, f"{name}: {m['class_mismatch']} elements non-finite where the baseline "
                              f"is not, or the reverse ({m['nan']} NaN, {m['inf']} inf)")
    if m["max_abs"] > tol:
        return verdict(False, f"{name}: max error {m['max_abs']:.3g} > tolerance {tol:.3g} "
                              f"({FACTOR[dtype]:g} × baseline {m['base_max_abs']:.3g} + "
                              f"{FLOOR_ULPS:g} ulp × scale {m['scale']:.3g}"
                              + (f" + u32 × accumulation {m['accumulation']:.3g})" if m.get("accumulation") else ")"))
    if m["rel_rms"] > rms_tol:
        return verdict(False, f"{name}: relative RMS error {m['rel_rms']:.3g} > tolerance "
                              f"{rms_tol:.3g} ({FACTOR[dtype]:g} × baseline {m['base_rel_rms']:.3g} "
                              f"+ {FLOOR_ULPS:g} ulp)")
    if m.get("elem_score", 0.0) > 1:
        return verdict(False, f"{name}: an element exceeds its own rounding bound by "
                              f"{m['elem_score']:.3g}× ({m['elem_worst']})")
    if biased > bias_tol:
        return verdict(False, f"{name}: rounding bias: mean distance {m['bias']:+.3g} ulp, toward "
                              f"magnitude {m['bias_mag']:+.3g} (baseline {m['base_bias']:+.3g}, "
                              f"{m['base_bias_mag']:+.3g}) over {m['bias_n']} distinct values, beyond "
                              f"tolerance {bias_tol:.3g} ({BIAS_FLOOR:g} + {FACTOR[dtype]:g} × "
                              f"baseline rms {m['base_bias_rms']:.3g} + 1/√n)")
    return verdict(True)


def judge_exact(name: str, mismatches: int, numel: int) -> Verdict:
    if mismatches:
        return Verdict(False, 0.0, 0.0, float("inf"),
                       f"{name}: {mismatches}/{numel} elements differ from the exact result")
    return Verdict(True, 0.0, 0.0, 0.0, "")
