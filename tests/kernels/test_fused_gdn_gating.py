"""GDN gating kernel against the reference: dtypes, softplus parameters, strided inputs, errors,
opcheck."""

import pytest
import torch

import reference as R
from tests.kernels.checks import assert_near_baseline


def inputs(T, HV, dtype, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return (torch.rand(HV, generator=gen) * 2 - 1, (torch.randn(T, HV, generator=gen) * 4).to(dtype),
            torch.randn(T, HV, generator=gen).to(dtype), torch.randn(HV, generator=gen).to(dtype))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32], ids=str)
@pytest.mark.parametrize("softplus", [(1.0, 20.0), (2.0, 5.0), (0.5, 1.0)], ids=["default", "b2-t5", "b0.5-t1"])
def test_against_reference(ops, dtype, softplus):
    A_log, a, b, dt_bias = inputs(200, 48, dtype)
    g, beta = ops.fused_gdn_gating(A_log, a, b, dt_bias, *softplus)
    g64, beta64 = R.fused_gdn_gating(A_log, a, b, dt_bias, *softplus)
    g32, beta_base = R.fused_gdn_gating(A_log, a, b, dt_bias, *softplus, precision=R.FP32)
    assert g.dtype == torch.float32 and beta.dtype == dtype and g.shape == beta.shape == (1, 200, 48)
    assert_near_baseline(g, g64, g32, torch.float32, "g")
    assert_near_baseline(beta, beta64, beta_base, dtype, "beta")


def test_strided_inputs(ops):
    A_log, a, b, dt_bias = inputs(50, 16, torch.float32, seed=1)
    a_wide = torch.randn(50, 40)
    a_wide[:, 5:21] = a
    b_t = b.T.contiguous().T                                     # column-major view
    g, beta = ops.fused_gdn_gating(A_log, a_wide[:, 5:21], b_t, dt_bias)
    g64, beta64 = R.fused_gdn_gating(A_log, a, b, dt_bias)
    torch.testing.assert_close(g.double(), g64, rtol=2e-6, atol=1e-7)
    torch.testing.assert_close(beta.double(), beta64, rtol=2e-6, atol=1e-7)


@pytest.mark.parametrize("arg, bad, match", [
    ("a", torch.zeros(2, 3, 1), r"^a: expected shape \[T, HV\]"),
    ("b", torch.zeros(2, 4), r"^b: expected shape \[2, 3\]"),
    ("A_log", torch.zeros(4), r"^A_log: expected shape \[3\]"),
    ("dt_bias", torch.zeros(1, 3), r"^dt_bias: expected shape \[3\]"),
    ("b", torch.zeros(2, 3, dtype=torch.int32), r"^b: expected bfloat16, float16 or float32"),
    ("a", torch.zeros(2, 3, dtype=torch.float64), r"^a: expected bfloat16, float16 or float32"),
    ("A_log", torch.zeros(3, dtype=torch.int64), r"^A_log: expected a floating-point tensor"),
    ("A_log", torch.zeros(1, 3), r"^A_log: expected shape \[3\]"),
    ("dt_bias", torch.zeros(3, dtype=torch.int32), r"^dt_bias: expected a floating-point tensor"),
    ("b", torch.zeros(2, 3, dtype=torch.float64), r"^b: expected bfloat16, float16 or float32"),
    ("a", torch.zeros(3), r"^a: expected shape \[T, HV\]"),
])
def test_errors_name_the_argument(ops, arg, bad, match):
    args = dict(A_log=torch.zeros(3), a=torch.zeros(2, 3), b=torch.zeros(2, 3), dt_bias=torch.zeros(3))
    args[arg] = bad
    with pytest.raises(RuntimeError, match=match):
        ops.fused_gdn_gating(**args)


def test_softplus_beta_must_be_positive(ops):
    with pytest.raises(RuntimeError, match=r"^softplus_beta: must be positive"):
        ops.fused_gdn_gating(*inputs(2, 3, torch.float32), 0.0, 20.0)


def test_opcheck(ops):
    torch.library.opcheck(ops.fused_gdn_gating, inputs(7, 5, torch.bfloat16))
