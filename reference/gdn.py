"""Gated delta net: gating (SPEC §1), decode update (§2), prefill (§3) and speculative decode (§7),
token by token.

Notation as in SPEC.md: T tokens, B rows, HK q/k heads, HV = G·HK v heads, K q/k head dim, V v head
dim. The state of one head is S[k, v] (K rows, V columns) and a pool holds N slots [N, HV, K, V].

The references are functional: they return the results *and* a new pool instead of writing in
place, so the harness can compare a backend's pool with them and check the untouched bytes against
the original. The new pool is dense and holds every slot (only the indexed ones changed).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from reference.checks import (PAD_SLOT_ID, check, check_cpu, check_float, check_int32, check_shape,
                              check_slots_apart, sequence_bounds, slot_plan, spec_slot_plan)
from reference.precision import ORACLE, Precision

L2NORM_EPS = 1e-5


# --- building blocks --------------------------------------------------------------------------

def gates(A_log, a, b, dt_bias, softplus_beta=1.0, softplus_threshold=20.0):
    """g = −exp(A_log)·softplus(a + dt_bias) and β = sigmoid(b), in the inputs' dtype.

    a, b: [..., HV]; A_log, dt_bias: [HV]. softplus is torch's: x where β_s·x > threshold.
    """
    g = -torch.exp(A_log) * F.softplus(a + dt_bias, beta=softplus_beta, threshold=softplus_threshold)
    return g, torch.sigmoid(b)


def l2norm(x: torch.Tensor, eps: float = L2NORM_EPS) -> torch.Tensor:
    """x / sqrt(Σx² + eps) over the last dim."""
    return x / torch.sqrt((x * x).sum(-1, keepdim=True) + eps)


def per_v_head(x: torch.Tensor, hv: int) -> torch.Tensor:
    """GQA: [..., HK, K] -> [..., HV, K]; v head `h` reads q/k head `h // G`."""
    return x.repeat_interleave(hv // x.shape[-2], dim=-2)


def delta_rule_step(S, q, k, v, g, beta, scale):
    """One token, every leading index at once.

    S [..., HV, K, V]; q, k [..., HV, K] (already normalised); v [..., HV, V]; g, beta [..., HV].
    Forget, then error-correct, then read the updated state. Returns (new S, o [..., HV, V]).
    """
    S = S * torch.exp(g)[..., None, None]
    delta = beta[..., None] * (v - torch.einsum("...kv,...k->...v", S, k))
    S = S + k[..., :, None] * delta[..., None, :]
    o = scale * torch.einsum("...kv,...k->...v", S, q)
    return S, o


def check_gqa(q, k, v, arg_q="q", arg_k="k", arg_v="v"):
    """q, k [..., HK, K] and v [..., HV, V] with matching leading dims and HV % HK == 0."""
    check_float(q, arg_q), check_float(k, arg_k), check_float(v, arg_v)
    check(q.shape == k.shape, arg_k, f"expected the shape of {arg_q} {list(q.shape)}, "
                                     f"got {list(k.shape)}")
    check(v.shape[:-2] == q.shape[:-2], arg_v, f"leading dims {list(v.shape[:-2])} differ from "
                                               f"{arg_q}'s {list(q.shape[:-2])}")
    hk, hv = q.shape[-2], v.shape[-2]
    check(hk > 0 and hv % hk == 0, arg_v, f"v heads ({hv}) must be a multiple of q/k heads ({hk})")


def check_pool(state, hv, K, V, arg="state"):
    check_float(state, arg)
    check_shape(state, arg, [None, hv, K, V])
    check_slots_apart(state, arg)


def check_gating(A_log, a, b, dt_bias, hv, softplus_beta):
    """Floating-point gate inputs, A_log and dt_bias [HV] (a's and b's shapes are the caller's),
    β_s > 0 (softplus divides by it)."""
    for t, name in ((A_log, "A_log"), (a, "a"), (b, "b"), (dt_bias, "dt_bias")):
        check_float(t, name)
    check_shape(A_log, "A_log", [hv])
    check_shape(dt_bias, "dt_bias", [hv])
    check(softplus_beta > 0, "softplus_beta", f"must be positive, got {softplus_beta}")


def prepare_qk(q, k, hv, use_l2norm, eps, precision):
    """q̂·scale and k̂ per v head in the compute dtype: [..., HV, K] each."""
    q, k = precision.up(q), precision.up(k)
    if use_l2norm:
        q, k = l2norm(q, eps), l2norm(k, eps)
    scale = 1.0 / math.sqrt(q.shape[-1])
    return per_v_head(q, hv), per_v_head(k, hv), scale


# --- §1 ---------------------------------------------------------------------------------------

def fused_gdn_gating(A_log, a, b, dt_bias, softplus_beta=1.0, softplus_threshold=20.0, *,
                     precision: Precision = ORACLE):
    """(g [1, T, HV] fp32, beta [1, T, HV] in b's dtype)."""
    check_cpu(A_log=A_log, a=a, b=b, dt_bias=dt_bias)
    check(a.dim() == 2, "a", f"expected shape [T, HV], got {list(a.shape)}")
    T, HV = a.shape
    check_shape(b, "b", [T, HV])
    check_gating(A_log, a, b, dt_bias, HV, softplus_beta)
    up = precision.up
    g, beta = gates(up(A_log), up(a), up(b), up(dt_bias), softplus_beta, softplus_threshold)
    return (precision.result(g, torch.float32)[None],
            precision.result(beta, b.dtype)[None])


# --- §2 ---------------------------------------------------------------------------------------

def fused_sigmoid_gating_delta_rule_update(
        A_log, dt_bias, q, k, v, a, b, state, state_indices, cu_seqlens=None,
        use_qk_l2norm_in_kernel=True, softplus_beta=1.0, softplus_threshold=20.0, *,
        pad_slot_id: int = PAD_SLOT_ID, precision: Precision = ORACLE):
    """Decode: one token per row. Returns (out [B, 1, HV, V], new pool [N, HV, K, V]).

    Row b's token uses its own a[b], b[b] and updates slot state_indices[b]; a pad row leaves the
    pool alone and outputs zeros. cu_seqlens, when given, must say one token per row.
    """
    check_cpu(A_log=A_log, dt_bias=dt_bias, q=q, k=k, v=v, a=a, b=b, state=state,
              state_indices=state_indices, cu_seqlens=cu_seqlens)
    check(q.dim() == 4 and q.shape[0] == 1, "q", f"expected shape [1, B, HK, K], got {list(q.shape)}")
    check_gqa(q, k, v)
    _, B, HK, K = q.shape
    HV, V = v.shape[-2:]
    check_shape(a, "a", [B, HV])
    check_shape(b, "b", [B, HV])
    check_gating(A_log, a, b, dt_bias, HV, softplus_beta)
    check_pool(state, HV, K, V)
    if cu_seqlens is not None:
        bounds = sequence_bounds(cu_seqlens, B, "cu_seqlens", count=B)
        check(all(n == 1 for _, n in bounds), "cu_seqlens",
              f"decode takes one token per row, got offsets {cu_seqlens.tolist()}")
    slots = slot_plan(state_indices, B, state.shape[0], pad_slot_id, "state_indices")

    up = precision.up
    qh, kh, scale = prepare_qk(q[0], k[0], HV, use_qk_l2norm_in_kernel, L2NORM_EPS, precision)
    g, beta = gates(up(A_log), up(a), up(b), up(dt_bias), softplus_beta, softplus_threshold)

    new_state = precision.copy(state)
    out = torch.zeros(B, HV, V, dtype=precision.compute)
    rows = [r for r, s in enumerate(slots) if s is not None]
    live = [slots[r] for r in rows]
    if rows:
        S, o = delta_rule_step(new_state[live], qh[rows], kh[rows], up(v[0])[rows], g[rows],
                               beta[rows], scale)
        new_state[live] = S
        out[rows] = o
    return (precision.result(out[:, None], q.dtype),
            precision.result(new_state, state.dtype))


# --- §3 ---------------------------------------------------------------------------------------

def check_prefill_args(query, key, value, g, beta, initial_state, cu_seqlens, head_first,
                       initial_state_indices, pad_slot_id):
    """Shape checks shared by both prefill forms; returns [(start, length, slot or None)]."""
    check_cpu(query=query, key=key, value=value, g=g, beta=beta, initial_state=initial_state,
              cu_seqlens=cu_seqlens, initial_state_indices=initial_state_indices)
    check(not head_first, "head_first", "only head_first=False ([1, T, H, D]) is in the contract")
    check(query.dim() == 4 and query.shape[0] == 1, "query",
          f"expected shape [1, T, HK, K], got {list(query.shape)}")
    check_gqa(query, key, value, "query", "key", "value")
    _, T, HK, K = query.shape
    HV, V = value.shape[-2:]
    check(g.dtype in (torch.float32, torch.float64), "g",     # float64: the reference's own
          f"expected float32 log-space decays, got {g.dtype}")
    check_float(beta, "beta")
    check_shape(g, "g", [1, T, HV])
    check_shape(beta, "beta", [1, T, HV])
    check_pool(initial_state, HV, K, V, "initial_state")
    check(cu_seqlens is not None, "cu_seqlens", "is required ([N+1] offsets)")
    bounds = sequence_bounds(cu_seqlens, T, "cu_seqlens")
    check(initial_state_indices is not None, "initial_state_indices", "is required ([N] slots)")
    slots = slot_plan(initial_state_indices, len(bounds), initial_state.shape[0], pad_slot_id,
                      "initial_state_indices")
    return [(s, n, slot) for (s, n), slot in zip(bounds, slots)]


def prepare_prefill(query, key, value, g, beta, use_l2norm, eps, precision):
    """Token-major tensors in the compute dtype: q̂·scale folded in, per v head.

    Returns q [T, HV, K], k [T, HV, K], v [T, HV, V], g [T, HV], beta [T, HV].
    """
    HV = value.shape[-2]
    qh, kh, scale = prepare_qk(query[0], key[0], HV, use_l2norm, eps, precision)
    up = precision.up
    return qh * scale, kh, up(value[0]), up(g[0]), up(beta[0])


def chunk_gated_delta_rule(query, key, value, g, beta, initial_state, output_final_state=True,
                           cu_seqlens=None, head_first=False, use_qk_l2norm_in_kernel=False,
                           initial_state_indices=None, eps=L2NORM_EPS, *,
                           pad_slot_id: int = PAD_SLOT_ID, precision: Precision = ORACLE):
    """Prefill, as the token-by-token recurrence. Returns (out [1, T, HV, V], new pool).

    Sequence i starts from slot initial_state_indices[i] and applies one delta-rule step per
    token; its final state replaces the slot when output_final_state is true (SPEC §3: when false
    the pool is left unchanged). A pad sequence reads and writes no state, outputs zeros.

    Vectorised over sequences and heads; the loop runs over time only, so a sequence that has
    ended simply drops out of the active set.
    """
    seqs = check_prefill_args(query, key, value, g, beta, initial_state, cu_seqlens, head_first,
                              initial_state_indices, pad_slot_id)
    q, k, v, g_, beta_ = prepare_prefill(query, key, value, g, beta, use_qk_l2norm_in_kernel, eps,
                                         precision)
    T, HV, V = v.shape
    out = torch.zeros(T, HV, V, dtype=precision.compute)
    new_state = precision.copy(initial_state)

    live = [(start, n, slot) for start, n, slot in seqs if slot is not None and n > 0]
    if live:
        starts = torch.tensor([s for s, _, _ in live])
        lengths = torch.tensor([n for _, n, _ in live])
        slots = [slot for _, _, slot in live]
        S = new_state[slots]
        for t in range(int(lengths.max())):
            active = lengths > t
            if bool(active.all()):
                tok = starts + t
                S, out[tok] = delta_rule_step(S, q[tok], k[tok], v[tok], g_[tok], beta_[tok], 1.0)
            else:
                tok = starts[active] + t
                S[active], out[tok] = delta_rule_step(S[active], q[tok], k[tok], v[tok], g_[tok],
                                                      beta_[tok], 1.0)
        if output_final_state:
            new_state[slots] = S
    return (precision.result(out[None], query.dtype),
            precision.result(new_state, initial_state.dtype))


# --- §7 ---------------------------------------------------------------------------------------

def fused_sigmoid_gating_delta_rule_update_spec(
        A_log, dt_bias, q, k, v, a, b, state, spec_state_indices, num_accepted_tokens, cu_seqlens,
        use_qk_l2norm_in_kernel=True, softplus_beta=1.0, softplus_threshold=20.0, *,
        pad_slot_id: int = PAD_SLOT_ID, precision: Precision = ORACLE):
    """Speculative decode: row i owns tokens cu_seqlens[i]:cu_seqlens[i+1] (at most S draft
    tokens). Returns (out [T, HV, V], new pool [N, HV, K, V]).

    Row i resumes from slot spec_state_indices[i, num_accepted_tokens[i] − 1], takes one gated
    delta-rule step per token (gates from the token's own a, b), and stores the state after its
    t-th token into slot spec_state_indices[i, t] (a pad entry stores nothing). A pad resume slot
    makes the row a pad row: zeros out, no state read or written. The running state stays in the
    compute precision between tokens; each stored state is rounded once, as it is stored.

    Vectorised over rows and heads; the loop runs over draft positions.
    """
    check_cpu(A_log=A_log, dt_bias=dt_bias, q=q, k=k, v=v, a=a, b=b, state=state,
              spec_state_indices=spec_state_indices, num_accepted_tokens=num_accepted_tokens,
              cu_seqlens=cu_seqlens)
    check(q.dim() == 3, "q", f"expected shape [T, HK, K], got {list(q.shape)}")
    check_gqa(q, k, v)
    T, HK, K = q.shape
    HV, V = v.shape[-2:]
    check_shape(a, "a", [T, HV])
    check_shape(b, "b", [T, HV])
    check_gating(A_log, a, b, dt_bias, HV, softplus_beta)
    check_pool(state, HV, K, V)
    check_int32(spec_state_indices, "spec_state_indices")
    check(spec_state_indices.dim() == 2, "spec_state_indices",
          f"expected shape [B, S], got {list(spec_state_indices.shape)}")
    B = spec_state_indices.shape[0]
    check_int32(cu_seqlens, "cu_seqlens")
    check(cu_seqlens.dim() == 1 and cu_seqlens.numel() == B + 1, "cu_seqlens",
          f"expected {B + 1} offsets (B = {B} rows of spec_state_indices), got shape "
          f"{list(cu_seqlens.shape)}")
    bounds = sequence_bounds(cu_seqlens, T, "cu_seqlens")
    plan = spec_slot_plan(spec_state_indices, num_accepted_tokens, [n for _, n in bounds],
                          state.shape[0], pad_slot_id)

    up = precision.up
    qh, kh, scale = prepare_qk(q, k, HV, use_qk_l2norm_in_kernel, L2NORM_EPS, precision)
    g, beta = gates(up(A_log), up(a), up(b), up(dt_bias), softplus_beta, softplus_threshold)
    vv = up(v)

    new_state = precision.copy(state)
    out = torch.zeros(T, HV, V, dtype=precision.compute)
    live = [(start, n, resume, stores) for (start, n), (resume, stores) in zip(bounds, plan)
            if resume is not None]
    if live:
        starts = torch.tensor([s for s, _, _, _ in live])
        lengths = torch.tensor([n for _, n, _, _ in live])
        S = new_state[[r for _, _, r, _ in live]]
        for t in range(int(lengths.max())):
            active = (lengths > t).nonzero().flatten()
            tok = starts[active] + t
            S[active], out[tok] = delta_rule_step(S[active], qh[tok], kh[tok], vv[tok], g[tok],
                                                  beta[tok], scale)
            for i in active.tolist():
                slot = live[i][3][t]
                if slot is not None:
                    new_state[slot] = S[i]
    return (precision.result(out, q.dtype),
            precision.result(new_state, state.dtype))
