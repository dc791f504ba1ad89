"""Prefill reference: the recurrence against the independent chunked form, closed forms over a
whole sequence, varlen independence, pad and empty sequences, prefill == chained decode."""

import math

import pytest
import torch
from hypothesis import given, strategies as st

import cases
import reference as R
from cases.gdn import DECAYS
from reference.gdn import l2norm

CHUNK_LENGTHS = [0, 1, 63, 64, 65, 130]
HEADS = [(2, 2, 32, 48), (2, 4, 48, 32), (1, 3, 16, 64)]   # (HK, HV, K, V): K ≠ V, G = 1, 2, 3
HEAD_IDS = ["G1-K32-V48", "G2-K48-V32", "G3-K16-V64"]
# The chunked form builds its decays from differences of cumulative sums, so the "extreme" gates
# (−∞, −1e7) make it NaN or lose steps by design: it cross-checks the recurrence on the others.
SMOOTH_DECAYS = [d for d in DECAYS if d != "extreme"]


def prefill(lengths, HK, HV, K, V, **case):
    """chunk_gated_delta_rule arguments for sequences of these lengths, fp32 unless told."""
    return cases.build("chunk_gated_delta_rule", {"lengths": lengths, "HK": HK, "G": HV // HK,
                                                  "K": K, "V": V, "dtype": "fp32",
                                                  "state_dtype": "fp32", **case})


def decode(B, HK, HV, K, V, **case):
    return cases.build("fused_sigmoid_gating_delta_rule_update",
                       {"B": B, "HK": HK, "G": HV // HK, "K": K, "V": V, "dtype": "fp32",
                        "state_dtype": "fp32", **case})


def both_forms(args, **kw):
    return R.chunk_gated_delta_rule(**args, **kw), R.chunk_gated_delta_rule_chunked(**args, **kw)


def assert_agree(rec, chk, tol=1e-10):
    """The two forms agree to `tol` relative to the magnitude of the results."""
    for a, b in zip(rec, chk):
        if a.numel() == 0:
            continue
        scale = max(a.abs().max().item(), 1.0)
        assert (a - b).abs().max().item() <= tol * scale


@pytest.mark.parametrize("decay", SMOOTH_DECAYS)
@pytest.mark.parametrize("HK,HV,K,V", HEADS, ids=HEAD_IDS)
@pytest.mark.parametrize("length", CHUNK_LENGTHS, ids=lambda n: f"T{n}")
def test_chunked_form_equals_recurrence(length, HK, HV, K, V, decay):
    args = prefill([length], HK, HV, K, V, slots=[1], n_slots=2, decay=decay, seed=length)
    rec, chk = both_forms(args)
    assert_agree(rec, chk)
    if length:
        assert rec[0].abs().max() > 0.01          # the check compares something
    assert torch.equal(rec[1][0], args["initial_state"][0].double())


@pytest.mark.parametrize("l2norm", [True, False], ids=["l2norm", "raw"])
@pytest.mark.parametrize("HK,HV,K,V", HEADS, ids=HEAD_IDS)
def test_chunked_form_equals_recurrence_varlen_mix(HK, HV, K, V, l2norm):
    lengths = [65, 0, 1, 130, 63, 64]
    args = prefill(lengths, HK, HV, K, V, slots=[5, 2, 0, 7, -1, 3], n_slots=8, l2norm=l2norm,
                   seed=7)
    rec, chk = both_forms(args)
    assert_agree(rec, chk)


@given(lengths=st.lists(st.integers(0, 140), min_size=1, max_size=4),
       chunk=st.sampled_from([16, 64]), seed=st.integers(0, 2**16))
def test_chunked_form_equals_recurrence_any_lengths(lengths, chunk, seed):
    args = prefill(lengths, 2, 4, 16, 24, seed=seed)
    assert_agree(R.chunk_gated_delta_rule(**args),
                 R.chunk_gated_delta_rule_chunked(**args, chunk_size=chunk))


def test_beta_zero_is_pure_decay_over_a_sequence():
    args = prefill([70], 2, 4, 8, 12, seed=11)
    args["beta"] = torch.zeros_like(args["beta"])
    out, pool = R.chunk_gated_delta_rule(**args)
    S0 = args["initial_state"][0].double()                        # [HV, K, V]
    G = args["g"][0].double().cumsum(0)                           # [T, HV]
    torch.testing.assert_close(pool[0], torch.exp(G[-1])[:, None, None] * S0, rtol=1e-12, atol=0)
    q = l2norm(args["query"][0].double())
    q = q.repeat_interleave(2, dim=1) / math.sqrt(8)              # [T, HV, K]
    want = torch.exp(G)[..., None] * torch.einsum("hkv,thk->thv", S0, q)
    torch.testing.assert_close(out[0], want, rtol=1e-12, atol=1e-14)
    assert_agree((out, pool), R.chunk_gated_delta_rule_chunked(**args))


def test_no_decay_and_beta_zero_leaves_state_unchanged():
    args = prefill([3, 66], 1, 2, 8, 4, decay="zero", seed=12)
    args["beta"] = torch.zeros_like(args["beta"])
    for _, pool in both_forms(args):
        assert torch.equal(pool, args["initial_state"].double())


def test_sequences_are_independent_and_pad_sequences_untouched():
    lengths, slots = [5, 64, 0, 9], [3, -1, 1, 0]
    args = prefill(lengths, 2, 4, 16, 8, slots=slots, n_slots=5, seed=13)
    out, pool = R.chunk_gated_delta_rule(**args)
    cu = args["cu_seqlens"].tolist()
    # pad sequence (tokens 5..68): outputs zeros; its (absent) state is neither read nor written
    assert out[0, cu[1]:cu[2]].abs().sum() == 0
    # slot 1 has an empty sequence: unchanged, not even decayed; slot 2 and 4 are not indexed
    for s in (1, 2, 4):
        assert torch.equal(pool[s], args["initial_state"][s].double())
    # each live sequence alone gives exactly the same result as in the mix
    for i in (0, 3):
        alone = dict(args, cu_seqlens=torch.tensor([0, lengths[i]], dtype=torch.int32),
                     initial_state_indices=torch.tensor([slots[i]], dtype=torch.int32),
                     **{n: args[n][:, cu[i]:cu[i + 1]] for n in ("query", "key", "value", "g", "beta")})
        o, p = R.chunk_gated_delta_rule(**alone)
        torch.testing.assert_close(o[0], out[0, cu[i]:cu[i + 1]], rtol=1e-14, atol=1e-15)
        torch.testing.assert_close(p[slots[i]], pool[slots[i]], rtol=1e-14, atol=1e-15)


def test_prefill_equals_chained_decode():
    """L decode steps on one row are the prefill of those L tokens."""
    L, HK, HV, K, V = 9, 2, 4, 8, 16
    steps = [decode(1, HK, HV, K, V, slots=[2], n_slots=3, seed=100 + t) for t in range(L)]
    pool = steps[0]["state"]
    outs = []
    for step in steps:
        o, pool = R.fused_sigmoid_gating_delta_rule_update(**dict(step, state=pool))
        outs.append(o[0, 0])
    gb = [R.fused_gdn_gating(s["A_log"], s["a"], s["b"], s["dt_bias"]) for s in steps]
    cat = lambda name: torch.cat([s[name] for s in steps], dim=1)
    out, pool2 = R.chunk_gated_delta_rule(
        cat("q"), cat("k"), cat("v"), torch.cat([g for g, _ in gb], 1),
        torch.cat([b for _, b in gb], 1), steps[0]["state"],
        cu_seqlens=torch.tensor([0, L], dtype=torch.int32), use_qk_l2norm_in_kernel=True,
        initial_state_indices=torch.tensor([2], dtype=torch.int32))
    torch.testing.assert_close(out[0], torch.stack(outs), rtol=1e-13, atol=1e-14)
    torch.testing.assert_close(pool2, pool, rtol=1e-13, atol=1e-14)


def test_strided_pool_gives_the_same_result():
    args = prefill([20, 70], 2, 4, 8, 16, slots=[1, 0], seed=14)
    strided = prefill([20, 70], 2, 4, 8, 16, slots=[1, 0], seed=14, slot_gap=100)
    assert strided["initial_state"].stride(0) == 4 * 8 * 16 + 100
    assert torch.equal(strided["initial_state"], args["initial_state"])
    for f in (R.chunk_gated_delta_rule, R.chunk_gated_delta_rule_chunked):
        for want, got in zip(f(**args), f(**strided)):
            assert torch.equal(want, got)


def test_working_precision_is_close_but_not_exact():
    args = prefill([100], 2, 4, 32, 32, dtype="bf16", seed=15)
    out, pool = R.chunk_gated_delta_rule(**args, precision=R.FP32)
    out64, pool64 = R.chunk_gated_delta_rule(**args)
    assert out.dtype == torch.bfloat16 and pool.dtype == torch.float32
    rel = lambda x, y: ((x.double() - y).norm() / y.norm()).item()
    assert 2**-12 < rel(out, out64) < 2**-8          # dominated by the bf16 rounding of out
    assert 0 < rel(pool, pool64) < 1e-5               # an fp32 state: fp32 roundoff only


def test_gqa_v_head_reads_k_head_h_div_G():
    """G = 2: v heads 0, 1 read q/k head 0 and v heads 2, 3 read head 1 — the same as a G = 1
    call whose q/k heads are laid out (0, 0, 1, 1) by hand."""
    args = prefill([5, 70], 2, 4, 8, 16, seed=16)
    by_hand = dict(args, **{n: args[n][:, :, [0, 0, 1, 1]] for n in ("query", "key")})
    for want, got in zip(R.chunk_gated_delta_rule(**by_hand), R.chunk_gated_delta_rule(**args)):
        assert torch.equal(want, got)


def test_without_output_final_state_the_pool_is_unchanged():
    """SPEC §3: output_final_state=False produces no final state; the outputs are the same."""
    args = cases.build("chunk_gated_delta_rule", dict(lengths=[70, 5], dtype="fp32", seed=21))
    for f in (R.chunk_gated_delta_rule, R.chunk_gated_delta_rule_chunked):
        out, pool = f(**args)
        out2, pool2 = f(**dict(args, output_final_state=False))
        assert torch.equal(out, out2) and not torch.equal(pool, args["initial_state"].double())
        assert torch.equal(pool2, args["initial_state"].double())
