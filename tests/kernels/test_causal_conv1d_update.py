"""Conv decode kernel against the reference: 2-D and speculative 3-D, layouts, slot strides, pads,
wide states, dtypes, channel tails, widths; error inputs; opcheck; torch.compile."""

import pytest
import torch

import reference as R
from cases.conv import conv_states, conv_weights
from cases.layouts import CONV_LAYOUTS
from tests.kernels.checks import (assert_compiles_like_eager, assert_pool_invariants,
                                  assert_within_bound, conv_bound, meta, underflow_inputs,
                                  UNDERFLOWS)

i32 = dict(dtype=torch.int32)
DTYPES = [torch.bfloat16, torch.float16, torch.float32]
DT = {torch.bfloat16: "bf16", torch.float16: "fp16", torch.float32: "fp32"}


def rand_x(*shape, dtype, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)).to(dtype)


def run_and_check(ops, x, pool, w, bias, silu, accepted, idx, packed=False):
    weight = R.causal_conv1d_weight_pack(w) if packed else w
    args = (x, pool, weight, bias, silu, accepted, idx, -1, packed)
    want_out, want_pool = R.causal_conv1d_update(*args)
    abs_sum, _ = R.causal_conv1d_update(x.abs(), pool.abs(), weight.abs(),
                                        None if bias is None else bias.abs(), False, accepted, idx,
                                        -1, packed)
    if bias is not None:
        abs_sum = abs_sum + bias.abs().double()
    before, x_copy = meta(pool), x.clone()
    out = ops.causal_conv1d_update(*args)
    assert out.dtype == x.dtype and out.shape == x.shape
    assert_within_bound(out, want_out, conv_bound(want_out, abs_sum, x.dtype, w.shape[1]), "out")
    assert torch.equal(x, x_copy), "x was modified"
    assert_pool_invariants(pool, want_pool, before, "conv_states")
    return out


@pytest.mark.parametrize("dtype", DTYPES, ids=DT.get)
@pytest.mark.parametrize("layout", CONV_LAYOUTS)
@pytest.mark.parametrize("D", [32, 44, 8192 + 16], ids=lambda d: f"D{d}")  # 44: a tail at any vector width
def test_update_layouts_pads_tails(ops, D, layout, dtype):
    x = rand_x(5, D, dtype=dtype)
    w, bias = conv_weights(D, 4, dtype=dtype)
    pool = conv_states(8, D, 6, layout=layout, slot_gap=5, dtype=dtype)   # wide: 3 extra columns
    run_and_check(ops, x, pool, w, bias, True, None, torch.tensor([7, -1, 0, 3, 5], **i32))


@pytest.mark.parametrize("dtype", DTYPES, ids=DT.get)
@pytest.mark.parametrize("layout", CONV_LAYOUTS)
def test_speculative_update(ops, layout, dtype):
    D, L = 40, 3
    x = rand_x(4, L, D, dtype=dtype)
    w, bias = conv_weights(D, 4, dtype=dtype)
    pool = conv_states(6, D, 5, layout=layout, slot_gap=3, dtype=dtype)
    run_and_check(ops, x, pool, w, bias, True, torch.tensor([1, 2, 3, 2], **i32),
                  torch.tensor([5, 0, -1, 2], **i32))


@pytest.mark.parametrize("W", [2, 3, 4, 5])
def test_widths_and_identity_indices(ops, W):
    x = rand_x(3, 48, dtype=torch.bfloat16)
    w, bias = conv_weights(48, W, dtype=torch.bfloat16)
    run_and_check(ops, x, conv_states(4, 48, W - 1, dtype=torch.bfloat16), w, bias, False, None,
                  None)


def test_packed_weight_no_bias(ops):
    x = rand_x(2, 64, dtype=torch.bfloat16)
    w, _ = conv_weights(64, 4, dtype=torch.bfloat16)
    run_and_check(ops, x, conv_states(3, 64, 3, dtype=torch.bfloat16), w, None, True, None,
                  torch.tensor([2, 0], **i32), packed=True)


def test_row_strided_x(ops):
    """x rows sliced out of a wider buffer (e.g. a packed projection output)."""
    x = rand_x(3, 100, dtype=torch.float32)[:, 10:50]
    w, bias = conv_weights(40, 4)
    run_and_check(ops, x, conv_states(3, 40, 3), w, bias, True, None, torch.tensor([1, 2, 0], **i32))


ERRORS = [
    (dict(conv_state_indices=torch.tensor([0, 5], **i32)), r"^conv_state_indices: index 5 at row 1 is outside"),
    (dict(conv_state_indices=torch.tensor([-3, 0], **i32)), r"^conv_state_indices: index -3"),
    (dict(conv_state_indices=torch.tensor([2, 2], **i32)), r"^conv_state_indices: slot 2 is used by rows 0 and 1"),
    (dict(conv_state_indices=torch.tensor([2], **i32)), r"^conv_state_indices: expected shape \[2\]"),
    (dict(conv_state_indices=None, conv_states=torch.zeros(1, 32, 4).bfloat16()), r"^conv_state_indices: absent, so rows use slots 0..1"),
    (dict(num_accepted_tokens=torch.ones(2, **i32)), r"^num_accepted_tokens: only goes with a 3-D"),
    (dict(x=torch.zeros(2, 3, 32).bfloat16()), r"^num_accepted_tokens: is required with a 3-D"),
    (dict(x=torch.zeros(2, 3, 32).bfloat16(), num_accepted_tokens=torch.tensor([1, 4], **i32)), r"^num_accepted_tokens: row 1: 4 is outside \[1, 2\]"),
    (dict(x=torch.zeros(2, 3, 32).bfloat16(), num_accepted_tokens=torch.tensor([0, 1], **i32)), r"^num_accepted_tokens: row 0: 0 is outside"),
    (dict(x=torch.zeros(2, 5, 32).bfloat16(), num_accepted_tokens=torch.ones(2, **i32)), r"^conv_states: state_len 4 is shorter than L = 5"),
    (dict(weight=torch.zeros(32, 1, 4).bfloat16()), r"^weight: expected a 2-D"),
    (dict(x=torch.zeros(2, 16).bfloat16()), r"^weight: expected 16 channels, got 32"),
    (dict(x=torch.zeros(2).bfloat16()), r"^x: expected \[B, D\] or \[B, L, D\]"),
    (dict(x=torch.zeros(32, 2).bfloat16().T), r"^x: channels must be contiguous"),
    (dict(bias=torch.zeros(2, 32).bfloat16()), r"^bias: expected shape \[32\]"),
    (dict(conv_states=torch.zeros(3, 32, 4)), r"^conv_states: expected x's dtype"),
    (dict(conv_states=torch.zeros(3, 32, 2).bfloat16()), r"^conv_states: state_len 2 is shorter"),
]


@pytest.mark.parametrize("change, match", ERRORS, ids=[m.split(":")[0].strip("^") + f"-{i}" for i, (_, m) in enumerate(ERRORS)])
def test_errors_name_the_argument(ops, change, match):
    kw = dict(x=torch.zeros(2, 32).bfloat16(), conv_states=conv_states(3, 32, 4, dtype=torch.bfloat16),
              weight=conv_weights(32, 4, dtype=torch.bfloat16)[0], bias=None, silu_activation=False,
              num_accepted_tokens=None, conv_state_indices=torch.tensor([2, 0], **i32),
              pad_slot_id=-1, is_weight_packed=False)
    kw.update(change)
    with pytest.raises(RuntimeError, match=match):
        ops.causal_conv1d_update(**kw)


def sample_args(spec=False, layout="SD"):
    w, bias = conv_weights(64, 4, dtype=torch.bfloat16)
    x = rand_x(3, 2, 64, dtype=torch.bfloat16) if spec else rand_x(3, 64, dtype=torch.bfloat16)
    acc = torch.tensor([1, 2, 1], **i32) if spec else None
    return (x, conv_states(4, 64, 4, layout=layout, dtype=torch.bfloat16), w, bias, True, acc,
            torch.tensor([3, -1, 0], **i32), -1, False)


@pytest.mark.parametrize("spec", [False, True], ids=["2d", "3d"])
@pytest.mark.parametrize("layout", CONV_LAYOUTS)
def test_opcheck(ops, spec, layout):
    torch.library.opcheck(ops.causal_conv1d_update, sample_args(spec, layout))


def test_torch_compile_fullgraph(ops):
    assert_compiles_like_eager(ops.causal_conv1d_update, sample_args(), pool_index=1)


def test_pools_whose_slots_share_storage_are_rejected(ops):
    w, _ = conv_weights(32, 4)
    x = torch.ones(2, 32)
    idx = torch.tensor([0, 1], **i32)
    with pytest.raises(RuntimeError, match=r"^conv_states: elements overlap in memory"):
        ops.causal_conv1d_update(x, torch.zeros(1, 32, 3).expand(2, 32, 3), w, None, False, None,
                                 idx, -1, False)
    squeezed = torch.zeros(200).as_strided((2, 32, 3), (50, 1, 32))   # slot stride < extent 96
    with pytest.raises(RuntimeError, match=r"^conv_states: slot stride 50 is smaller"):
        ops.causal_conv1d_update(x, squeezed, w, None, False, None, idx, -1, False)
    with pytest.raises(RuntimeError, match=r"^conv_states: expected shape \[N, D, state_len\]"):
        ops.causal_conv1d_update(x, torch.zeros(()), w, None, False, None, idx, -1, False)


def test_single_channel(ops):
    x = torch.randn(1, 2).T                                        # [2, 1], strides (1, 2)
    w, bias = conv_weights(1, 4)
    run_and_check(ops, x, conv_states(3, 1, 3), w, bias, True, None, torch.tensor([2, 0], **i32))


@pytest.mark.parametrize("silu", [False, True], ids=["linear", "silu"])
@pytest.mark.parametrize("B", [1, 3, 4])
def test_packed_bf16_few_rows(ops, B, silu):
    """The production case with few rows (bf16, packed width-4 weights, SD pool), which on
    AVX512-BF16 machines uses the weights' VNNI pairs directly in dot products."""
    D = 2048 + 64
    x = rand_x(B, D, dtype=torch.bfloat16, seed=B)
    w, bias = conv_weights(D, 4, dtype=torch.bfloat16)
    pool = conv_states(6, D, 3, layout="SD", slot_gap=9, dtype=torch.bfloat16)
    slots = [5, -1, 0, 2][:B]
    run_and_check(ops, x, pool, w, bias, silu, None, torch.tensor(slots, **i32), packed=True)


@pytest.mark.parametrize("silu", [False, True], ids=["linear", "silu"])
@pytest.mark.parametrize("kind", UNDERFLOWS)
@pytest.mark.parametrize("B", [1, 8])
def test_packed_bf16_underflow(ops, B, kind, silu):
    """Results made of bf16 subnormals or of products below the normal range: the dot-product
    decode path (vdpbf16ps flushes them) must redo such steps in fp32."""
    D = 64
    w, bias = conv_weights(D, 4, dtype=torch.bfloat16)
    pool = conv_states(B, D, 3, layout="SD", dtype=torch.bfloat16)
    x, pool, w, bias = underflow_inputs(kind, rand_x(B, D, dtype=torch.bfloat16), pool, w, bias)
    run_and_check(ops, x, pool, w, bias, silu, None, torch.arange(B, **i32), packed=True)
