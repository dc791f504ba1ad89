"""Conv prefill reference: F.conv1d equality, a history worked by hand, state write-back rules,
SD == DS, strided slots, pads, optionals, split prefill continuity."""

import itertools

import pytest
import torch
import torch.nn.functional as F

import reference as R
from cases.conv import conv_states, conv_weights, varlen_x
from cases.layouts import CONV_LAYOUTS, conv_pool

f64 = dict(dtype=torch.float64)
i32 = dict(dtype=torch.int32)


@pytest.mark.parametrize("silu", [False, True], ids=["linear", "silu"])
@pytest.mark.parametrize("W", [2, 3, 4])
def test_batch_without_state_equals_torch_conv1d(W, silu):
    B, D, L = 3, 40, 17
    x = torch.randn(B, D, L, generator=torch.Generator().manual_seed(W), **f64)
    w, bias = conv_weights(D, W, dtype=torch.float64)
    out, states = R.causal_conv1d_fwd(x, w, bias, silu_activation=silu)
    want = F.conv1d(x, w[:, None, :], bias, padding=W - 1, groups=D)[..., :L]
    torch.testing.assert_close(out, F.silu(want) if silu else want, rtol=1e-14, atol=1e-14)
    assert states is None


def test_history_and_write_back_by_hand():
    # D = 1, W = 4, taps (1, 10, 100, 1000): y_t = h-window · taps.
    w = torch.tensor([[1.0, 10.0, 100.0, 1000.0]], **f64)
    states = torch.tensor([[[1.0, 2.0, 3.0, 99.0]], [[4.0, 5.0, 6.0, 99.0]]], **f64)  # state_len 4
    x = torch.tensor([[7.0, 8.0]], **f64)           # one sequence of 2 tokens, slot 1
    out, new = R.causal_conv1d_fwd(x, w, None, states, torch.tensor([0, 2], **i32),
                                   torch.tensor([1], **i32), torch.tensor([True]))
    # xp = [4, 5, 6, 7, 8]: y0 = 4 + 50 + 600 + 7000, y1 = 5 + 60 + 700 + 8000
    assert out.tolist() == [[7654.0, 8765.0]]
    # slot 1's first W-1 columns become xp[-3:] = (6, 7, 8); column 3 and slot 0 untouched
    assert new.tolist() == [[[1.0, 2.0, 3.0, 99.0]], [[6.0, 7.0, 8.0, 99.0]]]
    # the same without history: zeros shift in
    out, new = R.causal_conv1d_fwd(x, w, None, states, torch.tensor([0, 2], **i32),
                                   torch.tensor([1], **i32), torch.tensor([False]))
    assert out.tolist() == [[7000.0, 8700.0]]
    assert new[1].tolist() == [[0.0, 7.0, 8.0, 99.0]]


@pytest.mark.parametrize("has_init", [True, False])
def test_short_and_empty_sequences_shift_the_history(has_init):
    w = torch.ones(1, 4, **f64)
    states = torch.tensor([[[1.0, 2.0, 3.0]], [[4.0, 5.0, 6.0]]], **f64)
    x = torch.tensor([[9.0]], **f64)                       # lengths 0 (slot 0) and 1 (slot 1)
    _, new = R.causal_conv1d_fwd(x, w, None, states, torch.tensor([0, 0, 1], **i32), None,
                                 torch.tensor([has_init, has_init]))
    if has_init:
        assert new.tolist() == [[[1.0, 2.0, 3.0]], [[5.0, 6.0, 9.0]]]
    else:   # no history: an empty sequence zeroes its slot, a short one shifts zeros in
        assert new.tolist() == [[[0.0, 0.0, 0.0]], [[0.0, 0.0, 9.0]]]


def test_layouts_and_slot_strides_agree():
    lengths, D, W, N = [3, 0, 1, 9, 2], 40, 4, 7
    x, qsl = varlen_x(lengths, D)
    w, bias = conv_weights(D, W)
    idx = torch.tensor([6, 0, 2, 5, -1], **i32)
    init = torch.tensor([True, True, False, True, True])
    logical = conv_states(N, D, 5).contiguous()
    results = []
    for layout, gap in itertools.product(CONV_LAYOUTS, [0, 13]):
        pool = conv_pool(logical, layout, gap)
        assert (pool.stride(-2) == 1) == (layout == "SD") and pool.stride(0) == D * 5 + gap
        results.append(R.causal_conv1d_fwd(x, w, bias, pool, qsl, idx, init, True))
    for out, new in results[1:]:
        assert torch.equal(out, results[0][0]) and torch.equal(new, results[0][1])
    out, new = results[0]
    for s in (1, 3, 4):                                          # not indexed, or pad
        assert torch.equal(new[s], logical[s].double())
    assert torch.equal(new[:, :, 3:], logical[:, :, 3:].double())  # wide columns never written
    assert not torch.equal(new[6], logical[6].double())           # read from and written to slot 6


def test_pad_sequence_uses_zero_history_and_keeps_its_slot():
    D, W = 32, 4
    x, qsl = varlen_x([4, 6], D, dtype=torch.float64)
    w, bias = conv_weights(D, W, dtype=torch.float64)
    pool = conv_states(2, D, 3, dtype=torch.float64)
    out, new = R.causal_conv1d_fwd(x, w, bias, pool, qsl, torch.tensor([0, -1], **i32),
                                   torch.tensor([True, True]))
    zero_hist, _ = R.causal_conv1d_fwd(x[:, 4:], w, bias, pool, torch.tensor([0, 6], **i32),
                                       torch.tensor([1], **i32), torch.tensor([False]))
    assert torch.equal(out[:, 4:], zero_hist)
    assert torch.equal(new[1], pool[1])


def test_batch_mode_reads_and_writes_the_indexed_slot():
    B, D, L = 2, 32, 5
    x = torch.randn(B, D, L, generator=torch.Generator().manual_seed(3), **f64)
    w, _ = conv_weights(D, 4, dtype=torch.float64)
    pool = conv_states(4, D, 3, dtype=torch.float64)
    idx = torch.tensor([3, 0], **i32)
    out, new = R.causal_conv1d_fwd(x, w, None, pool, None, idx, torch.tensor([True, True]))
    for b, s in enumerate(idx.tolist()):
        xp = torch.cat([pool[s], x[b]], -1)
        assert torch.equal(new[s], xp[:, -3:])
        torch.testing.assert_close(out[b], sum(w[:, j, None] * xp[:, j:j + L] for j in range(4)),
                                   rtol=1e-15, atol=1e-15)
    assert torch.equal(new[1], pool[1]) and torch.equal(new[2], pool[2])


def test_packed_weight_is_unpacked():
    x, qsl = varlen_x([5, 7], 64)
    w, bias = conv_weights(64, 4)
    want, _ = R.causal_conv1d_fwd(x, w, bias, query_start_loc=qsl)
    got, _ = R.causal_conv1d_fwd(x, R.causal_conv1d_weight_pack(w), bias, query_start_loc=qsl,
                                 is_weight_packed=True)
    assert torch.equal(want, got)


def test_split_prefill_continues_from_the_carried_state():
    D, lengths = 32, [11, 6]
    x, qsl = varlen_x(lengths, D, dtype=torch.float64)
    w, bias = conv_weights(D, 4, dtype=torch.float64)
    pool = conv_states(3, D, 3, dtype=torch.float64)
    idx, init = torch.tensor([2, 0], **i32), torch.tensor([True, False])
    whole, final = R.causal_conv1d_fwd(x, w, bias, pool, qsl, idx, init, True)
    # first call: 4 and 2 tokens; second call: the rest, with history from the first call
    first = torch.cat([x[:, 0:4], x[:, 11:13]], -1)
    o1, mid = R.causal_conv1d_fwd(first, w, bias, pool, torch.tensor([0, 4, 6], **i32), idx, init,
                                  True)
    second = torch.cat([x[:, 4:11], x[:, 13:17]], -1)
    o2, end = R.causal_conv1d_fwd(second, w, bias, mid, torch.tensor([0, 7, 11], **i32), idx,
                                  torch.tensor([True, True]), True)
    torch.testing.assert_close(torch.cat([o1[:, :4], o2[:, :7], o1[:, 4:], o2[:, 7:]], -1), whole,
                               rtol=1e-15, atol=1e-15)
    assert torch.equal(end, final)


OPTIONALS = ("bias", "conv_states", "query_start_loc", "cache_indices", "has_initial_state")


@pytest.mark.parametrize("present", list(itertools.product([False, True], repeat=5)),
                         ids=lambda p: "-".join(n for n, on in zip(OPTIONALS, p) if on) or "none")
def test_every_optional_combination_works_or_names_the_argument(present):
    D, lengths = 32, [3, 5]
    x, qsl = varlen_x(lengths, D)
    w, bias = conv_weights(D, 4)
    given = dict(zip(OPTIONALS, present))
    kw = dict(bias=bias, conv_states=conv_states(3, D, 3), query_start_loc=qsl,
              cache_indices=torch.tensor([2, 0], **i32), has_initial_state=torch.tensor([True, False]))
    kw = {n: (v if given[n] else None) for n, v in kw.items()}
    if not given["query_start_loc"]:
        x = x.T.reshape(2, 4, D).transpose(1, 2)                  # batch mode [B=2, D, L=4]
    if not given["conv_states"] and (given["cache_indices"] or given["has_initial_state"]):
        arg = "cache_indices" if given["cache_indices"] else "has_initial_state"
        with pytest.raises(RuntimeError, match=rf"^{arg}: given without conv_states"):
            R.causal_conv1d_fwd(x, w, **kw)
        return
    out, new = R.causal_conv1d_fwd(x, w, **kw)
    assert out.shape == x.shape and torch.isfinite(out).all()
    assert (new is None) == (not given["conv_states"])


@pytest.mark.parametrize("change, match", [
    (dict(weight=torch.zeros(32, 1, 4)), r"^weight: expected a 2-D \[D, W\] weight"),
    (dict(weight=torch.zeros(16, 4)), r"^weight: expected 32 channels, got 16"),
    (dict(weight=torch.zeros(32, 1)), r"^weight: width must be at least 2"),
    (dict(is_weight_packed=True, weight=torch.zeros(32, 3)), r"^packed: VNNI packing needs width 4"),
    (dict(bias=torch.zeros(33)), r"^bias: expected shape \[32\]"),
    (dict(conv_states=torch.zeros(3, 32, 2)), r"^conv_states: state_len 2 is shorter than the history"),
    (dict(conv_states=torch.zeros(3, 16, 3)), r"^conv_states: expected shape \[N, 32, state_len\]"),
    (dict(cache_indices=torch.tensor([0, 3], **i32)), r"^cache_indices: index 3 at row 1 is outside \[0, 3\)"),
    (dict(cache_indices=torch.tensor([1, 1], **i32)), r"^cache_indices: slot 1 is used by rows 0 and 1"),
    (dict(has_initial_state=torch.tensor([1, 0], **i32)), r"^has_initial_state: expected a bool tensor"),
    (dict(has_initial_state=torch.tensor([True])), r"^has_initial_state: expected shape \[2\]"),
    (dict(query_start_loc=torch.tensor([0, 3, 9], **i32)), r"^query_start_loc: must end at the token count 8"),
    (dict(query_start_loc=None), r"^x: without query_start_loc expected a batch \[B, D, L\]"),
    (dict(x=torch.zeros(32, 8, dtype=torch.int32)), r"^x: expected a floating-point tensor"),
])
def test_errors_name_the_argument(change, match):
    x, qsl = varlen_x([3, 5], 32)
    kw = dict(x=x, weight=conv_weights(32, 4)[0], conv_states=conv_states(3, 32, 3),
              query_start_loc=qsl, cache_indices=torch.tensor([2, 0], **i32))
    kw.update(change)
    with pytest.raises(RuntimeError, match=match):
        R.causal_conv1d_fwd(**kw)
