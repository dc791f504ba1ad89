"""Weight pack reference: the VNNI-2 index formula element by element, inverse.
(Error inputs: test_errors.py.)"""

import pytest
import torch

import cases
import reference as R


@pytest.mark.parametrize("D", [32, 96])
def test_pack_follows_the_index_formula(D):
    w = torch.arange(D * 4, dtype=torch.float32).view(D, 4)     # every element tells where it came from
    flat = R.causal_conv1d_weight_pack(w).flatten().tolist()
    for nb in range(D // 32):
        for k2 in range(2):
            for n in range(32):
                for p in range(2):
                    assert flat[((nb * 2 + k2) * 32 + n) * 2 + p] == w[nb * 32 + n, 2 * k2 + p]


@pytest.mark.parametrize("dtype", ["bf16", "fp16", "fp32"])
def test_unpack_inverts_pack(dtype):
    w = cases.build("causal_conv1d_weight_pack", dict(D=64, dtype=dtype))["weight"]
    packed = R.causal_conv1d_weight_pack(w)
    assert packed.shape == w.shape and packed.dtype == w.dtype
    assert not torch.equal(packed, w)
    assert torch.equal(R.causal_conv1d_weight_unpack(packed), w)
