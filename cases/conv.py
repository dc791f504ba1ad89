"""Seeded inputs for the causal-conv1d ops, as keyword dicts in the schema's argument names.

Value regimes (`regime`): "unit" and "large" as for every op (cases/axes.py); "tiny" (x, the states
and the bias around the dtype's smallest normal, two in three subnormal); "tiny_taps" (subnormal
taps and bias, O(1) data); "tiny_products" (normal data and bias just above the smallest normal,
whose products with O(1) taps fall below it). Arithmetic that flushes subnormals (vdpbf16ps, FTZ/DAZ)
loses the result in each of the three in another way. "sweep" (causal_conv1d_fwd in batch mode
with one token per row): x runs through every magnitude of the dtype, ±0, ±inf, NaN and the extremes,
through an identity conv (last tap 1, no bias), which isolates the SiLU.

Each op's DEFAULTS make any partial description complete (cases.complete).
"""

from __future__ import annotations

import torch
from hypothesis import strategies as st

from cases import axes
from cases.views import views
from cases.layouts import CONV_LAYOUTS, conv_pool


# --- Hypothesis case descriptions and their tensors (see cases/axes.py) ----------------------

CHANNELS = [1, 7, 32, 44, 64, 100, 257]     # 7, 44, 100, 257: tails at every SIMD width
WIDTHS = [4, 4, 2, 3, 5]                    # 4 in every shipped model; the rest are in contract
PACKED_WIDTH, PACKED_BLOCK = 4, 32          # VNNI packing: W == 4 and D % 32 == 0
SHIPPED_CHANNELS = [32, 64, 96, 2048]
REGIMES = (*axes.REGIMES_WITH_TINY, "tiny_taps", "tiny_products")
regimes = st.sampled_from(REGIMES)

FWD_INPUTS = ("x", "weight", "bias", "conv_states", "query_start_loc", "cache_indices",
              "has_initial_state")
UPDATE_INPUTS = ("x", "conv_states", "weight", "bias", "num_accepted_tokens", "conv_state_indices")
PACK_INPUTS = ("weight",)
# Read-only inputs whose rows may all hold the same values (a stride-0 broadcast keeps a case valid).
FWD_BROADCAST = ("x", "weight", "bias", "has_initial_state")
UPDATE_BROADCAST = ("x", "weight", "bias", "num_accepted_tokens")
# The pad id of the slot indices: the descriptions write pads as -1; the builder puts this value
# in the index tensors and passes it as pad_slot_id (a kernel that compares with a literal -1 fails).
PAD_IDS = [-1, -1, -1, -3, 1000]

_CONV = dict(D=32, W=4, dtype="bf16", bias=True, silu=False, packed=False, regime="unit", seed=0,
             views={}, poison=None)
_POOL = dict(layout="SD", state_extra=0, slot_gap=0, indices_given=True, pad_slot_id=-1)
_N_SLOTS = dict(n_slots=lambda c: max([s + 1 for s in c["slots"]] + [1]))
PACK_DEFAULTS = dict(D=32, W=4, dtype="bf16", seed=0, views={}, poison=None)
def _slots(c) -> "torch.Tensor":
    """The case's slot indices, pads written as its pad_slot_id."""
    return axes.slots_tensor([c["pad_slot_id"] if s == -1 else s for s in c["slots"]])


FWD_DEFAULTS = dict(**_CONV, varlen=True, lengths=[5], token_major=True, states=True, **_POOL,
                    slots=lambda c: list(range(len(c["lengths"]))), **_N_SLOTS,
                    has_initial_state=None)
UPDATE_DEFAULTS = dict(**_CONV, B=2, L=0, **_POOL, slots=lambda c: list(range(c["B"])),
                       **_N_SLOTS, accepted=lambda c: [1] * c["B"], x_row_pad=0)


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
                slots=slots, n_slots=max(n_slots, 1),
                pad_slot_id=draw(st.sampled_from(PAD_IDS), label="pad_slot_id"))


@st.composite
def pack_cases(draw):
    return dict(D=draw(st.sampled_from([32, 64, 96, 256, 1024]), label="D"), W=PACKED_WIDTH,
                dtype=draw(axes.dtypes, label="dtype"),
                views=draw(views(PACK_INPUTS, PACK_INPUTS), label="views"),
                seed=draw(axes.seeds, label="seed"))


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
    c["regime"] = draw(regimes, label="regime")
    c["views"] = draw(views(FWD_INPUTS, FWD_BROADCAST), label="views")
    c["poison"] = draw(axes.poisons(("x",)), label="poison")
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
    c["regime"] = draw(regimes, label="regime")
    c["views"] = draw(views(UPDATE_INPUTS, UPDATE_BROADCAST), label="views")
    c["poison"] = draw(axes.poisons(("x",)), label="poison")
    c["seed"] = draw(axes.seeds, label="seed")
    return c


def _scale(c):
    """Magnitude of x, the states and the bias (the taps stay O(1), so the result has it too)."""
    if c["regime"] == "large":
        return axes.large_scale(c["dtype"])
    if c["regime"] == "tiny":
        return axes.tiny_scale(c["dtype"])
    return 1.0


def _values(gen, shape, c):
    """Data (x, history, bias) of the case's regime."""
    t = torch.randn(*shape, generator=gen)
    if c["regime"] == "tiny_products":      # normal, in [2, 4)·tiny: products with taps below tiny
        return torch.where(t < 0, -1.0, 1.0) * (2 + 2 * torch.rand(shape, generator=gen)) \
            * axes.tiny_scale(c["dtype"])
    return t * _scale(c)


def _weights(gen, c, act):
    w = torch.randn(c["D"], c["W"], generator=gen) * 0.5
    b = _values(gen, (c["D"],), c) if c["bias"] else None
    if c["regime"] == "tiny_taps":          # subnormal taps and bias
        w = w * axes.tiny_scale(c["dtype"])
        b = None if b is None else b * axes.tiny_scale(c["dtype"])
    if c["regime"] == "sweep":              # identity: the last tap 1, the rest 0
        w = torch.zeros(c["D"], c["W"])
        w[:, -1] = 1
    w, b = w.to(act), None if b is None else b.to(act)
    if c["packed"]:
        w = w.view(c["D"] // 32, 32, 2, 2).permute(0, 2, 1, 3).reshape(c["D"], c["W"])
    return w, b


def _conv_pool(gen, c, act):
    logical = _values(gen, (c["n_slots"], c["D"], c["W"] - 1 + c["state_extra"]), c)
    return conv_pool(logical.to(act), c["layout"], c["slot_gap"])


def silu_sweep(dtype: torch.dtype) -> torch.Tensor:
    """Every binade of the dtype, both signs, a dense stretch around 0, and the special values."""
    info = torch.finfo(dtype)
    return torch.cat([torch.linspace(-100, 100, 4001), torch.logspace(-30, 38, 300),
                      -torch.logspace(-30, 38, 300),
                      torch.tensor([0.0, -0.0, float("inf"), -float("inf"), float("nan"),
                                    info.max, -info.max, info.tiny, -info.tiny])]).to(dtype)


def build_pack(c):
    gen = axes.gen(c["seed"])
    return dict(weight=torch.randn(c["D"], c["W"], generator=gen).to(axes.dtype(c["dtype"])))


def build_fwd(c):
    gen = axes.gen(c["seed"])
    act = axes.dtype(c["dtype"])
    w, b = _weights(gen, c, act)
    T = sum(c["lengths"])
    x_tokens = _values(gen, (T, c["D"]), c).to(act)
    if c["regime"] == "sweep":              # the sweep, repeated to fill the tokens
        sweep = silu_sweep(act)
        x_tokens = sweep[torch.arange(T * c["D"]) % sweep.numel()].view(T, c["D"])
    if c["varlen"]:
        x, qsl = x_tokens.T, axes.offsets(c["lengths"])       # [D, T] view of token-major [T, D]
    else:
        B, L = len(c["lengths"]), c["lengths"][0]
        x, qsl = x_tokens.reshape(B, L, c["D"]).transpose(1, 2), None
        if not c["token_major"]:
            x = x.contiguous()
    args = dict(x=x, weight=w, bias=b, conv_states=None, query_start_loc=qsl, cache_indices=None,
                has_initial_state=None, silu_activation=c["silu"], pad_slot_id=c["pad_slot_id"],
                is_weight_packed=c["packed"])
    if c["states"]:
        args["conv_states"] = _conv_pool(gen, c, act)
        if c["indices_given"]:
            args["cache_indices"] = _slots(c)
        if c["has_initial_state"] is not None:
            args["has_initial_state"] = torch.tensor(c["has_initial_state"], dtype=torch.bool)
    return args


def build_update(c):
    gen = axes.gen(c["seed"])
    act = axes.dtype(c["dtype"])
    w, b = _weights(gen, c, act)
    shape = (c["B"], c["L"], c["D"]) if c["L"] else (c["B"], c["D"])
    x = _values(gen, shape, c).to(act)
    if c["x_row_pad"]:       # rows of a wider buffer: the row stride is not D
        buf = torch.full((*shape[:-1], c["D"] + c["x_row_pad"]), float("nan"), dtype=act)
        x = buf[..., :c["D"]].copy_(x)
    return dict(x=x, conv_states=_conv_pool(gen, c, act), weight=w, bias=b,
                silu_activation=c["silu"],
                num_accepted_tokens=(torch.tensor(c["accepted"], dtype=torch.int32)
                                     if c["L"] else None),
                conv_state_indices=_slots(c) if c["indices_given"] else None,
                pad_slot_id=c["pad_slot_id"], is_weight_packed=c["packed"])
