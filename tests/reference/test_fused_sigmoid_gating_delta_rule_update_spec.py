"""Speculative-decode reference (SPEC §7): against an independent composition of decode-reference
steps (tested on its own in test_fused_sigmoid_gating_delta_rule_update.py), and each rule of §7
on its own: resume position, stored positions, pads, rows shorter than S, S = 1 being the decode
step, and the rounding of stored states. (Error inputs: test_errors.py.)"""

import pytest
import torch

import cases
import reference as R
from harness.registry import EXAMPLES

OP = "fused_sigmoid_gating_delta_rule_update_spec"
DECODE = "fused_sigmoid_gating_delta_rule_update"


def spec(**case):
    return cases.build(OP, {"dtype": "fp32", "state_dtype": "fp32", **case})


def by_decode_steps(kw, precision=R.ORACLE):
    """The op composed from the decode reference, one call per token on a one-slot pool holding
    the row's running state: (out [T, HV, V], new pool). Written without the spec reference's
    plan: the rules are re-derived here from the arguments."""
    pool = precision.copy(kw["state"])
    T, HV, V = kw["v"].shape
    out = torch.zeros(T, HV, V, dtype=precision.compute)
    cu = kw["cu_seqlens"].tolist()
    idx = kw["spec_state_indices"].tolist()
    for r, acc in enumerate(kw["num_accepted_tokens"].tolist()):
        resume = idx[r][acc - 1]
        if resume == -1:
            continue
        running = pool[resume:resume + 1].clone()
        for i, t in enumerate(range(cu[r], cu[r + 1])):
            step = dict(A_log=kw["A_log"], dt_bias=kw["dt_bias"], q=kw["q"][None, t:t + 1],
                        k=kw["k"][None, t:t + 1], v=kw["v"][None, t:t + 1],
                        a=kw["a"][t:t + 1], b=kw["b"][t:t + 1], state=running,
                        state_indices=torch.tensor([0], dtype=torch.int32),
                        use_qk_l2norm_in_kernel=kw["use_qk_l2norm_in_kernel"],
                        softplus_beta=kw["softplus_beta"],
                        softplus_threshold=kw["softplus_threshold"])
            o, running = R.fused_sigmoid_gating_delta_rule_update(**step, precision=R.ORACLE)
            out[t] = o[0, 0]
            if idx[r][i] != -1:
                pool[idx[r][i]] = running[0]
    return out, pool


@pytest.mark.parametrize("name, case", EXAMPLES[OP], ids=[n for n, _ in EXAMPLES[OP]])
def test_equals_decode_steps(name, case):
    kw = cases.build(OP, case)
    out, pool = R.fused_sigmoid_gating_delta_rule_update_spec(**kw)
    want_out, want_pool = by_decode_steps(kw)
    torch.testing.assert_close(out, want_out, rtol=1e-12, atol=1e-12, equal_nan=True)
    torch.testing.assert_close(pool, want_pool, rtol=1e-12, atol=1e-12, equal_nan=True)


def test_resumes_from_the_last_accepted_position_and_stores_each_position():
    kw = spec(B=1, S=3, lengths=[2], accepted=[3], slots=[[4, 1, 0]], n_slots=5)
    _, pool = R.fused_sigmoid_gating_delta_rule_update_spec(**kw)
    old = kw["state"].double()
    # slot 0 (position 2, past the row's tokens) is only read; 4 and 1 take the two states
    assert torch.equal(pool[[0, 2, 3]], old[[0, 2, 3]])
    one = dict(kw, **{n: kw[n][:1] for n in ("q", "k", "v", "a", "b")},
               cu_seqlens=torch.tensor([0, 1], dtype=torch.int32))     # the first token only
    _, first = R.fused_sigmoid_gating_delta_rule_update_spec(**one)
    assert torch.equal(first[4], pool[4]) and not torch.equal(pool[4], old[4])
    assert not torch.equal(pool[1], old[1])
    # resuming from position 1 instead changes every stored state
    other = dict(kw, num_accepted_tokens=torch.tensor([2], dtype=torch.int32))
    _, elsewhere = R.fused_sigmoid_gating_delta_rule_update_spec(**other)
    assert not torch.equal(elsewhere[4], pool[4])


def test_pad_row_reads_and_writes_nothing_and_outputs_zeros():
    kw = spec(B=2, S=2, lengths=[2, 2], accepted=[2, 1], slots=[[0, -1], [1, 2]], n_slots=3)
    out, pool = R.fused_sigmoid_gating_delta_rule_update_spec(**kw)
    assert torch.equal(out[:2], torch.zeros_like(out[:2]))
    assert torch.equal(pool[0], kw["state"][0].double())        # position 0 of the pad row
    assert out[2:].abs().sum() > 0


def test_pad_write_position_stores_nothing_but_the_row_goes_on():
    kw = spec(B=1, S=3, lengths=[3], accepted=[1], slots=[[0, -1, 2]], n_slots=3)
    out, pool = R.fused_sigmoid_gating_delta_rule_update_spec(**kw)
    full = dict(kw, spec_state_indices=torch.tensor([[0, 1, 2]], dtype=torch.int32))
    out_full, pool_full = R.fused_sigmoid_gating_delta_rule_update_spec(**full)
    assert torch.equal(out, out_full) and torch.equal(pool[2], pool_full[2])
    assert torch.equal(pool[1], kw["state"][1].double())


def test_one_draft_position_is_the_decode_step():
    kw = spec(B=3, S=1, lengths=[1, 1, 1], slots=[[2], [-1], [0]], n_slots=3, K=16, V=24, G=3)
    out, pool = R.fused_sigmoid_gating_delta_rule_update_spec(**kw)
    dec = dict(A_log=kw["A_log"], dt_bias=kw["dt_bias"], q=kw["q"][None], k=kw["k"][None],
               v=kw["v"][None], a=kw["a"], b=kw["b"], state=kw["state"],
               state_indices=kw["spec_state_indices"][:, 0].contiguous(),
               use_qk_l2norm_in_kernel=True)
    want_out, want_pool = R.fused_sigmoid_gating_delta_rule_update(**dec)
    assert torch.equal(out, want_out[:, 0]) and torch.equal(pool, want_pool)


def test_working_precision_rounds_each_stored_state_once():
    """The running state stays fp32 between tokens; a bf16 pool receives each stored state
    rounded once (not the rounding of a rounded chain)."""
    kw = spec(B=1, S=4, lengths=[4], slots=[[0, 1, 2, 3]], n_slots=4, state_dtype="bf16")
    _, pool = R.fused_sigmoid_gating_delta_rule_update_spec(**kw, precision=R.FP32)
    _, pool32 = R.fused_sigmoid_gating_delta_rule_update_spec(
        **dict(kw, state=kw["state"].float()), precision=R.FP32)
    assert pool.dtype == torch.bfloat16
    assert torch.equal(pool, pool32.to(torch.bfloat16))
