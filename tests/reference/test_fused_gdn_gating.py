"""fused_gdn_gating reference: closed forms of g and beta, softplus parameters, shapes, errors."""

import math

import pytest
import torch

import reference as R

f64 = dict(dtype=torch.float64)


def test_hand_values():
    # A_log = [0, ln 2] -> exp = [1, 2]; a + dt_bias = 0 -> softplus = ln 2.
    A_log = torch.tensor([0.0, math.log(2.0)], **f64)
    a = torch.tensor([[1.0, -3.0]], **f64)
    dt_bias = torch.tensor([-1.0, 3.0], **f64)
    b = torch.tensor([[0.0, math.log(3.0)]], **f64)
    g, beta = R.fused_gdn_gating(A_log, a, b, dt_bias)
    assert g.shape == beta.shape == (1, 1, 2)
    torch.testing.assert_close(g[0, 0], torch.tensor([-math.log(2), -2 * math.log(2)], **f64),
                               rtol=1e-15, atol=0)
    torch.testing.assert_close(beta[0, 0], torch.tensor([0.5, 0.75], **f64), rtol=1e-15, atol=0)


def test_softplus_beta_and_threshold_are_honoured():
    A_log = torch.zeros(1, **f64)
    dt_bias = torch.zeros(1, **f64)
    b = torch.zeros(2, 1, **f64)
    a = torch.tensor([[0.0], [15.0]], **f64)
    # β_s = 2: softplus(0) = ln(2)/2; 2·15 = 30 > 20 so softplus(15) = 15 exactly.
    g, _ = R.fused_gdn_gating(A_log, a, b, dt_bias, softplus_beta=2.0, softplus_threshold=20.0)
    assert g[0, 0, 0].item() == pytest.approx(-math.log(2) / 2, rel=1e-15)
    assert g[0, 1, 0].item() == -15.0
    # β_s = 1: 15 < 20, so softplus(15) = log1p(e^15), 3.06e-7 above 15.
    g, _ = R.fused_gdn_gating(A_log, a, b, dt_bias)
    assert g[0, 1, 0].item() == pytest.approx(-math.log1p(math.exp(15.0)), rel=1e-15)
    assert g[0, 1, 0].item() + 15.0 < -3e-7
    # threshold 10: 15 > 10 is linear again.
    g, _ = R.fused_gdn_gating(A_log, a, b, dt_bias, softplus_threshold=10.0)
    assert g[0, 1, 0].item() == -15.0


def test_working_precision_dtypes_and_rounding():
    gen = torch.Generator().manual_seed(0)
    T, HV = 7, 5
    a, b = (torch.randn(T, HV, generator=gen).bfloat16() for _ in range(2))
    A_log, dt_bias = torch.randn(HV, generator=gen), torch.randn(HV, generator=gen).bfloat16()
    g32, beta16 = R.fused_gdn_gating(A_log, a, b, dt_bias, precision=R.FP32)
    g64, beta64 = R.fused_gdn_gating(A_log, a, b, dt_bias)
    assert (g32.dtype, beta16.dtype, g64.dtype, beta64.dtype) == \
        (torch.float32, torch.bfloat16, torch.float64, torch.float64)
    # fp32 math then one rounding: g within a few fp32 ulps, beta within half a bf16 ulp (u = 2^-8).
    assert ((g32.double() - g64).abs() <= 4 * 2**-24 * g64.abs()).all()
    assert ((beta16.double() - beta64).abs() <= 2**-8 * beta64.abs()).all()
    assert not torch.equal(beta16.double(), beta64)


@pytest.mark.parametrize("arg, bad, match", [
    ("a", torch.zeros(2, 3, 1), r"^a: expected shape \[T, HV\]"),
    ("b", torch.zeros(2, 4), r"^b: expected shape \[2, 3\]"),
    ("A_log", torch.zeros(4), r"^A_log: expected shape \[3\]"),
    ("dt_bias", torch.zeros(1, 3), r"^dt_bias: expected shape \[3\]"),
    ("b", torch.zeros(2, 3, dtype=torch.int32), r"^b: expected a floating-point tensor"),
])
def test_errors_name_the_argument(arg, bad, match):
    args = dict(A_log=torch.zeros(3), a=torch.zeros(2, 3), b=torch.zeros(2, 3),
                dt_bias=torch.zeros(3))
    args[arg] = bad
    with pytest.raises(RuntimeError, match=match):
        R.fused_gdn_gating(**args)
