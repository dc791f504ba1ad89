"""Weight pack reference: the VNNI-2 index formula element by element, inverse, errors."""

import pytest
import torch

import reference as R


@pytest.mark.parametrize("D", [32, 96])
def test_pack_follows_the_index_formula(D):
    w = torch.arange(D * 4, dtype=torch.float32).view(D, 4)
    flat = R.causal_conv1d_weight_pack(w).flatten().tolist()
    for nb in range(D // 32):
        for k2 in range(2):
            for n in range(32):
                for p in range(2):
                    assert flat[((nb * 2 + k2) * 32 + n) * 2 + p] == w[nb * 32 + n, 2 * k2 + p]


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32])
def test_unpack_inverts_pack(dtype):
    w = torch.randn(64, 4, generator=torch.Generator().manual_seed(0)).to(dtype)
    packed = R.causal_conv1d_weight_pack(w)
    assert packed.shape == w.shape and packed.dtype == dtype
    assert not torch.equal(packed, w)
    assert torch.equal(R.causal_conv1d_weight_unpack(packed), w)


@pytest.mark.parametrize("bad, match", [
    (torch.zeros(32, 1, 4), r"^weight: expected a 2-D \[D, W\] weight, got shape \[32, 1, 4\]"),
    (torch.zeros(32), r"^weight: expected a 2-D"),
    (torch.zeros(48, 4), r"^weight: VNNI packing needs D % 32 == 0, got D=48"),
    (torch.zeros(32, 3), r"^weight: VNNI packing needs width 4, got 3"),
    (torch.zeros(32, 4, dtype=torch.int32), r"^weight: expected a floating-point tensor"),
])
def test_errors_name_the_argument(bad, match):
    with pytest.raises(RuntimeError, match=match):
        R.causal_conv1d_weight_pack(bad)
