"""Conv prefill reference: F.conv1d equality, a history worked by hand, state write-back rules,
SD == DS, strided slots, pads, optionals, split prefill continuity. (Error inputs: test_errors.py.)"""

import itertools

import pytest
import torch
import torch.nn.functional as F

import cases
import reference as R
from cases.layouts import CONV_LAYOUTS

f64 = dict(dtype=torch.float64)
i32 = dict(dtype=torch.int32)


def fwd(**case):
    """causal_conv1d_fwd arguments for a case description, fp32 unless it says otherwise."""
    return cases.build("causal_conv1d_fwd", {"dtype": "fp32", **case})


@pytest.mark.parametrize("silu", [False, True], ids=["linear", "silu"])
@pytest.mark.parametrize("W", [2, 3, 4])
def test_batch_without_state_equals_torch_conv1d(W, silu):
    kw = fwd(D=40, W=W, silu=silu, varlen=False, lengths=[17] * 3, token_major=False, states=False,
             seed=W)
    out, states = R.causal_conv1d_fwd(**kw)
    x, w, bias = (kw[n].double() for n in ("x", "weight", "bias"))
    want = F.conv1d(x, w[:, None, :], bias, padding=W - 1, groups=40)[..., :17]
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
    D = 40
    case = dict(D=D, silu=True, lengths=[3, 0, 1, 9, 2], state_extra=2,     # state_len 5
                slots=[6, 0, 2, 5, -1], n_slots=7, has_initial_state=[True, True, False, True, True])
    results = []
    for layout, gap in itertools.product(CONV_LAYOUTS, [0, 13]):
        kw = fwd(**case, layout=layout, slot_gap=gap)
        pool = kw["conv_states"]
        assert (pool.stride(-2) == 1) == (layout == "SD") and pool.stride(0) == D * 5 + gap
        results.append(R.causal_conv1d_fwd(**kw))
    for out, new in results[1:]:
        assert torch.equal(out, results[0][0]) and torch.equal(new, results[0][1])
    out, new = results[0]
    old = pool.double()                                          # the same values in every layout
    for s in (1, 3, 4):                                          # not indexed, or pad
        assert torch.equal(new[s], old[s])
    assert torch.equal(new[:, :, 3:], old[:, :, 3:])             # wide columns never written
    assert not torch.equal(new[6], old[6])                       # read from and written to slot 6


def test_pad_sequence_uses_zero_history_and_keeps_its_slot():
    kw = fwd(D=32, lengths=[4, 6], slots=[0, -1], n_slots=2, has_initial_state=[True, True])
    out, new = R.causal_conv1d_fwd(**kw)
    alone = dict(kw, x=kw["x"][:, 4:], query_start_loc=torch.tensor([0, 6], **i32),
                 cache_indices=torch.tensor([1], **i32), has_initial_state=torch.tensor([False]))
    zero_hist, _ = R.causal_conv1d_fwd(**alone)
    assert torch.equal(out[:, 4:], zero_hist)
    assert torch.equal(new[1], kw["conv_states"][1].double())


def test_batch_mode_reads_and_writes_the_indexed_slot():
    B, L = 2, 5
    kw = fwd(D=32, bias=False, varlen=False, lengths=[L] * B, token_major=False, slots=[3, 0],
             n_slots=4, has_initial_state=[True, True], seed=3)
    out, new = R.causal_conv1d_fwd(**kw)
    x, w, pool = (kw[n].double() for n in ("x", "weight", "conv_states"))
    for b, s in enumerate(kw["cache_indices"].tolist()):
        xp = torch.cat([pool[s], x[b]], -1)
        assert torch.equal(new[s], xp[:, -3:])
        torch.testing.assert_close(out[b], sum(w[:, j, None] * xp[:, j:j + L] for j in range(4)),
                                   rtol=1e-15, atol=1e-15)
    assert torch.equal(new[1], pool[1]) and torch.equal(new[2], pool[2])


def test_packed_weight_is_unpacked():
    kw = fwd(D=64, lengths=[5, 7], states=False)
    want, _ = R.causal_conv1d_fwd(**kw)
    got, _ = R.causal_conv1d_fwd(**dict(kw, weight=R.causal_conv1d_weight_pack(kw["weight"]),
                                        is_weight_packed=True))
    assert torch.equal(want, got)


def test_split_prefill_continues_from_the_carried_state():
    kw = fwd(D=32, silu=True, lengths=[11, 6], slots=[2, 0], n_slots=3,
             has_initial_state=[True, False])
    whole, final = R.causal_conv1d_fwd(**kw)
    x = kw["x"]
    # first call: 4 and 2 tokens; second call: the rest, with history from the first call
    first = dict(kw, x=torch.cat([x[:, 0:4], x[:, 11:13]], -1),
                 query_start_loc=torch.tensor([0, 4, 6], **i32))
    o1, mid = R.causal_conv1d_fwd(**first)
    second = dict(kw, x=torch.cat([x[:, 4:11], x[:, 13:17]], -1), conv_states=mid,
                  query_start_loc=torch.tensor([0, 7, 11], **i32),
                  has_initial_state=torch.tensor([True, True]))
    o2, end = R.causal_conv1d_fwd(**second)
    torch.testing.assert_close(torch.cat([o1[:, :4], o2[:, :7], o1[:, 4:], o2[:, 7:]], -1), whole,
                               rtol=1e-15, atol=1e-15)
    assert torch.equal(end, final)


OPTIONALS = ("bias", "conv_states", "query_start_loc", "cache_indices", "has_initial_state")


@pytest.mark.parametrize("present", list(itertools.product([False, True], repeat=5)),
                         ids=lambda p: "-".join(n for n, on in zip(OPTIONALS, p) if on) or "none")
def test_every_optional_combination_works_or_names_the_argument(present):
    kw = fwd(D=32, lengths=[3, 5], slots=[2, 0], n_slots=3, has_initial_state=[True, False])
    given = dict(zip(OPTIONALS, present))
    kw.update({n: None for n in OPTIONALS if not given[n]})
    if not given["query_start_loc"]:
        kw["x"] = kw["x"].T.reshape(2, 4, 32).transpose(1, 2)     # batch mode [B=2, D, L=4]
    if not given["conv_states"] and (given["cache_indices"] or given["has_initial_state"]):
        arg = "cache_indices" if given["cache_indices"] else "has_initial_state"
        with pytest.raises(RuntimeError, match=rf"^{arg}: given without conv_states"):
            R.causal_conv1d_fwd(**kw)
        return
    out, new = R.causal_conv1d_fwd(**kw)
    assert out.shape == kw["x"].shape and torch.isfinite(out).all()
    assert (new is None) == (not given["conv_states"])
