"""Conv decode reference: equal to one-token prefills, chained decode == prefill, the speculative
form worked by hand, pads, wide states, layouts. (Error inputs: test_errors.py.)"""

import itertools

import pytest
import torch

import cases
import reference as R
from cases.layouts import CONV_LAYOUTS

f64 = dict(dtype=torch.float64)
i32 = dict(dtype=torch.int32)


def update(**case):
    """causal_conv1d_update arguments for a case description, fp32 unless it says otherwise."""
    return cases.build("causal_conv1d_update", {"dtype": "fp32", **case})


@pytest.mark.parametrize("W", [2, 3, 4])
def test_update_equals_one_token_prefills(W):
    B = 3
    kw = update(D=40, W=W, silu=True, B=B, state_extra=2, slots=[4, 1, 2], n_slots=5)  # wide state
    out, new = R.causal_conv1d_update(**kw)
    want, want_new = R.causal_conv1d_fwd(kw["x"].T, kw["weight"], kw["bias"], kw["conv_states"],
                                         torch.arange(B + 1, **i32), kw["conv_state_indices"],
                                         torch.ones(B, dtype=torch.bool), True)
    assert torch.equal(out, want.T) and torch.equal(new, want_new)
    pool = kw["conv_states"].double()
    assert torch.equal(new[:, :, W - 1:], pool[:, :, W - 1:])     # wide columns untouched


def test_chained_updates_equal_prefill():
    L = 7
    pre = cases.build("causal_conv1d_fwd", dict(D=32, dtype="fp32", lengths=[L], slots=[1],
                                                n_slots=2, has_initial_state=[True], seed=1))
    want, want_state = R.causal_conv1d_fwd(**pre)
    state, outs = pre["conv_states"], []
    for t in range(L):                                      # the same tokens one at a time
        o, state = R.causal_conv1d_update(pre["x"][:, t][None], state, pre["weight"], pre["bias"],
                                          conv_state_indices=pre["cache_indices"])
        outs.append(o[0])
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
    kw = update(D=32, silu=True, B=2, slots=[2, 0], n_slots=3, seed=2)
    want = R.causal_conv1d_update(**kw)
    got = R.causal_conv1d_update(**dict(kw, x=kw["x"][:, None],
                                        num_accepted_tokens=torch.ones(2, **i32)))
    assert torch.equal(got[0][:, 0], want[0]) and torch.equal(got[1], want[1])


@pytest.mark.parametrize("spec", [False, True], ids=["2d", "3d"])
def test_pad_rows_output_zeros_and_keep_their_slot(spec):
    kw = update(D=32, B=3, L=2 if spec else 0, accepted=[1, 2, 1], state_extra=1, slots=[1, -1, 0],
                n_slots=3)
    out, new = R.causal_conv1d_update(**kw)
    pool = kw["conv_states"].double()
    assert out[1].abs().sum() == 0 and out[0].abs().sum() > 0
    assert torch.equal(new[2], pool[2])                           # the pad row's would-be slot
    assert not torch.equal(new[1], pool[1])


def test_layouts_and_slot_strides_agree():
    results = [R.causal_conv1d_update(**update(D=48, B=2, slots=[3, 1], n_slots=4, layout=layout,
                                               slot_gap=gap, seed=3))
               for layout, gap in itertools.product(CONV_LAYOUTS, [0, 21])]
    for out, new in results[1:]:
        assert torch.equal(out, results[0][0]) and torch.equal(new, results[0][1])
