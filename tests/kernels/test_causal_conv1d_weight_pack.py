"""Weight pack kernel: equal to the reference permutation for every dtype; errors; opcheck."""

import pytest
import torch

import reference as R

DTYPES = [torch.bfloat16, torch.float16, torch.float32]


@pytest.mark.parametrize("D", [32, 64, 8192])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_equals_reference(ops, D, dtype):
    w = torch.randn(D, 4).to(dtype)
    packed = ops.causal_conv1d_weight_pack(w)
    assert torch.equal(packed, R.causal_conv1d_weight_pack(w))
    assert torch.equal(R.causal_conv1d_weight_unpack(packed), w)


def test_non_contiguous_weight_is_read_by_value(ops):
    w = torch.randn(4, 64).T                                     # [64, 4] with strides (1, 64)
    assert torch.equal(ops.causal_conv1d_weight_pack(w), R.causal_conv1d_weight_pack(w))


@pytest.mark.parametrize("bad, match", [
    (torch.zeros(32, 1, 4), r"^weight: expected a 2-D \[D, W\] weight, got shape \[32, 1, 4\]"),
    (torch.zeros(32), r"^weight: expected a 2-D"),
    (torch.zeros(48, 4), r"^weight: VNNI packing needs D % 32 == 0, got D=48"),
    (torch.zeros(32, 3), r"^weight: VNNI packing needs width 4, got 3"),
    (torch.zeros(32, 4, dtype=torch.int32), r"^weight: expected bfloat16, float16 or float32"),
    (torch.zeros(32, 4, dtype=torch.float64), r"^weight: expected bfloat16, float16 or float32"),
    (torch.tensor(1.0), r"^weight: expected a 2-D"),
    (torch.zeros(31, 4), r"^weight: VNNI packing needs D % 32 == 0, got D=31"),
    (torch.zeros(32, 8), r"^weight: VNNI packing needs width 4, got 8"),
    (torch.zeros(32, 4, dtype=torch.bool), r"^weight: expected bfloat16, float16 or float32"),
    (torch.zeros(32, 4, dtype=torch.complex64), r"^weight: expected bfloat16, float16 or float32"),
])
def test_errors_name_the_argument(ops, bad, match):
    with pytest.raises(RuntimeError, match=match):
        ops.causal_conv1d_weight_pack(bad)


def test_empty_weight_packs_to_empty(ops):
    assert ops.causal_conv1d_weight_pack(torch.zeros(0, 4)).shape == (0, 4)


def test_opcheck(ops):
    torch.library.opcheck(ops.causal_conv1d_weight_pack, (torch.randn(64, 4).bfloat16(),))
