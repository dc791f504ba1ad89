"""Seeded inputs for the gated-delta-net ops, as keyword dicts in the schema's argument names.

Values are signed and independent (never aliased); the decay regime is chosen by `decay`:
"normal" (g drawn like a model's, −exp(A_log)·softplus(·)), "zero" (g = 0: no forgetting),
"strong" (g ≈ −8: the state is almost wiped every token) or "extreme" (normal, with one −∞ gate,
which wipes the state, and one token of −1e7 gates inside the sequence: a chunked kernel that
builds its decays from differences of cumulative sums gets −∞ − (−∞) = NaN, or loses every later
small step to the rounding of |G| ≈ 1e7).

Value regimes (`regime`), besides "unit", "large" and "small" (below): "illcond", the chunked
prefill's hard case: nearly parallel keys (a common direction plus 5% noise) of norm 1.38, β in
[0.99, 1] and decays of about −1e-3 (decode and spec draw A_log and b to give the same), so that
β‖k‖² approaches 2 (the delta-rule transition I − βkkᵀ has an eigenvalue near −1) and a chunk's
triangular system I + L has condition numbers in the hundreds: a chunked evaluation loses about
cond·u there, the token-by-token math does not. Each row of these ops records the conditioning
(`max_beta_k2`, and for the prefill `chunk_cond`: reference/gdn_chunked.py).

Each op's DEFAULTS make any partial description complete (cases.complete): a description written
before an axis existed builds as it did then.
"""

from __future__ import annotations

import math

import torch
from hypothesis import strategies as st

from cases import axes
from cases.views import views
from cases.layouts import ssm_pool

DECAYS = ("normal", "zero", "strong", "extreme")
ILLCOND_NORM = 1.38       # β‖k‖² up to 1.9
ILLCOND_DECAY = 1e-3


def _extreme_tokens(lengths: list[int], slots: list[int]) -> tuple[int, int]:
    """(the token of the −∞ gate, the token of the −1e7 gates): in the longest sequence with a
    slot (else the longest), the 4th token (or its last) and the one two thirds in, so that a
    live state is wiped and the big step lands after the reset when there is room."""
    live = [i for i, n in enumerate(lengths) if n and slots[i] != -1] or \
        [i for i, n in enumerate(lengths) if n]
    i = max(live, key=lambda s: lengths[s])
    start, n = sum(lengths[:i]), lengths[i]
    return start + min(3, n - 1), start + (2 * n) // 3


def _decay(gen, shape, c) -> torch.Tensor:
    decay = c["decay"]
    if decay == "zero":
        return torch.zeros(shape)
    if decay == "strong":
        return -8.0 - torch.rand(shape, generator=gen)
    if decay in ("normal", "extreme"):
        g = -torch.nn.functional.softplus(torch.randn(shape, generator=gen)) * 0.5
        if c["regime"] == "illcond":
            g = -ILLCOND_DECAY * (0.5 + torch.rand(shape, generator=gen))
        if decay == "extreme" and shape[1]:
            at_inf, at_big = _extreme_tokens(c["lengths"], c["slots"])
            g[0, at_big, :] = -1e7
            g[0, at_inf, 0] = -float("inf")      # after: one token may carry both (head 0: −∞)
        return g
    raise ValueError(f"decay: expected one of {DECAYS}, got {decay!r}")


# --- Hypothesis case descriptions and their tensors (see cases/axes.py) ----------------------

HEAD_DIMS = [16, 32, 40, 64, 128, 256, 20]  # 40: a tail at 16 lanes, 20 at 8 and 16; K ≠ V drawn freely
GQA_GROUPS = [1, 2, 3, 4]
# Either side of chunk boundaries: every 32 tokens (our kernel's chunk) and every 64 (vLLM's).
CHUNK_EDGES = [0, 1, 2, 31, 32, 33, 63, 64, 65, 95, 96, 97, 127, 128, 129]
QK_STRIDES = ("dense", "distinct")  # distinct: q, k and v each with strides of their own
SOFTPLUS = [(1.0, 20.0), (2.0, 20.0), (0.5, 5.0)]    # (softplus_beta, softplus_threshold)
GATING_INPUTS = ("A_log", "a", "b", "dt_bias")
DECODE_INPUTS = ("A_log", "dt_bias", "q", "k", "v", "a", "b", "state", "state_indices", "cu_seqlens")
PREFILL_INPUTS = ("query", "key", "value", "g", "beta", "initial_state", "cu_seqlens",
                  "initial_state_indices")
SPEC_INPUTS = ("A_log", "dt_bias", "q", "k", "v", "a", "b", "state", "spec_state_indices",
               "num_accepted_tokens", "cu_seqlens")
# Read-only inputs whose rows may all hold the same values (a stride-0 broadcast keeps a case valid).
GATING_BROADCAST = GATING_INPUTS
DECODE_BROADCAST = ("A_log", "dt_bias", "q", "k", "v", "a", "b")
PREFILL_BROADCAST = ("query", "key", "value", "g", "beta")
SPEC_BROADCAST = DECODE_BROADCAST
EPS = [1e-5, 1e-5, 1e-3]            # the prefill's l2norm eps (decode's is fixed at 1e-5)
# "small": q and k with Σx² about the l2norm's eps, where the eps term changes the result (a kernel
# using another eps, or ignoring the argument, drifts there and nowhere else).
REGIMES = (*axes.REGIMES, "small", "illcond")
L2NORM_EPS = 1e-5

_HEADS = dict(HK=1, G=2, K=32, V=32, dtype="bf16", state_dtype="fp32", slot_gap=0, l2norm=True,
              qk_strides="dense", regime="unit", seed=0, views={}, poison=None)
_SLOTS = dict(n_slots=lambda c: max([s + 1 for s in c["slots"]] + [1]))
GATING_DEFAULTS = dict(T=16, HV=4, dtype="bf16", softplus_beta=1.0, softplus_threshold=20.0,
                       regime="unit", seed=0, views={}, poison=None)
# Inputs a poison may land in: those with a value per token (cases/axes.py).
GATING_POISON = ("a", "b")
STEP_POISON = ("q", "k", "v", "a", "b")
PREFILL_POISON = ("query", "key", "value", "g", "beta")
# steps: chained calls, each step's tokens from a seed of its own, the pool carried (long horizons:
# a bf16 or fp16 pool is rounded once per step, so a biased or lossy write-back accumulates).
CHAIN_DECAY = 1e-2
STEPS = st.one_of(*[st.just(1)] * 11, st.integers(100, 300))
DECODE_DEFAULTS = dict(B=2, **_HEADS, cu_seqlens=False, steps=1, softplus_beta=1.0, softplus_threshold=20.0,
                       slots=lambda c: list(range(c["B"])), **_SLOTS)
PREFILL_DEFAULTS = dict(lengths=[5], **_HEADS, decay="normal", eps=L2NORM_EPS,
                        output_final_state=True,
                        slots=lambda c: list(range(len(c["lengths"]))), **_SLOTS)

# Speculative decode: B rows of up to S draft tokens; `slots` is the [B, S] matrix of pool slots
# (one per draft position, -1 for none), `accepted` the accepted count of each row's previous step.
SPEC_DEFAULTS = dict(B=2, S=3, **_HEADS, softplus_beta=1.0, softplus_threshold=20.0,
                     lengths=lambda c: [c["S"]] * c["B"], accepted=lambda c: [1] * c["B"],
                     slots=lambda c: [[r * c["S"] + t for t in range(c["S"])] for r in range(c["B"])],
                     n_slots=lambda c: max([s + 1 for row in c["slots"] for s in row] + [1]))


@st.composite
def gating_cases(draw):
    beta_s, thr = draw(st.sampled_from(SOFTPLUS), label="softplus")
    return dict(T=draw(st.sampled_from([0, 1, 3, 16, 17, 100]), label="T"),
                HV=draw(st.sampled_from([1, 4, 16, 17, 32, 48]), label="HV"),
                dtype=draw(axes.dtypes, label="dtype"), softplus_beta=beta_s,
                softplus_threshold=thr, regime=draw(axes.regimes, label="regime"),
                views=draw(views(GATING_INPUTS, GATING_BROADCAST), label="views"),
                poison=draw(axes.poisons(GATING_POISON), label="poison"),
                seed=draw(axes.seeds, label="seed"))


def _heads(draw):
    return dict(HK=draw(st.integers(1, 3), label="HK"), G=draw(st.sampled_from(GQA_GROUPS), label="G"),
                K=draw(st.sampled_from(HEAD_DIMS), label="K"), V=draw(st.sampled_from(HEAD_DIMS), label="V"))


def _precisions(draw):
    return dict(dtype=draw(axes.dtypes, label="dtype"),
                state_dtype=draw(st.sampled_from(["fp32", "fp32", "bf16", "fp16"]), label="state_dtype"))


def _step_axes(draw, inputs, broadcast) -> dict:
    """The axes decode and speculative decode draw alike: heads, precisions, pool gaps, l2norm,
    softplus parameters, q/k/v strides, value regime, views and seed."""
    beta_s, thr = draw(st.sampled_from(SOFTPLUS), label="softplus")
    return dict(**_heads(draw), **_precisions(draw),
                slot_gap=draw(axes.slot_gaps, label="slot_gap"),
                l2norm=draw(st.booleans(), label="l2norm"),
                softplus_beta=beta_s, softplus_threshold=thr,
                qk_strides=draw(st.sampled_from(QK_STRIDES), label="qk_strides"),
                regime=draw(st.sampled_from(REGIMES), label="regime"),
                views=draw(views(inputs, broadcast), label="views"),
                poison=draw(axes.poisons(STEP_POISON), label="poison"),
                seed=draw(axes.seeds, label="seed"))


@st.composite
def decode_cases(draw):
    B = draw(st.integers(1, 6), label="B")
    slots, n_slots = draw(axes.slot_indices(B), label="slots")
    return dict(B=B, slots=slots, n_slots=n_slots,
                cu_seqlens=draw(st.booleans(), label="cu_seqlens"),
                steps=draw(STEPS, label="steps"),
                **_step_axes(draw, DECODE_INPUTS, DECODE_BROADCAST))


@st.composite
def prefill_cases(draw):
    length = st.one_of(st.sampled_from(CHUNK_EDGES), st.integers(0, 140))
    if axes.THOROUGH:       # long horizons: thousands of tokens, one sequence in about 30
        length = st.one_of(length, *[length] * 28, st.integers(1000, 4096))
    lengths = draw(st.lists(length, min_size=1, max_size=4), label="lengths")
    slots, n_slots = draw(axes.slot_indices(len(lengths)), label="slots")
    return dict(lengths=lengths, **_heads(draw), **_precisions(draw), slots=slots, n_slots=n_slots,
                slot_gap=draw(axes.slot_gaps, label="slot_gap"),
                l2norm=draw(st.booleans(), label="l2norm"),
                decay=draw(st.sampled_from(DECAYS), label="decay"),
                eps=draw(st.sampled_from(EPS), label="eps"),
                # SPEC §3: without it the pool is left unchanged
                output_final_state=draw(st.sampled_from([True, True, True, False]),
                                        label="output_final_state"),
                qk_strides=draw(st.sampled_from(QK_STRIDES), label="qk_strides"),
                regime=draw(st.sampled_from(REGIMES), label="regime"),
                views=draw(views(PREFILL_INPUTS, PREFILL_BROADCAST), label="views"),
                poison=draw(axes.poisons(PREFILL_POISON), label="poison"),
                seed=draw(axes.seeds, label="seed"))


@st.composite
def spec_slot_matrix(draw, rows: int, S: int, accepted: list[int]):
    """([B][S] slots, n_slots): every entry a distinct slot of a pool with up to 3 unused ones, in
    a drawn order; about one row in five a pad row (its resume entry -1) and one other entry in
    six -1 (that draft position stores nothing)."""
    n_slots = max(rows * S + draw(st.integers(0, 3), label="extra_slots"), 1)
    perm = draw(st.permutations(range(n_slots)), label="slot_order")
    matrix = [perm[r * S:(r + 1) * S] for r in range(rows)]
    for r in range(rows):
        pads = draw(st.lists(st.sampled_from([False] * 5 + [True]), min_size=S, max_size=S),
                    label="pad_positions")
        matrix[r] = [-1 if p else s for s, p in zip(matrix[r], pads)]
        if draw(st.sampled_from([False] * 4 + [True]), label="pad_row"):
            matrix[r][accepted[r] - 1] = -1
    return matrix, n_slots


@st.composite
def spec_cases(draw):
    B = draw(st.integers(1, 5), label="B")
    S = draw(st.integers(1, 8), label="S")
    n = st.one_of(st.just(S), st.integers(0, S))       # mostly full rows, some short, some empty
    lengths = draw(st.lists(n, min_size=B, max_size=B), label="lengths")
    accepted = draw(st.lists(st.integers(1, S), min_size=B, max_size=B), label="accepted")
    slots, n_slots = draw(spec_slot_matrix(B, S, accepted), label="slots")
    return dict(B=B, S=S, lengths=lengths, accepted=accepted, slots=slots, n_slots=n_slots,
                **_step_axes(draw, SPEC_INPUTS, SPEC_BROADCAST))


def _own_strides(t: torch.Tensor, pad_head: int, pad_token: int) -> torch.Tensor:
    """t [1, T, H, D] as a view with row padding after each head and each token, the padding
    NaN: a kernel that addresses t with another tensor's strides reads NaN."""
    _, T, H, D = t.shape
    buf = torch.full((1, T, H * (D + pad_head) + pad_token), float("nan"), dtype=t.dtype)
    view = buf[..., :H * (D + pad_head)].unflatten(-1, (H, D + pad_head))[..., :D]
    view.copy_(t)
    return view


def _qkv(gen, T, c, act):
    """q, k, v for T tokens. Without the in-kernel l2norm, q and k come pre-scaled to a norm of
    about 1 (the model's regime: the delta-rule transition is then non-expansive); in the large
    regime v (and, under l2norm, q and k) sit near the narrowest dtype's range."""
    HV = c["HK"] * c["G"]
    big = axes.large_scale(c["dtype"], c["state_dtype"]) if c["regime"] == "large" else 1.0
    qk_scale = big if c["l2norm"] else c["K"] ** -0.5
    if c["regime"] == "small":      # Σ q² ≈ Σ k² ≈ eps
        qk_scale = (c.get("eps", L2NORM_EPS) / c["K"]) ** 0.5
    q = (torch.randn(1, T, c["HK"], c["K"], generator=gen) * qk_scale).to(act)
    k = torch.randn(1, T, c["HK"], c["K"], generator=gen) * qk_scale
    if c["regime"] == "illcond":    # nearly parallel, norm ILLCOND_NORM (see the module docstring)
        direction = torch.nn.functional.normalize(torch.randn(c["HK"], c["K"], generator=gen), dim=-1)
        k = direction + 0.05 * torch.randn(1, T, c["HK"], c["K"], generator=gen) / c["K"] ** 0.5
        k = torch.nn.functional.normalize(k, dim=-1) * ILLCOND_NORM
    k = k.to(act)
    v = (torch.randn(1, T, HV, c["V"], generator=gen) * big).to(act)
    if c["qk_strides"] == "distinct":
        q, v = _own_strides(q, 8, 0), _own_strides(v, 0, 24)
    return q, k, v


def _pool(gen, c):
    HV = c["HK"] * c["G"]
    big = axes.large_scale(c["dtype"], c["state_dtype"]) if c["regime"] == "large" else 1.0
    logical = torch.randn(c["n_slots"], HV, c["K"], c["V"], generator=gen) * 0.5 * big
    return ssm_pool(logical.to(axes.dtype(c["state_dtype"])), c["slot_gap"])


def build_gating(c):
    gen = axes.gen(c["seed"])
    act = axes.dtype(c["dtype"])
    T, HV = c["T"], c["HV"]
    # Large: a + dt_bias spans a few times the softplus threshold, so both branches and the
    # switch between them are hit; b saturates the sigmoid.
    a_scale = 3 * c["softplus_threshold"] / c["softplus_beta"] if c["regime"] == "large" else 1.0
    b_scale = 40.0 if c["regime"] == "large" else 1.0
    return dict(A_log=torch.rand(HV, generator=gen) * 4 - 2,
                a=(torch.randn(T, HV, generator=gen) * a_scale).to(act),
                b=(torch.randn(T, HV, generator=gen) * b_scale).to(act),
                dt_bias=torch.randn(HV, generator=gen).to(act),
                softplus_beta=c["softplus_beta"], softplus_threshold=c["softplus_threshold"])


def _gates(gen, T, HV, c, act) -> dict:
    """A_log, dt_bias, a, b of a decode or spec step: g = −exp(A_log)·softplus(a + dt_bias),
    β = sigmoid(b). Large: a and b across the softplus threshold and the sigmoid's saturation;
    illcond: g ≈ −1e-3 (A_log ≈ log 1e-3) and β ≥ 0.99 (b ≥ 4.6); a chain (steps > 1): g about
    −CHAIN_DECAY, a memory of about a hundred steps like a long-context head of a trained model,
    so that what each step's write-back rounding loses accumulates over the chain."""
    gate_scale = 10.0 if c["regime"] == "large" else 1.0
    A_log = torch.rand(HV, generator=gen) * 2 - 1
    dt_bias = torch.randn(HV, generator=gen).to(act)
    a = torch.randn(T, HV, generator=gen) * gate_scale
    b = torch.randn(T, HV, generator=gen) * gate_scale
    if c["regime"] == "illcond":
        A_log = math.log(ILLCOND_DECAY) + 0.5 * A_log
        b = 4.6 + b.abs()
    elif c.get("steps", 1) > 1:     # a chain forgets slowly: errors accumulate, not fade
        A_log = A_log + math.log(CHAIN_DECAY)
    return dict(A_log=A_log, dt_bias=dt_bias, a=a.to(act), b=b.to(act))


def build_decode(c):
    gen = axes.gen(c["seed"])
    act = axes.dtype(c["dtype"])
    B, HV = c["B"], c["HK"] * c["G"]
    q, k, v = _qkv(gen, B, c, act)
    gates = _gates(gen, B, HV, c, act)
    return dict(A_log=gates["A_log"], dt_bias=gates["dt_bias"],
                q=q, k=k, v=v, a=gates["a"], b=gates["b"],
                state=_pool(gen, c), state_indices=axes.slots_tensor(c["slots"]),
                cu_seqlens=axes.offsets([1] * B) if c["cu_seqlens"] else None,
                use_qk_l2norm_in_kernel=c["l2norm"],
                softplus_beta=c["softplus_beta"], softplus_threshold=c["softplus_threshold"])


def build_prefill(c):
    gen = axes.gen(c["seed"])
    act = axes.dtype(c["dtype"])
    T, HV = sum(c["lengths"]), c["HK"] * c["G"]
    q, k, v = _qkv(gen, T, c, act)
    g = _decay(gen, (1, T, HV), c)
    beta = torch.rand(1, T, HV, generator=gen)
    if c["regime"] == "illcond":
        beta = 0.99 + 0.01 * beta
    return dict(query=q, key=k, value=v, g=g, beta=beta.to(act),
                initial_state=_pool(gen, c), output_final_state=c["output_final_state"],
                cu_seqlens=axes.offsets(c["lengths"]), head_first=False,
                use_qk_l2norm_in_kernel=c["l2norm"],
                initial_state_indices=axes.slots_tensor(c["slots"]), eps=c["eps"])


def build_spec(c):
    gen = axes.gen(c["seed"])
    act = axes.dtype(c["dtype"])
    T, HV = sum(c["lengths"]), c["HK"] * c["G"]
    q, k, v = _qkv(gen, T, c, act)
    gates = _gates(gen, T, HV, c, act)
    return dict(A_log=gates["A_log"], dt_bias=gates["dt_bias"],
                q=q[0], k=k[0], v=v[0], a=gates["a"], b=gates["b"],
                state=_pool(gen, c),
                spec_state_indices=torch.tensor(c["slots"], dtype=torch.int32).reshape(c["B"], c["S"]),
                num_accepted_tokens=axes.slots_tensor(c["accepted"]),
                cu_seqlens=axes.offsets(c["lengths"]),
                use_qk_l2norm_in_kernel=c["l2norm"],
                softplus_beta=c["softplus_beta"], softplus_threshold=c["softplus_threshold"])
