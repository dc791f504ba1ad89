"""One whole speculative-decode step, as vLLM's CPU spec path runs it (SPEC §6 and §7): the 3-D
conv update over each row's draft tokens, its output split into q, k and v, then the speculative
GDN update. Our kernels composed are judged against the references composed the same way, by the
harness's comparator (metrics + policy): the oracle is float64 end to end; the baseline is the fp32
references with the conv output rounded to the activation dtype, as one kernel hands it to the
next. What each op does alone is the registry's business; this checks the hand-over (shapes,
strides of the split, the shared slot numbering and accepted counts)."""

from __future__ import annotations

import pytest
import torch

import cases
import reference as R
from harness import metrics, policy

HK, K, HV, V = 2, 32, 4, 32
D = 2 * HK * K + HV * V          # q, k and v channels, as the model's mixed projection lays them


def split_qkv(y: torch.Tensor):
    """[B, L, D] conv output -> q, k [T, HK, K] and v [T, HV, V]: views of the token rows."""
    t = y.reshape(-1, D)
    return (t[:, :HK * K].unflatten(-1, (HK, K)), t[:, HK * K:2 * HK * K].unflatten(-1, (HK, K)),
            t[:, 2 * HK * K:].unflatten(-1, (HV, V)))


def inputs(dtype: str, state_dtype: str, S: int, accepted: list[int], slots: list[list[int]]):
    B, n_slots = len(accepted), max(s for row in slots for s in row) + 1
    conv = cases.build("causal_conv1d_update", dict(
        D=D, W=4, dtype=dtype, bias=True, silu=True, B=B, L=S, accepted=accepted,
        slots=[row[0] for row in slots], n_slots=n_slots, state_extra=S - 1, seed=5))
    gdn = cases.build("fused_sigmoid_gating_delta_rule_update_spec", dict(
        B=B, S=S, lengths=[S] * B, accepted=accepted, slots=slots, n_slots=n_slots, HK=HK,
        G=HV // HK, K=K, V=V, dtype=dtype, state_dtype=state_dtype, seed=6))
    return conv, gdn


def ours(ops, conv, gdn):
    conv_pool, pool = conv["conv_states"].clone(), gdn["state"].clone()
    y = ops.causal_conv1d_update(**dict(conv, conv_states=conv_pool))
    q, k, v = split_qkv(y)
    out = ops.fused_sigmoid_gating_delta_rule_update_spec(**dict(gdn, q=q, k=k, v=v, state=pool))
    return dict(out=out, state=pool, conv_states=conv_pool)


def references(conv, gdn, precision):
    y, conv_pool = R.causal_conv1d_update(**conv, precision=precision)
    q, k, v = split_qkv(y)
    out, pool = R.fused_sigmoid_gating_delta_rule_update_spec(**dict(gdn, q=q, k=k, v=v),
                                                              precision=precision)
    return dict(out=out, state=pool, conv_states=conv_pool)


STEPS = [  # (dtype, state dtype, S, accepted counts, [B][S] slots: column 0 is the conv's slot)
    ("bf16", "fp32", 4, [1, 4, 2], [[3, 7, 0, 9], [5, 1, 10, 2], [8, 4, 11, 6]]),
    ("bf16", "bf16", 2, [2, 1, 2, 1], [[6, 0], [2, 7], [4, 1], [3, 5]]),
    ("fp16", "fp32", 3, [3, 2], [[1, 4, 0], [5, 2, -1]]),
    ("fp32", "fp32", 1, [1, 1], [[1], [0]]),
]


@pytest.mark.parametrize("dtype, state_dtype, S, accepted, slots", STEPS,
                         ids=[f"{d}-{s}-S{n}" for d, s, n, _, _ in STEPS])
def test_spec_step_composed(ops, dtype, state_dtype, S, accepted, slots):
    conv, gdn = inputs(dtype, state_dtype, S, accepted, slots)
    got = ours(ops, conv, gdn)
    oracle = references(conv, gdn, R.ORACLE)
    base = references(conv, gdn, R.FP32)
    bad = []
    for name in ("out", "state"):
        m = metrics.measure(got[name], oracle[name], base[name])
        verdict = policy.judge(name, got[name].dtype, m)
        if not verdict.ok:
            bad.append(verdict.reason)
    mismatches = metrics.bit_mismatches(got["conv_states"].contiguous(), base["conv_states"])
    if mismatches:
        bad.append(f"conv_states: {mismatches} elements differ from the shifted history")
    assert not bad, "; ".join(bad)
