"""Decode reference: a step worked by hand, closed forms, an independent scalar-loop oracle,
fused gating == separate gating, pad slots, strided pools. (Error inputs: test_errors.py.)"""

import math

import pytest
import torch

import cases
import reference as R
from cases.layouts import SENTINEL

f64 = dict(dtype=torch.float64)
OP = "fused_sigmoid_gating_delta_rule_update"


def decode(**case):
    """The op's arguments for a case description (fp32 unless it says otherwise)."""
    return cases.build(OP, {"dtype": "fp32", "state_dtype": "fp32", **case})


def outside_the_view(t: torch.Tensor) -> torch.Tensor:
    """The elements of t's storage that t does not cover (the gaps of a strided pool)."""
    storage = torch.empty(0, dtype=t.dtype).set_(t.untyped_storage())
    covered = torch.zeros(storage.numel(), dtype=torch.bool)
    covered[torch.arange(storage.numel()).as_strided(t.shape, t.stride(), t.storage_offset())] = True
    return storage[~covered]


def one_row_inputs(S, q, k, v, *, A_log=0.0, a=0.0, b=0.0, slot=2, n_slots=3):
    """A single row/head decode with the given state, on slot `slot` of a pool of zeros."""
    K, V = S.shape
    state = torch.zeros(n_slots, 1, K, V, **f64)
    state[slot, 0] = S
    return dict(A_log=torch.tensor([A_log], **f64), dt_bias=torch.zeros(1, **f64),
                q=torch.tensor(q, **f64).view(1, 1, 1, K), k=torch.tensor(k, **f64).view(1, 1, 1, K),
                v=torch.tensor(v, **f64).view(1, 1, 1, V), a=torch.tensor([[a]], **f64),
                b=torch.tensor([[b]], **f64), state=state,
                state_indices=torch.tensor([slot], dtype=torch.int32),
                use_qk_l2norm_in_kernel=False)


def test_one_step_by_hand_with_K_ne_V():
    # K=2, V=3. A_log=0, a+dt_bias=0 -> g = -ln 2 (decay 1/2); b=0 -> beta = 1/2.
    S = torch.tensor([[1.0, 2.0, 0.0], [0.0, 1.0, -1.0]], **f64)
    args = one_row_inputs(S, q=[1.0, 1.0], k=[1.0, 0.0], v=[3.0, 3.0, 3.0])
    out, pool = R.fused_sigmoid_gating_delta_rule_update(**args)
    # S <- S/2 = [[.5, 1, 0], [0, .5, -.5]];  S^T k = (.5, 1, 0);  delta = .5·(v - S^T k)
    #   = (1.25, 1, 1.5);  S <- S + k ⊗ delta = [[1.75, 2, 1.5], [0, .5, -.5]];
    # o = S^T q / sqrt(2) = (1.75, 2.5, 1.0) / sqrt(2).
    want_S = torch.tensor([[1.75, 2.0, 1.5], [0.0, 0.5, -0.5]], **f64)
    want_o = torch.tensor([1.75, 2.5, 1.0], **f64) / math.sqrt(2)
    assert out.shape == (1, 1, 1, 3)
    torch.testing.assert_close(out[0, 0, 0], want_o, rtol=1e-15, atol=1e-15)
    torch.testing.assert_close(pool[2, 0], want_S, rtol=1e-15, atol=1e-15)
    assert pool[:2].abs().sum() == 0


def one_head(seed):
    """One row, one head (K = 4, V = 3) on slot 2 of 3, q and k taken as they are (no l2norm)."""
    return decode(B=1, HK=1, G=1, K=4, V=3, slots=[2], n_slots=3, l2norm=False, seed=seed)


def test_beta_zero_is_pure_decay():
    args = one_head(seed=1)
    args.update(a=torch.tensor([[0.75]]), dt_bias=torch.zeros(1), b=torch.tensor([[-math.inf]]))
    out, pool = R.fused_sigmoid_gating_delta_rule_update(**args)
    S, q = args["state"][2, 0].double(), args["q"][0, 0, 0].double()
    decay = math.exp(-math.exp(args["A_log"].item()) * math.log1p(math.exp(0.75)))
    torch.testing.assert_close(pool[2, 0], decay * S, rtol=1e-14, atol=0)
    torch.testing.assert_close(out[0, 0, 0], decay * S.T @ q / 2, rtol=1e-14, atol=1e-15)


def test_no_decay_and_beta_zero_leaves_state_unchanged():
    args = one_head(seed=2)
    args.update(A_log=torch.tensor([-math.inf]), b=torch.tensor([[-math.inf]]))
    out, pool = R.fused_sigmoid_gating_delta_rule_update(**args)
    S, q = args["state"][2, 0].double(), args["q"][0, 0, 0].double()
    assert torch.equal(pool[2, 0], S)
    torch.testing.assert_close(out[0, 0, 0], S.T @ q / 2, rtol=1e-15, atol=1e-16)


def scalar_loop_decode(A_log, dt_bias, q, k, v, a, b, state, state_indices, l2norm):
    """Element by element, in plain Python: an oracle sharing no code with the reference."""
    _, B, HK, K = q.shape
    HV, V = v.shape[2:]
    G = HV // HK
    S = state.double().clone()
    out = torch.zeros(B, 1, HV, V, **f64)
    for row in range(B):
        slot = int(state_indices[row])
        if slot < 0:
            continue
        for h in range(HV):
            qv = [float(t) for t in q[0, row, h // G]]
            kv = [float(t) for t in k[0, row, h // G]]
            if l2norm:
                nq = math.sqrt(sum(t * t for t in qv) + 1e-5)
                nk = math.sqrt(sum(t * t for t in kv) + 1e-5)
                qv, kv = [t / nq for t in qv], [t / nk for t in kv]
            x = float(a[row, h]) + float(dt_bias[h])
            sp = x if x > 20 else math.log1p(math.exp(x))
            decay = math.exp(-math.exp(float(A_log[h])) * sp)
            beta = 1 / (1 + math.exp(-float(b[row, h])))
            for i in range(K):
                for j in range(V):
                    S[slot, h, i, j] *= decay
            for j in range(V):
                pred = sum(S[slot, h, i, j].item() * kv[i] for i in range(K))
                d = beta * (float(v[0, row, h, j]) - pred)
                for i in range(K):
                    S[slot, h, i, j] += kv[i] * d
            for j in range(V):
                out[row, 0, h, j] = sum(S[slot, h, i, j].item() * qv[i] for i in range(K)) / math.sqrt(K)
    return out, S


@pytest.mark.parametrize("l2norm", [True, False], ids=["l2norm", "raw"])
@pytest.mark.parametrize("HK,HV,K,V", [(2, 4, 3, 5), (1, 3, 4, 2), (2, 2, 5, 5)],
                         ids=["G2-K3-V5", "G3-K4-V2", "G1-K5-V5"])
def test_matches_scalar_loop_with_permuted_slots_and_pad(HK, HV, K, V, l2norm):
    args = decode(B=4, HK=HK, G=HV // HK, K=K, V=V, slots=[4, -1, 1, 0], n_slots=6, l2norm=l2norm,
                  seed=3)
    out, pool = R.fused_sigmoid_gating_delta_rule_update(**args)
    want_out, want_pool = scalar_loop_decode(
        *(args[n] for n in ("A_log", "dt_bias", "q", "k", "v", "a", "b", "state", "state_indices")),
        l2norm)
    torch.testing.assert_close(out, want_out, rtol=1e-12, atol=1e-13)
    torch.testing.assert_close(pool, want_pool, rtol=1e-12, atol=1e-13)
    assert out[1].abs().sum() == 0                                  # pad row: zeros
    for untouched in (2, 3, 5):                                     # unindexed slots
        assert torch.equal(pool[untouched], args["state"][untouched].double())
    # every row uses its own beta: the result moves when only row 2's b changes
    args["b"] = args["b"].clone()
    args["b"][2] += 1.0
    out2, pool2 = R.fused_sigmoid_gating_delta_rule_update(**args)
    assert torch.equal(out2[0], out[0]) and not torch.equal(out2[2], out[2])
    assert torch.equal(pool2[4], pool[4]) and not torch.equal(pool2[1], pool[1])


def test_fused_gating_equals_gating_then_one_token_prefills():
    args = decode(B=5, HK=2, G=2, K=16, V=8, slots=[3, 0, -1, 6, 2], n_slots=7, seed=4)
    out, pool = R.fused_sigmoid_gating_delta_rule_update(**args)
    g, beta = R.fused_gdn_gating(args["A_log"], args["a"], args["b"], args["dt_bias"])
    out2, pool2 = R.chunk_gated_delta_rule(
        args["q"], args["k"], args["v"], g, beta, args["state"],
        cu_seqlens=torch.arange(6, dtype=torch.int32), use_qk_l2norm_in_kernel=True,
        initial_state_indices=args["state_indices"])
    torch.testing.assert_close(out, out2.transpose(0, 1), rtol=1e-14, atol=1e-15)
    torch.testing.assert_close(pool, pool2, rtol=1e-14, atol=1e-15)


def test_strided_pool_gives_the_same_result():
    dense = decode(B=3, HK=2, G=2, K=8, V=16, slots=[2, 0, 1], seed=5)
    strided = decode(B=3, HK=2, G=2, K=8, V=16, slots=[2, 0, 1], seed=5, slot_gap=37)
    assert torch.equal(strided["state"], dense["state"])
    assert strided["state"].stride(0) == 4 * 8 * 16 + 37
    assert strided["state"].untyped_storage().nbytes() > dense["state"].untyped_storage().nbytes()
    for want, got in zip(R.fused_sigmoid_gating_delta_rule_update(**dense),
                         R.fused_sigmoid_gating_delta_rule_update(**strided)):
        assert torch.equal(want, got)
    # the gaps are the caller's: the functional reference never writes its input pool
    gaps = outside_the_view(strided["state"])
    assert gaps.numel() > 3 * 37 and (gaps == SENTINEL).all()


def test_working_precision_bf16_state():
    args = decode(B=4, HK=2, G=2, K=32, V=32, dtype="bf16", state_dtype="bf16", seed=6)
    out, pool = R.fused_sigmoid_gating_delta_rule_update(**args, precision=R.FP32)
    out64, pool64 = R.fused_sigmoid_gating_delta_rule_update(**args)
    assert out.dtype == pool.dtype == torch.bfloat16
    # fp32 math + one bf16 rounding of each result: within a bf16 ulp of the oracle, not equal.
    for lo, hi in ((out, out64), (pool, pool64)):
        err = (lo.double() - hi).abs()
        assert (err <= 2**-8 * hi.abs() + 1e-6).all() and err.max() > 0
