"""Seeded inputs for the causal-conv1d ops, as keyword dicts in the schema's argument names."""

from __future__ import annotations

import torch
from hypothesis import strategies as st

from cases import axes
from cases.layouts import CONV_LAYOUTS, conv_pool


def conv_weights(D, W, *, dtype=torch.float32, bias=True, seed=0):
    gen = axes.gen(seed)
    w = (torch.randn(D, W, generator=gen) * 0.5).to(dtype)
    b = torch.randn(D, generator=gen).to(dtype) if bias else None
    return w, b


def conv_states(N, D, state_len, *, layout="SD", slot_gap=0, dtype=torch.float32, seed=1):
    gen = axes.gen(seed)
    return conv_pool(torch.randn(N, D, state_len, generator=gen).to(dtype), layout, slot_gap)


def varlen_x(lengths, D, *, dtype=torch.float32, seed=2):
    """x as the varlen op takes it: a [D, T] transposed view of a token-major [T, D] buffer,
    and query_start_loc [B+1] int32."""
    gen = axes.gen(seed)
    T = sum(lengths)
    x = torch.randn(T, D, generator=gen).to(dtype).T
    qsl = axes.offsets(lengths)
    return x, qsl


# --- Hypothesis case descriptions and their tensors (see cases/axes.py) ----------------------

CHANNELS = [1, 7, 32, 44, 64, 100, 257]     # 7, 44, 100, 257: tails at every SIMD width
WIDTHS = [4, 4, 2, 3, 5]                    # 4 in every shipped model; the rest are in contract
PACKED_WIDTH, PACKED_BLOCK = 4, 32          # VNNI packing: W == 4 and D % 32 == 0
SHIPPED_CHANNELS = [32, 64, 96, 2048]


def _conv_common(draw, D=None):
    if draw(st.booleans(), label="shipped"):
        # Half the cases have the shape models ship (bf16, width 4, whole 32-channel blocks, with
        # 2048: more than one channel block): the kernels' fastest paths run only there.
        D = draw(st.sampled_from(SHIPPED_CHANNELS), label="D") if D is None else D
        W, dtype = PACKED_WIDTH, "bf16"
    else:
        D = draw(st.sampled_from(CHANNELS), label="D") if D is None else D
        W, dtype = draw(st.sampled_from(WIDTHS), label="W"), draw(axes.dtypes, label="dtype")
    packable = W == PACKED_WIDTH and D % PACKED_BLOCK == 0
    return dict(D=D, W=W, dtype=dtype,
                bias=draw(st.booleans(), label="bias"), silu=draw(st.booleans(), label="silu"),
                packed=packable and draw(st.booleans(), label="packed"))


def _pool_axes(draw, rows):
    """Pool layout and slot assignment; `cache_indices` False means the argument is absent
    (identity: row i uses slot i)."""
    given = draw(st.booleans(), label="indices_given")
    if given:
        slots, n_slots = draw(axes.slot_indices(rows), label="slots")
    else:
        slots, n_slots = list(range(rows)), rows + draw(st.integers(0, 2), label="extra_slots")
    return dict(layout=draw(st.sampled_from(CONV_LAYOUTS), label="layout"),
                state_extra=draw(st.sampled_from([0, 0, 1, 3]), label="state_extra"),
                slot_gap=draw(axes.slot_gaps, label="slot_gap"), indices_given=given,
                slots=slots, n_slots=max(n_slots, 1))


@st.composite
def pack_cases(draw):
    return dict(D=draw(st.sampled_from([32, 64, 96, 256, 1024]), label="D"), W=PACKED_WIDTH,
                dtype=draw(axes.dtypes, label="dtype"), seed=draw(axes.seeds, label="seed"))


@st.composite
def fwd_cases(draw):
    c = _conv_common(draw)
    c["varlen"] = draw(st.booleans(), label="varlen")
    short = st.sampled_from([0, 1, 2, 3, 4, 5])
    if c["varlen"]:
        lengths = draw(st.lists(st.one_of(short, st.integers(0, 130)), min_size=1, max_size=4),
                       label="lengths")
    else:
        B, L = draw(st.integers(1, 3), label="B"), draw(st.one_of(short, st.integers(0, 70)), label="L")
        lengths = [L] * B
        # [B, D, L] dense, or a transposed view of token-major [B, L, D] (as serving engines hold it)
        c["token_major"] = draw(st.booleans(), label="token_major")
    c["lengths"] = lengths
    c["states"] = draw(st.booleans(), label="states")
    if c["states"]:
        c.update(_pool_axes(draw, len(lengths)))
        c["has_initial_state"] = draw(st.one_of(
            st.none(), st.lists(st.booleans(), min_size=len(lengths), max_size=len(lengths))),
            label="has_initial_state")
    c["regime"] = draw(axes.regimes_with_tiny, label="regime")
    c["seed"] = draw(axes.seeds, label="seed")
    return c


@st.composite
def update_cases(draw):
    c = _conv_common(draw)
    B = draw(st.integers(1, 5), label="B")
    c["B"] = B
    c["L"] = draw(st.sampled_from([0, 0, 1, 2, 3, 5]), label="L")   # 0: a 2-D [B, D] x
    c.update(_pool_axes(draw, B))
    state_len = max(c["W"] - 1 + c["state_extra"], c["L"])
    c["state_extra"] = state_len - (c["W"] - 1)
    if c["L"]:
        hi = min(c["L"], state_len - c["W"] + 2)
        c["accepted"] = draw(st.lists(st.integers(1, hi), min_size=B, max_size=B), label="accepted")
    c["x_row_pad"] = draw(st.sampled_from([0, 0, 16]), label="x_row_pad")
    c["regime"] = draw(axes.regimes_with_tiny, label="regime")
    c["seed"] = draw(axes.seeds, label="seed")
    return c


def _scale(c):
    """Magnitude of x, the states and the bias (the taps stay O(1), so the result has it too)."""
    if c["regime"] == "large":
        return axes.large_scale(c["dtype"])
    if c["regime"] == "tiny":
        return axes.tiny_scale(c["dtype"])
    return 1.0


def _weights(gen, c, act):
    w = (torch.randn(c["D"], c["W"], generator=gen) * 0.5).to(act)
    b = (torch.randn(c["D"], generator=gen) * _scale(c)).to(act) if c["bias"] else None
    if c["packed"]:
        w = w.view(c["D"] // 32, 32, 2, 2).permute(0, 2, 1, 3).reshape(c["D"], c["W"])
    return w, b


def _conv_pool(gen, c, act):
    logical = torch.randn(c["n_slots"], c["D"], c["W"] - 1 + c["state_extra"], generator=gen)
    return conv_pool((logical * _scale(c)).to(act), c["layout"], c["slot_gap"])


def build_pack(c):
    gen = axes.gen(c["seed"])
    return dict(weight=torch.randn(c["D"], c["W"], generator=gen).to(axes.dtype(c["dtype"])))


def build_fwd(c):
    gen = axes.gen(c["seed"])
    act = axes.dtype(c["dtype"])
    w, b = _weights(gen, c, act)
    T = sum(c["lengths"])
    x_tokens = (torch.randn(T, c["D"], generator=gen) * _scale(c)).to(act)
    if c["varlen"]:
        x, qsl = x_tokens.T, axes.offsets(c["lengths"])       # [D, T] view of token-major [T, D]
    else:
        B, L = len(c["lengths"]), c["lengths"][0]
        x, qsl = x_tokens.reshape(B, L, c["D"]).transpose(1, 2), None
        if not c["token_major"]:
            x = x.contiguous()
    args = dict(x=x, weight=w, bias=b, conv_states=None, query_start_loc=qsl, cache_indices=None,
                has_initial_state=None, silu_activation=c["silu"], pad_slot_id=-1,
                is_weight_packed=c["packed"])
    if c["states"]:
        args["conv_states"] = _conv_pool(gen, c, act)
        if c["indices_given"]:
            args["cache_indices"] = axes.slots_tensor(c["slots"])
        if c["has_initial_state"] is not None:
            args["has_initial_state"] = torch.tensor(c["has_initial_state"], dtype=torch.bool)
    return args


def build_update(c):
    gen = axes.gen(c["seed"])
    act = axes.dtype(c["dtype"])
    w, b = _weights(gen, c, act)
    shape = (c["B"], c["L"], c["D"]) if c["L"] else (c["B"], c["D"])
    x = (torch.randn(*shape, generator=gen) * _scale(c)).to(act)
    if c["x_row_pad"]:       # rows of a wider buffer: the row stride is not D
        buf = torch.full((*shape[:-1], c["D"] + c["x_row_pad"]), float("nan"), dtype=act)
        x = buf[..., :c["D"]].copy_(x)
    return dict(x=x, conv_states=_conv_pool(gen, c, act), weight=w, bias=b,
                silu_activation=c["silu"],
                num_accepted_tokens=(torch.tensor(c["accepted"], dtype=torch.int32)
                                     if c["L"] else None),
                conv_state_indices=axes.slots_tensor(c["slots"]) if c["indices_given"] else None,
                pad_slot_id=-1, is_weight_packed=c["packed"])
