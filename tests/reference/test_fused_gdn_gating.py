"""fused_gdn_gating reference: closed forms of g and beta, softplus parameters, working precision.
(Error inputs: tests/reference/test_errors.py.)"""

import math

import pytest
import torch

import cases
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
    kw = cases.build("fused_gdn_gating", dict(T=7, HV=5, dtype="bf16"))
    g32, beta16 = R.fused_gdn_gating(**kw, precision=R.FP32)
    g64, beta64 = R.fused_gdn_gating(**kw)
    assert (g32.dtype, beta16.dtype, g64.dtype, beta64.dtype) == \
        (torch.float32, torch.bfloat16, torch.float64, torch.float64)
    # fp32 math then one rounding: g within a few fp32 ulps, beta within half a bf16 ulp (u = 2^-8).
    assert ((g32.double() - g64).abs() <= 4 * 2**-24 * g64.abs()).all()
    assert ((beta16.double() - beta64).abs() <= 2**-8 * beta64.abs()).all()
    assert not torch.equal(beta16.double(), beta64)
