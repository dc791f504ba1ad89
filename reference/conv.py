"""Causal conv1d: weight pack (SPEC §4), prefill (§5) and decode update (§6).

D channels, width W, conv state pool [N, D, state_len] (state_len ≥ W−1) read through its logical
indices, so the SD and DS memory layouts and any slot stride are the same thing to a reference.
The conv history of a slot is its first W−1 columns; wider columns are never read (except by the
speculative update) and never written by fwd or the 2-D update.

Functional like reference/gdn.py: each op returns (out, new pool) and never writes its inputs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from reference.checks import (PAD_SLOT_ID, check, check_cpu, check_float, check_int32,
                              check_shape, check_slots_apart, sequence_bounds, slot_plan)
from reference.precision import ORACLE, Precision

VNNI_BLOCK = 32  # channels per VNNI-2 block
PACKED_WIDTH = 4


# --- §4 ---------------------------------------------------------------------------------------

def _check_packable(weight, arg):
    check_float(weight, arg)
    check(weight.dim() == 2, arg, f"expected a 2-D [D, W] weight, got shape {list(weight.shape)}")
    D, W = weight.shape
    check(W == PACKED_WIDTH, arg, f"VNNI packing needs width {PACKED_WIDTH}, got {W}")
    check(D % VNNI_BLOCK == 0, arg, f"VNNI packing needs D % {VNNI_BLOCK} == 0, got D={D}")


def causal_conv1d_weight_pack(weight: torch.Tensor) -> torch.Tensor:
    """[D, 4] -> [D, 4] reordered as VNNI-2 blocks [D/32, W/2, 32, 2]:
    packed.flat[((nb·2 + k2)·32 + n)·2 + p] = w[nb·32 + n, 2·k2 + p]."""
    check_cpu(weight=weight)
    _check_packable(weight, "weight")
    D, W = weight.shape
    return weight.reshape(D // VNNI_BLOCK, VNNI_BLOCK, W // 2, 2).permute(0, 2, 1, 3).reshape(D, W)


def causal_conv1d_weight_unpack(packed: torch.Tensor) -> torch.Tensor:
    """The inverse of causal_conv1d_weight_pack."""
    _check_packable(packed, "packed")
    D, W = packed.shape
    return packed.reshape(D // VNNI_BLOCK, W // 2, VNNI_BLOCK, 2).permute(0, 2, 1, 3).reshape(D, W)


# --- shared -----------------------------------------------------------------------------------

def causal_conv(xp, w, bias, silu):
    """y[..., c, t] = bias[c] + Σ_j w[c, j]·xp[..., c, t + j] for xp [..., D, W−1+L]: [..., D, L].

    The last tap multiplies the current token; the first W−1 columns of xp are the history.
    """
    W = w.shape[-1]
    L = xp.shape[-1] - (W - 1)
    y = sum(w[:, j, None] * xp[..., j:j + L] for j in range(W))
    if bias is not None:
        y = y + bias[:, None]
    return F.silu(y) if silu else y


def _weight(weight, is_weight_packed, D, precision):
    check_float(weight, "weight")
    check(weight.dim() == 2, "weight", f"expected a 2-D [D, W] weight, got shape "
                                       f"{list(weight.shape)}")
    check(weight.shape[0] == D, "weight", f"expected {D} channels (as x has), got {weight.shape[0]}")
    check(weight.shape[1] >= 2, "weight", f"width must be at least 2, got {weight.shape[1]}")
    if is_weight_packed:
        _check_packable(weight, "weight")     # the caller's argument is `weight`
        weight = causal_conv1d_weight_unpack(weight)
    return precision.up(weight)


def _bias(bias, D, precision):
    if bias is not None:
        check_float(bias, "bias")
        check_shape(bias, "bias", [D])
    return precision.up(bias)


def _check_states(conv_states, D, W, arg="conv_states"):
    check_float(conv_states, arg)
    check(conv_states.dim() == 3 and conv_states.shape[1] == D, arg,
          f"expected shape [N, {D}, state_len], got {list(conv_states.shape)}")
    check(conv_states.shape[2] >= W - 1, arg,
          f"state_len {conv_states.shape[2]} is shorter than the history W-1 = {W - 1}")
    check_slots_apart(conv_states, arg)


# --- §5 ---------------------------------------------------------------------------------------

def causal_conv1d_fwd(x, weight, bias=None, conv_states=None, query_start_loc=None,
                      cache_indices=None, has_initial_state=None, silu_activation=False,
                      pad_slot_id: int = PAD_SLOT_ID, is_weight_packed=False, *,
                      precision: Precision = ORACLE):
    """Prefill. Returns (out shaped like x, new pool or None).

    Varlen: x [D, T] with query_start_loc [B+1]; batch: x [B, D, L]. Sequence i uses slot
    cache_indices[i] (or i); its history is the slot's first W−1 columns when has_initial_state[i],
    zeros otherwise, and afterwards those columns hold the last W−1 columns of [history, x_seq]
    (a short sequence shifts the old history). A pad sequence is computed from zero history and
    its slot is not touched.
    """
    check_cpu(x=x, weight=weight, bias=bias, conv_states=conv_states,
              query_start_loc=query_start_loc, cache_indices=cache_indices,
              has_initial_state=has_initial_state)
    check_float(x, "x")
    if query_start_loc is not None:
        check(x.dim() == 2, "x", f"with query_start_loc expected a varlen [D, T], got shape "
                                 f"{list(x.shape)}")
        D, T = x.shape
        seqs = [x[:, s:s + n] for s, n in sequence_bounds(query_start_loc, T, "query_start_loc")]
    else:
        check(x.dim() == 3, "x", f"without query_start_loc expected a batch [B, D, L], got shape "
                                 f"{list(x.shape)}")
        D = x.shape[1]
        seqs = list(x.unbind(0))
    w = _weight(weight, is_weight_packed, D, precision)
    W = w.shape[1]
    bias_ = _bias(bias, D, precision)

    new_states = None
    slots: list[int | None] = [None] * len(seqs)
    has_init = [False] * len(seqs)
    if conv_states is None:
        check(cache_indices is None, "cache_indices", "given without conv_states")
        check(has_initial_state is None, "has_initial_state", "given without conv_states")
    else:
        _check_states(conv_states, D, W)
        slots = slot_plan(cache_indices, len(seqs), conv_states.shape[0], pad_slot_id,
                          "cache_indices")
        if has_initial_state is not None:
            check(has_initial_state.dtype == torch.bool, "has_initial_state",
                  f"expected a bool tensor, got {has_initial_state.dtype}")
            check_shape(has_initial_state, "has_initial_state", [len(seqs)])
            has_init = has_initial_state.tolist()
        new_states = precision.copy(conv_states)

    outs = []
    for xs, slot, init in zip(seqs, slots, has_init):
        history = torch.zeros(D, W - 1, dtype=precision.compute)
        if slot is not None and init:
            history = new_states[slot, :, :W - 1]
        xp = torch.cat([history, precision.up(xs)], dim=-1)
        outs.append(causal_conv(xp, w, bias_, silu_activation))
        if slot is not None:
            new_states[slot, :, :W - 1] = xp[:, -(W - 1):]
    if not outs:            # no sequences is valid: an output of x's (empty) shape
        out = torch.zeros(x.shape, dtype=precision.compute)
    else:
        out = torch.cat(outs, dim=-1) if query_start_loc is not None else torch.stack(outs)
    if new_states is not None:
        new_states = precision.result(new_states, conv_states.dtype)
    return precision.result(out, x.dtype), new_states


# --- §6 ---------------------------------------------------------------------------------------

def causal_conv1d_update(x, conv_states, weight, bias=None, silu_activation=False,
                         num_accepted_tokens=None, conv_state_indices=None,
                         pad_slot_id: int = PAD_SLOT_ID, is_weight_packed=False, *,
                         precision: Precision = ORACLE):
    """Decode. Returns (out shaped like x, new pool). A pad row's output is zeros.

    x [B, D]: one token per row against the slot's first W−1 columns, which then shift by one and
    take x (wider columns untouched).
    x [B, L, D] with num_accepted_tokens (speculative): with a = num_accepted_tokens[b], the
    history is columns a−1 .. a+W−3, the conv runs over [history, x_0..x_{L−1}], and the slot
    becomes old[:, a : a+state_len−L] followed by the L new tokens.
    """
    check_cpu(x=x, conv_states=conv_states, weight=weight, bias=bias,
              num_accepted_tokens=num_accepted_tokens, conv_state_indices=conv_state_indices)
    check_float(x, "x")
    check(x.dim() in (2, 3), "x", f"expected [B, D] or [B, L, D], got shape {list(x.shape)}")
    B, D = x.shape[0], x.shape[-1]
    w = _weight(weight, is_weight_packed, D, precision)
    W = w.shape[1]
    bias_ = _bias(bias, D, precision)
    check(conv_states is not None, "conv_states", "is required by the update")
    _check_states(conv_states, D, W)
    state_len = conv_states.shape[2]
    slots = slot_plan(conv_state_indices, B, conv_states.shape[0], pad_slot_id,
                      "conv_state_indices")
    rows = [r for r, s in enumerate(slots) if s is not None]
    live = [slots[r] for r in rows]
    # every argument checked before anything of x's size is made
    if x.dim() == 2:
        check(num_accepted_tokens is None, "num_accepted_tokens",
              "only goes with a 3-D [B, L, D] x (speculative decode)")
    else:
        L = x.shape[1]
        check(num_accepted_tokens is not None, "num_accepted_tokens",
              "is required with a 3-D [B, L, D] x")
        check_int32(num_accepted_tokens, "num_accepted_tokens")
        check_shape(num_accepted_tokens, "num_accepted_tokens", [B])
        check(L >= 1, "x", "speculative decode needs L >= 1 tokens per row")
        check(state_len >= L, "conv_states", f"state_len {state_len} is shorter than L = {L}")
        accepted = num_accepted_tokens.tolist()
        for r in rows:
            a = accepted[r]
            check(1 <= a <= L and a - 1 + W - 1 <= state_len, "num_accepted_tokens",
                  f"row {r}: {a} is outside [1, {min(L, state_len - W + 2)}]")
    new_states = precision.copy(conv_states)
    out = torch.zeros(x.shape, dtype=precision.compute)

    if x.dim() == 2:
        if rows:
            old = new_states[live, :, :W - 1]                       # [n, D, W-1]
            xp = torch.cat([old, precision.up(x[rows])[..., None]], dim=-1)
            out[rows] = causal_conv(xp, w, bias_, silu_activation)[..., 0]
            new_states[live, :, :W - 1] = xp[..., 1:]
    else:
        for r in rows:
            a = accepted[r]
            old = new_states[slots[r]].clone()                     # [D, state_len]
            xs = precision.up(x[r]).T                               # [D, L]
            xp = torch.cat([old[:, a - 1:a - 1 + W - 1], xs], dim=-1)
            out[r] = causal_conv(xp, w, bias_, silu_activation).T
            new_states[slots[r]] = torch.cat([old[:, a:a + state_len - L], xs], dim=-1)
    return precision.result(out, x.dtype), precision.result(new_states, conv_states.dtype)
