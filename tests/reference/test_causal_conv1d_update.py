"""Conv decode reference: equal to one-token prefills, chained decode == prefill, the speculative
form worked by hand, pads, wide states, layouts, errors."""

import itertools

import pytest
import torch

import reference as R
from cases.conv import conv_states, conv_weights
from cases.layouts import CONV_LAYOUTS, conv_pool

f64 = dict(dtype=torch.float64)
i32 = dict(dtype=torch.int32)


def rand(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), **f64)


@pytest.mark.parametrize("W", [2, 3, 4])
def test_update_equals_one_token_prefills(W):
    B, D, N = 3, 40, 5
    x = rand(B, D)
    w, bias = conv_weights(D, W, dtype=torch.float64)
    pool = conv_states(N, D, W + 1, dtype=torch.float64)          # wide: 2 extra columns
    idx = torch.tensor([4, 1, 2], **i32)
    out, new = R.causal_conv1d_update(x, pool, w, bias, True, conv_state_indices=idx)
    want, want_new = R.causal_conv1d_fwd(x.T, w, bias, pool, torch.arange(B + 1, **i32), idx,
                                         torch.ones(B, dtype=torch.bool), True)
    assert torch.equal(out, want.T) and torch.equal(new, want_new)
    assert torch.equal(new[:, :, W - 1:], pool[:, :, W - 1:])     # wide columns untouched


def test_chained_updates_equal_prefill():
    L, D = 7, 32
    xs = rand(L, D, seed=1)
    w, bias = conv_weights(D, 4, dtype=torch.float64)
    pool = conv_states(2, D, 3, dtype=torch.float64)
    idx = torch.tensor([1], **i32)
    state, outs = pool, []
    for t in range(L):
        o, state = R.causal_conv1d_update(xs[t:t + 1], state, w, bias, conv_state_indices=idx)
        outs.append(o[0])
    want, want_state = R.causal_conv1d_fwd(xs.T, w, bias, pool, torch.tensor([0, L], **i32), idx,
                                           torch.tensor([True]))
    torch.testing.assert_close(torch.stack(outs), want.T, rtol=1e-15, atol=1e-15)
    assert torch.equal(state, want_state)


def test_speculative_update_by_hand():
    # D = 1, W = 4, state_len 5, L = 3 draft tokens, a = 2 accepted.
    w = torch.tensor([[1.0, 10.0, 100.0, 1000.0]], **f64)
    state = torch.tensor([[[1.0, 2.0, 3.0, 4.0, 5.0]]], **f64)
    x = torch.tensor([[[6.0], [7.0], [8.0]]], **f64)             # [B=1, L=3, D=1]
    out, new = R.causal_conv1d_update(x, state, w, num_accepted_tokens=torch.tensor([2], **i32),
                                      conv_state_indices=torch.tensor([0], **i32))
    # history = state[a-1 : a+2] = (2, 3, 4); windows over (2, 3, 4, 6, 7, 8)
    assert out.flatten().tolist() == [6432.0, 7643.0, 8764.0]
    # new state = old[a : a + 5 - 3] = (3, 4), then the 3 tokens
    assert new.flatten().tolist() == [3.0, 4.0, 6.0, 7.0, 8.0]


def test_speculative_single_token_equals_plain_update():
    D, N = 32, 3
    x = rand(2, D, seed=2)
    w, bias = conv_weights(D, 4, dtype=torch.float64)
    pool = conv_states(N, D, 3, dtype=torch.float64)
    idx = torch.tensor([2, 0], **i32)
    want = R.causal_conv1d_update(x, pool, w, bias, True, conv_state_indices=idx)
    got = R.causal_conv1d_update(x[:, None], pool, w, bias, True,
                                 num_accepted_tokens=torch.ones(2, **i32), conv_state_indices=idx)
    assert torch.equal(got[0][:, 0], want[0]) and torch.equal(got[1], want[1])


@pytest.mark.parametrize("spec", [False, True], ids=["2d", "3d"])
def test_pad_rows_output_zeros_and_keep_their_slot(spec):
    D = 32
    w, bias = conv_weights(D, 4, dtype=torch.float64)
    pool = conv_states(3, D, 4, dtype=torch.float64)
    x = rand(3, 2, D) if spec else rand(3, D)
    kw = dict(num_accepted_tokens=torch.tensor([1, 2, 1], **i32)) if spec else {}
    out, new = R.causal_conv1d_update(x, pool, w, bias, conv_state_indices=torch.tensor([1, -1, 0], **i32),
                                      **kw)
    assert out[1].abs().sum() == 0 and out[0].abs().sum() > 0
    assert torch.equal(new[2], pool[2])                           # the pad row's would-be slot
    assert not torch.equal(new[1], pool[1])


def test_layouts_and_slot_strides_agree():
    D, N = 48, 4
    x = rand(2, D, seed=3)
    w, bias = conv_weights(D, 4, dtype=torch.float64)
    logical = conv_states(N, D, 3, dtype=torch.float64).contiguous()
    idx = torch.tensor([3, 1], **i32)
    results = [R.causal_conv1d_update(x, conv_pool(logical, layout, gap), w, bias,
                                      conv_state_indices=idx)
               for layout, gap in itertools.product(CONV_LAYOUTS, [0, 21])]
    for out, new in results[1:]:
        assert torch.equal(out, results[0][0]) and torch.equal(new, results[0][1])


@pytest.mark.parametrize("change, match", [
    (dict(conv_states=None), r"^conv_states: is required"),
    (dict(conv_state_indices=torch.tensor([0, 5], **i32)), r"^conv_state_indices: index 5 at row 1 is outside"),
    (dict(conv_state_indices=torch.tensor([-3, 0], **i32)), r"^conv_state_indices: index -3"),
    (dict(conv_state_indices=torch.tensor([2, 2], **i32)), r"^conv_state_indices: slot 2 is used by rows 0 and 1"),
    (dict(num_accepted_tokens=torch.ones(2, **i32)), r"^num_accepted_tokens: only goes with a 3-D"),
    (dict(x=torch.zeros(2, 3, 32)), r"^num_accepted_tokens: is required with a 3-D"),
    (dict(x=torch.zeros(2, 3, 32), num_accepted_tokens=torch.tensor([1, 4], **i32)),
     r"^num_accepted_tokens: row 1: 4 is outside \[1, 2\]"),
    (dict(x=torch.zeros(2, 3, 32), num_accepted_tokens=torch.tensor([0, 1], **i32)),
     r"^num_accepted_tokens: row 0: 0 is outside"),
    (dict(x=torch.zeros(2, 5, 32), num_accepted_tokens=torch.ones(2, **i32)),
     r"^conv_states: state_len 4 is shorter than L = 5"),
    (dict(weight=torch.zeros(32, 1, 4)), r"^weight: expected a 2-D"),
    (dict(x=torch.zeros(2, 16)), r"^weight: expected 16 channels, got 32"),
    (dict(x=torch.zeros(2)), r"^x: expected \[B, D\] or \[B, L, D\]"),
    (dict(bias=torch.zeros(2, 32)), r"^bias: expected shape \[32\]"),
])
def test_errors_name_the_argument(change, match):
    kw = dict(x=torch.zeros(2, 32), conv_states=conv_states(3, 32, 4),
              weight=conv_weights(32, 4)[0], conv_state_indices=torch.tensor([2, 0], **i32))
    kw.update(change)
    with pytest.raises(RuntimeError, match=match):
        R.causal_conv1d_update(**kw)
