"""Conv prefill kernel against the reference: layouts, slot strides, pads, optionals, dtypes,
channel tails, varlen mixes, widths, packed weights; error inputs; opcheck; torch.compile."""

import itertools

import pytest
import torch

import reference as R
from cases.conv import conv_states, conv_weights, varlen_x
from cases.layouts import CONV_LAYOUTS
from tests.kernels.checks import (assert_compiles_like_eager, assert_pool_invariants,
                                  assert_within_bound, conv_bound, meta, underflow_inputs,
                                  UNDERFLOWS)

i32 = dict(dtype=torch.int32)
DTYPES = [torch.bfloat16, torch.float16, torch.float32]
DT = {torch.bfloat16: "bf16", torch.float16: "fp16", torch.float32: "fp32"}


def run_and_check(ops, x, w, bias, pool, qsl, idx, init, silu, packed=False):
    """Run kernel and reference on the same inputs; check out within bound and the pool exactly."""
    weight = R.causal_conv1d_weight_pack(w) if packed else w
    args = (x, weight, bias, pool, qsl, idx, init, silu, -1, packed)
    want_out, want_pool = R.causal_conv1d_fwd(*args)
    abs_sum, _ = R.causal_conv1d_fwd(x.abs(), weight.abs(), None if bias is None else bias.abs(),
                                     None if pool is None else pool.abs(), qsl, idx, init, False,
                                     -1, packed)
    before = None if pool is None else meta(pool)
    x_copy = x.clone()
    out = ops.causal_conv1d_fwd(*args)
    assert out.dtype == x.dtype and out.shape == x.shape
    bound = conv_bound(want_out, abs_sum + (0 if bias is None else bias.abs().double()[:, None]),
                       x.dtype, w.shape[1], silu)
    assert_within_bound(out, want_out, bound, "out")
    assert torch.equal(x, x_copy), "x was modified"
    if pool is not None:
        assert_pool_invariants(pool, want_pool, before, "conv_states")
    return out


@pytest.mark.parametrize("dtype", DTYPES, ids=DT.get)
@pytest.mark.parametrize("layout", CONV_LAYOUTS)
@pytest.mark.parametrize("D", [32, 44, 8192 + 16], ids=lambda d: f"D{d}")  # 44: a tail at any vector width
def test_varlen_layouts_pads_and_tails(ops, D, layout, dtype):
    lengths = [3, 0, 1, 5, 2, 4, 130]
    x, qsl = varlen_x(lengths, D, dtype=dtype)
    w, bias = conv_weights(D, 4, dtype=dtype)
    pool = conv_states(9, D, 5, layout=layout, slot_gap=7, dtype=dtype)
    idx = torch.tensor([8, 0, 3, -1, 5, 1, 6], **i32)
    init = torch.tensor([True, True, False, True, True, False, True])
    run_and_check(ops, x, w, bias, pool, qsl, idx, init, silu=True)


@pytest.mark.parametrize("W", [2, 3, 4, 5])
@pytest.mark.parametrize("silu", [False, True], ids=["linear", "silu"])
def test_widths(ops, W, silu):
    x, qsl = varlen_x([1, 2, 7, 66], 48, dtype=torch.bfloat16)
    w, bias = conv_weights(48, W, dtype=torch.bfloat16)
    pool = conv_states(4, 48, W + 1, dtype=torch.bfloat16)
    run_and_check(ops, x, w, bias, pool, qsl, torch.tensor([2, 3, 0, 1], **i32),
                  torch.tensor([True, True, False, True]), silu)


@pytest.mark.parametrize("dtype", DTYPES, ids=DT.get)
def test_packed_weight(ops, dtype):
    x, qsl = varlen_x([5, 70], 64, dtype=dtype)
    w, bias = conv_weights(64, 4, dtype=dtype)
    pool = conv_states(2, 64, 3, dtype=dtype)
    run_and_check(ops, x, w, bias, pool, qsl, None, torch.tensor([True, True]), True, packed=True)


def test_batch_mode_reads_and_writes_the_indexed_slot(ops):
    B, D, L = 3, 40, 6
    x = torch.randn(B, L, D).bfloat16().transpose(1, 2)            # [B, D, L], channels contiguous
    w, bias = conv_weights(D, 4, dtype=torch.bfloat16)
    pool = conv_states(5, D, 4, layout="DS", slot_gap=3, dtype=torch.bfloat16)
    run_and_check(ops, x, w, bias, pool, None, torch.tensor([4, 0, 2], **i32),
                  torch.tensor([True, False, True]), False)


def test_non_token_major_x_is_read_correctly(ops):
    x, qsl = varlen_x([4, 9], 40, dtype=torch.float32)
    x = x.contiguous()                                          # [D, T] with T innermost
    w, bias = conv_weights(40, 4)
    out = run_and_check(ops, x, w, bias, conv_states(2, 40, 3), qsl, None,
                        torch.tensor([True, True]), False)
    assert out.stride() == (1, 40)                              # output is always token-major


def test_long_sequence_tiles_and_split_prefill(ops):
    """A sequence spanning many token tiles, then the same split over two calls."""
    D, T = 64, 1000
    x, qsl = varlen_x([T], D, dtype=torch.float32)
    w, bias = conv_weights(D, 4)
    pool = conv_states(1, D, 3)
    whole = run_and_check(ops, x, w, bias, pool.clone(), qsl, None, torch.tensor([True]), True)
    first = ops.causal_conv1d_fwd(x[:, :333], w, bias, pool, torch.tensor([0, 333], **i32), None,
                                  torch.tensor([True]), True, -1, False)
    second = ops.causal_conv1d_fwd(x[:, 333:], w, bias, pool, torch.tensor([0, T - 333], **i32),
                                   None, torch.tensor([True]), True, -1, False)
    assert torch.equal(torch.cat([first, second], 1), whole)


OPTIONALS = ("bias", "conv_states", "query_start_loc", "cache_indices", "has_initial_state")


@pytest.mark.parametrize("present", list(itertools.product([False, True], repeat=5)),
                         ids=lambda p: "-".join(n for n, on in zip(OPTIONALS, p) if on) or "none")
def test_every_optional_combination(ops, present):
    """Each combination works like the reference or raises the reference's error."""
    D = 32
    x, qsl = varlen_x([3, 5], D, dtype=torch.bfloat16)
    w, bias = conv_weights(D, 4, dtype=torch.bfloat16)
    given = dict(zip(OPTIONALS, present))
    kw = dict(bias=bias, conv_states=conv_states(3, D, 3, dtype=torch.bfloat16, slot_gap=2),
              query_start_loc=qsl, cache_indices=torch.tensor([2, 0], **i32),
              has_initial_state=torch.tensor([True, False]))
    kw = {n: (v if given[n] else None) for n, v in kw.items()}
    if not given["query_start_loc"]:
        x = x.T.reshape(2, 4, D).transpose(1, 2)
    try:
        R.causal_conv1d_fwd(x, w, **kw)
    except RuntimeError as e:
        arg = str(e).split(":")[0]
        with pytest.raises(RuntimeError, match=rf"^{arg}: "):
            ops.causal_conv1d_fwd(x, w, kw["bias"], kw["conv_states"], kw["query_start_loc"],
                                  kw["cache_indices"], kw["has_initial_state"], False, -1, False)
        return
    run_and_check(ops, x, w, kw["bias"], kw["conv_states"], kw["query_start_loc"],
                  kw["cache_indices"], kw["has_initial_state"], False)


ERRORS = [
    (dict(weight=torch.zeros(32, 1, 4).bfloat16()), r"^weight: expected a 2-D \[D, W\] weight"),
    (dict(weight=torch.zeros(16, 4).bfloat16()), r"^weight: expected 32 channels, got 16"),
    (dict(weight=torch.zeros(32, 4)), r"^weight: expected x's dtype BFloat16, got Float"),
    (dict(weight=torch.zeros(32, 1).bfloat16()), r"^weight: width must be in \[2, 16\]"),
    (dict(weight=torch.zeros(32, 3).bfloat16(), is_weight_packed=True), r"^weight: VNNI packing needs width 4"),
    (dict(bias=torch.zeros(33).bfloat16()), r"^bias: expected shape \[32\]"),
    (dict(bias=torch.zeros(32)), r"^bias: expected x's dtype"),
    (dict(conv_states=torch.zeros(3, 32, 2).bfloat16()), r"^conv_states: state_len 2 is shorter"),
    (dict(conv_states=torch.zeros(3, 16, 3).bfloat16()), r"^conv_states: expected shape \[N, 32, state_len\]"),
    (dict(conv_states=torch.zeros(3, 32, 3)), r"^conv_states: expected x's dtype"),
    (dict(cache_indices=torch.tensor([0, 3], **i32)), r"^cache_indices: index 3 at row 1 is outside \[0, 3\)"),
    (dict(cache_indices=torch.tensor([-5, 0], **i32)), r"^cache_indices: index -5 at row 0"),
    (dict(cache_indices=torch.tensor([1, 1], **i32)), r"^cache_indices: slot 1 is used by rows 0 and 1"),
    (dict(cache_indices=torch.tensor([0, 1])), r"^cache_indices: expected dtype Int"),
    (dict(has_initial_state=torch.tensor([1, 0], **i32)), r"^has_initial_state: expected a bool tensor"),
    (dict(has_initial_state=torch.tensor([True])), r"^has_initial_state: expected shape \[2\]"),
    (dict(query_start_loc=torch.tensor([0, 3, 9], **i32)), r"^query_start_loc: must end at the token count 8"),
    (dict(query_start_loc=torch.tensor([0, 5, 3, 8], **i32)), r"^query_start_loc: must be non-decreasing"),
    (dict(query_start_loc=None), r"^x: without query_start_loc expected a batch \[B, D, L\]"),
    (dict(x=torch.zeros(32, 8, dtype=torch.float64)), r"^x: expected bfloat16, float16 or float32"),
    (dict(conv_states=None), r"^cache_indices: given without conv_states"),
]


@pytest.mark.parametrize("change, match", ERRORS, ids=[m.split(":")[0].strip("^") + f"-{i}" for i, (_, m) in enumerate(ERRORS)])
def test_errors_name_the_argument(ops, change, match):
    x, qsl = varlen_x([3, 5], 32, dtype=torch.bfloat16)
    kw = dict(x=x, weight=conv_weights(32, 4, dtype=torch.bfloat16)[0], bias=None,
              conv_states=conv_states(3, 32, 3, dtype=torch.bfloat16), query_start_loc=qsl,
              cache_indices=torch.tensor([2, 0], **i32), has_initial_state=None,
              silu_activation=False, pad_slot_id=-1, is_weight_packed=False)
    kw.update(change)
    with pytest.raises(RuntimeError, match=match):
        ops.causal_conv1d_fwd(**kw)


def sample_args(layout="SD"):
    x, qsl = varlen_x([3, 0, 6], 64, dtype=torch.bfloat16)
    w, bias = conv_weights(64, 4, dtype=torch.bfloat16)
    return (x, w, bias, conv_states(4, 64, 3, layout=layout, dtype=torch.bfloat16), qsl,
            torch.tensor([3, 1, -1], **i32), torch.tensor([True, False, True]), True, -1, False)


@pytest.mark.parametrize("layout", CONV_LAYOUTS)
def test_opcheck(ops, layout):
    torch.library.opcheck(ops.causal_conv1d_fwd, sample_args(layout))
    x, w, *_ = sample_args()
    torch.library.opcheck(ops.causal_conv1d_fwd, (x[None].expand(2, -1, -1).contiguous(), w,
                                                  None, None, None, None, None, False, -1, False))


def test_torch_compile_fullgraph(ops):
    assert_compiles_like_eager(ops.causal_conv1d_fwd, sample_args(), pool_index=3)


@pytest.mark.parametrize("packed", [False, True], ids=["plain", "packed"])
@pytest.mark.parametrize("dtype", DTYPES, ids=DT.get)
def test_silu_over_the_whole_range(ops, dtype, packed):
    """An identity conv isolates SiLU: every finite value of a wide sweep within the dtype's
    rounding of the float64 silu, and ±inf, NaN, ±0 exactly as torch gives them. Packed bf16
    weights reach the dot-product prefill and its own SiLU."""
    info = torch.finfo(dtype)
    sweep = torch.cat([torch.linspace(-100, 100, 4001), torch.logspace(-30, 38, 300),
                       -torch.logspace(-30, 38, 300),
                       torch.tensor([0.0, -0.0, float("inf"), -float("inf"), float("nan"),
                                     info.max, -info.max, info.tiny, -info.tiny])])
    sweep = sweep.to(dtype)
    D = 32
    B = -(-sweep.numel() // D)
    x = torch.zeros(B * D, dtype=dtype)
    x[:sweep.numel()] = sweep
    x = x.view(B, 1, D).transpose(1, 2)                         # [B, D, 1]: one token per row,
    w = torch.zeros(D, 4, dtype=dtype)                          # so no ∞ meets a zero tap (0·∞)
    w[:, 3] = 1
    weight = R.causal_conv1d_weight_pack(w) if packed else w
    out = ops.causal_conv1d_fwd(x, weight, None, None, None, None, None, True, -1, packed)
    want = torch.nn.functional.silu(x.double())
    finite = torch.isfinite(want)
    assert torch.equal(torch.isnan(out), torch.isnan(want))
    infinite = ~finite & ~torch.isnan(want)
    assert torch.equal(out[infinite].double(), want[infinite])
    # One rounding plus a few fp32 ulps of SiLU — or, where even torch's own SiLU in this dtype
    # (the same-precision baseline) is further off (subnormal tails), twice the baseline's error.
    baseline = torch.nn.functional.silu(x.float()).to(dtype).double()
    bound = torch.maximum(conv_bound(want, want.abs(), dtype, 0, silu=True), 2 * (baseline - want).abs())
    got, ref = out.double()[finite], want[finite]
    over = (got - ref).abs() > bound[finite]
    # values that overflow the output dtype round to inf, as torch's own rounding would
    overflow = ref.abs() > info.max
    assert not (over & ~overflow).any(), (got[over][:5], ref[over][:5])


@pytest.mark.parametrize("silu", [False, True], ids=["linear", "silu"])
@pytest.mark.parametrize("kind", UNDERFLOWS)
def test_packed_bf16_underflow(ops, kind, silu):
    """Results made of bf16 subnormals or of products below the normal range: the dot-product
    prefill path (vdpbf16ps flushes them) must hand such work to the fp32 path."""
    D = 64
    x, qsl = varlen_x([5, 70], D, dtype=torch.bfloat16)
    w, bias = conv_weights(D, 4, dtype=torch.bfloat16)
    pool = conv_states(2, D, 3, dtype=torch.bfloat16)
    x, pool, w, bias = underflow_inputs(kind, x, pool, w, bias)
    run_and_check(ops, x, w, bias, pool, qsl, None, torch.tensor([True, True]), silu, packed=True)
