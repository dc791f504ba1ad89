"""Metrics on hand-made tensors: ULP distances (bf16 included), errors, non-finite classes."""

import math

import numpy as np
import pytest
import torch

from harness.metrics import bit_mismatches, measure, ulp_distance


def test_ulp_distance_bf16_by_hand():
    one = torch.tensor([1.0], dtype=torch.bfloat16)
    next_up = torch.tensor([1.0 + 2**-7], dtype=torch.bfloat16)     # bf16 has 7 stored bits
    assert ulp_distance(next_up, one.double()).item() == 1
    assert ulp_distance(one, torch.tensor([1.0 + 2**-5], dtype=torch.float64)).item() == 4
    # Across zero: +0 and −0 are the same point; the two smallest subnormals are 2 apart.
    assert ulp_distance(torch.tensor([-0.0], dtype=torch.bfloat16), torch.tensor([0.0])).item() == 0
    tiny = 2.0**-133   # bf16's smallest subnormal
    assert ulp_distance(torch.tensor([tiny], dtype=torch.bfloat16),
                        torch.tensor([-tiny], dtype=torch.float64)).item() == 2


@pytest.mark.parametrize("dtype,np_dtype,most", [(torch.float16, np.float16, 30000),
                                                 (torch.float32, np.float32, 2**30)])
def test_ulp_distance_matches_numpy(dtype, np_dtype, most):
    gen = torch.Generator().manual_seed(0)
    a = (torch.randn(1000, generator=gen) * 10).to(dtype)
    b = (a.double() * (1 + torch.randn(1000, generator=gen, dtype=torch.float64) * 1e-3)).to(dtype)
    want = np.testing.assert_array_max_ulp(a.numpy().astype(np_dtype), b.numpy().astype(np_dtype),
                                           maxulp=most)
    assert torch.equal(ulp_distance(a, b.double()), torch.from_numpy(want.astype(np.int64)).reshape(-1))


def test_errors_by_hand():
    oracle = torch.tensor([1.0, 2.5, 4.0, 0.0], dtype=torch.float64)
    got = torch.tensor([1.0, 2.0, 4.0, 0.0])
    m = measure(got, oracle, baseline=got)
    assert m["max_abs"] == 0.5 and m["max_rel"] == 0.2
    assert m["rel_rms"] == pytest.approx(0.5 / math.sqrt(1 + 6.25 + 16))
    assert m["scale"] == 4.0 and m["base_max_abs"] == 0.5
    assert m["max_ulp"] == 2**21          # 2.0 vs 2.5 in fp32: 0.5 / ulp(2) = 0.5 / 2^-22
    assert (m["nan"], m["inf"], m["class_mismatch"]) == (0, 0, 0)


def test_non_finite_judged_by_class_against_the_baseline():
    oracle = torch.tensor([1.0, 1e300, float("inf"), 2.0], dtype=torch.float64)
    baseline = torch.tensor([1.0, float("inf"), float("inf"), 2.0])     # an overflow it also makes
    got = torch.tensor([1.0, float("inf"), float("inf"), float("nan")])
    m = measure(got, oracle, baseline)
    assert (m["nan"], m["inf"], m["class_mismatch"]) == (1, 2, 1)
    assert m["max_abs"] == 0.0            # only element 0 is finite everywhere
    m = measure(baseline, oracle, baseline)
    assert m["class_mismatch"] == 0


def test_bit_mismatches_see_nan_payloads_and_signed_zero():
    a = torch.tensor([0.0, float("nan")])
    b = torch.tensor([-0.0, float("nan")])
    assert bit_mismatches(a, a.clone()) == 0
    assert bit_mismatches(a, b) == 1
    assert bit_mismatches(a, a.double()) == 2       # another dtype never matches


def test_an_exact_copy_may_carry_another_nan_payload_but_a_repeat_may_not():
    import torch
    from harness.metrics import bit_mismatches
    a = torch.tensor([1.0, float("nan")], dtype=torch.bfloat16)
    b = a.clone()
    b.view(torch.int16)[1] = -1                       # 0xffff: NaN with another payload
    assert torch.isnan(b[1]) and bit_mismatches(a, b) == 1
    assert bit_mismatches(a, b, any_nan=True) == 0
    b[0] = 2.0
    assert bit_mismatches(a, b, any_nan=True) == 1
