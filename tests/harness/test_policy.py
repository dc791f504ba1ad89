"""The tolerance policy at its edges."""

import pytest
import torch

from harness.policy import FACTOR, UNIT_ROUNDOFF, judge, judge_exact, tolerance


def metrics(max_abs, base, scale, mismatch=0, rms=0.0, base_rms=0.0):
    return dict(max_abs=max_abs, base_max_abs=base, scale=scale, class_mismatch=mismatch, nan=0,
                inf=0, rel_rms=rms, base_rel_rms=base_rms)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32])
def test_edge_of_the_tolerance(dtype):
    base, scale = 3e-3, 10.0
    tol = tolerance(dtype, base, scale)
    assert tol == FACTOR[dtype] * base + 2 * UNIT_ROUNDOFF[dtype] * scale
    assert judge("out", dtype, metrics(tol, base, scale)).ok
    v = judge("out", dtype, metrics(tol * (1 + 1e-9), base, scale))
    assert not v.ok and "out: max error" in v.reason and "baseline" in v.reason


def test_exact_baseline_leaves_one_ulp_at_the_largest_magnitude():
    # bf16 ulp at 1 is 2^-7: a result one ulp off at |y| = 4 passes, two ulps fail.
    assert judge("out", torch.bfloat16, metrics(4 * 2**-7, 0.0, 4.0)).ok
    assert not judge("out", torch.bfloat16, metrics(2 * 4 * 2**-7, 0.0, 4.0)).ok


def test_one_bf16_rounding_on_an_fp32_result_fails():
    """Staging an fp32 state in bf16 costs ~2^-9 relative; the fp32 policy sees it."""
    scale, base = 1.0, 4 * 2**-24
    assert not judge("state", torch.float32, metrics(2**-9, base, scale)).ok


def test_error_spread_over_small_elements_fails_the_rms_criterion():
    """Within the max criterion (normwise), but the relative RMS is 10x the baseline's."""
    base_rms = 1e-3
    v = judge("out", torch.bfloat16, metrics(0.01, 0.01, 4.0, rms=10 * base_rms, base_rms=base_rms))
    assert not v.ok and "relative RMS error" in v.reason and v.score > 1
    edge = 2 * base_rms + 2 * 2**-8
    assert judge("out", torch.bfloat16, metrics(0.01, 0.01, 4.0, rms=edge, base_rms=base_rms)).ok


def test_non_finite_mismatch_fails_even_with_zero_error():
    v = judge("out", torch.float32, metrics(0.0, 0.0, 1.0, mismatch=3))
    assert not v.ok and "3 elements non-finite" in v.reason


def test_exact():
    assert judge_exact("conv_states", 0, 10).ok
    v = judge_exact("conv_states", 1, 10)
    assert not v.ok and v.tolerance == 0 and v.score == float("inf") and "1/10" in v.reason


def test_cancellation_is_judged_against_the_sum_of_the_terms():
    """|y| = 0.005 from terms summing to 0.8 in absolute value: an fp32 error of u·Σ|t| is correct
    rounding, far above one ulp of |y|; the accumulation term (γ_n = n·u) admits it."""
    m = metrics(0.8 * 2**-24, 0.0, 0.005, rms=0.8 * 2**-24 / 0.005, base_rms=0.0)
    assert not judge("out", torch.float32, m).ok
    m.update(accumulation=6 * 0.8, accumulation_rel=6 * 0.8 / 0.005)
    v = judge("out", torch.float32, m)
    assert v.ok, v.reason
    m.update(max_abs=7 * 0.8 * 2**-24)          # beyond γ_6: not a rounding difference any more
    assert not judge("out", torch.float32, m).ok


def _rounded(x: torch.Tensor, dtype, toward_zero=False) -> torch.Tensor:
    """x (float64) to dtype: to nearest, or truncated toward zero."""
    near = x.to(dtype)
    if not toward_zero:
        return near
    too_big = near.double().abs() > x.abs()
    return torch.where(too_big, torch.nextafter(near, torch.zeros_like(near)), near)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32])
def test_rounding_toward_zero_fails_in_one_call(dtype):
    """Every element within one ulp (the size criteria pass), but half of them one value short in
    magnitude: the bias criterion fails it; rounding to nearest passes."""
    from harness.metrics import measure
    gen = torch.Generator().manual_seed(0)
    oracle = torch.randn(4096, generator=gen, dtype=torch.float64)
    baseline = _rounded(oracle, dtype)
    for toward_zero in (False, True):
        got = _rounded(oracle, dtype, toward_zero)
        m = measure(got, oracle, baseline)
        v = judge("state", dtype, m)
        assert m["max_abs"] <= tolerance(dtype, m["base_max_abs"], m["scale"])
        assert v.ok != toward_zero, v.reason
        if toward_zero:
            assert "rounding bias" in v.reason and m["bias_mag"] < -0.4 and abs(m["bias"]) < 0.1


def test_the_bias_of_a_few_elements_is_noise():
    """With 4 elements, 2 on the other neighbour is within the 1/√n scatter."""
    from harness.metrics import measure
    oracle = torch.tensor([1.3, -2.7, 0.11, 5.9], dtype=torch.float64)
    got = _rounded(oracle, torch.bfloat16, toward_zero=True)
    assert judge("out", torch.bfloat16, measure(got, oracle, oracle.to(torch.bfloat16))).ok


def test_repeated_values_count_once_in_the_bias_scatter():
    """A broadcast input repeats 4 values 17 times: one of them on the other neighbour is 1 in 4,
    not 17 in 68 independent draws; the scatter allowance is that of 4 samples."""
    from harness.metrics import measure
    oracle = torch.tensor([1.3, -2.7, 0.11, 5.9], dtype=torch.float64).repeat(17)
    baseline = oracle.to(torch.float32)
    got = baseline.clone()
    got[::4] = torch.nextafter(got[::4], torch.tensor(9.0))     # the first value one ulp up
    m = measure(got, oracle, baseline)
    assert m["bias_n"] == 4 and m["bias"] == 0.25
    assert judge("g", torch.float32, m).ok
