"""Hypothesis strategies for the axes the ops share, and the helpers that turn a drawn case
description into tensors.

A case is a plain dict of JSON values (ints, bools, strings, lists): it is what Hypothesis draws
and shrinks, what a report row records, and what a repro command replays. Tensor contents never
come from Hypothesis element by element: they come from a torch.Generator seeded by the case's
`seed`, so a failing case shrinks in its shapes and flags and replays bit for bit.
"""

from __future__ import annotations

import os

import torch
from hypothesis import strategies as st

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
DTYPE_NAMES = {v: k for k, v in DTYPES.items()}

# Value regimes: "unit" (signed, O(1)) and "large" (magnitudes a few powers of two below what the
# case's narrowest dtype can hold, where an fp16 staging buffer or an unguarded exp overflows).
REGIMES = ("unit", "large")
# "tiny": magnitudes around the narrowest dtype's smallest normal, about two in three of them
# subnormal, where arithmetic that flushes subnormals (vdpbf16ps; FTZ/DAZ modes) loses the whole
# result. Drawn by the ops whose results scale with their inputs (the convs).
REGIMES_WITH_TINY = REGIMES + ("tiny",)

# The `thorough` profile also draws what is too slow for every run (prefills of thousands of tokens).
THOROUGH = os.environ.get("HYPOTHESIS_PROFILE") == "thorough"

seeds = st.integers(0, 2**31 - 1)
dtypes = st.sampled_from(list(DTYPES))
regimes = st.sampled_from(REGIMES)
slot_gaps = st.sampled_from([0, 0, 3, 64])   # extra elements between slots: a view into a wider cache

# Non-finite inputs (`poison`): None, or [argument, where, kind]: one element of that argument, at
# flat position where/1000 of its numel (so the token it lands in follows the draw), set to NaN,
# +inf or −inf after building. SPEC (shared conventions): results are non-finite exactly where the
# token-by-token math makes them so; causality holds for NaN too, so a chunked kernel that spreads
# a later token's NaN to earlier tokens of its chunk (0·NaN in a masked product) shows here.
POISON_KINDS = {"nan": float("nan"), "inf": float("inf"), "-inf": -float("inf")}


def poisons(inputs: tuple[str, ...]):
    """About one case in eight poisoned, in one of `inputs`."""
    one = st.tuples(st.sampled_from(inputs), st.integers(0, 999),
                    st.sampled_from(list(POISON_KINDS))).map(list)
    return st.one_of(*[st.none()] * 7, one)


def poisoned(kwargs: dict, poison: list | None) -> dict:
    """kwargs with the poison's element set (in place; the builder's tensors are fresh)."""
    if poison:
        name, where, kind = poison
        t = kwargs[name]
        if t is not None and t.numel() and t.is_floating_point():
            flat = where * t.numel() // 1000
            t[tuple(int(i) for i in torch.unravel_index(torch.tensor(flat), t.shape))] = POISON_KINDS[kind]
    return kwargs


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def dtype(name: str) -> torch.dtype:
    return DTYPES[name]


def large_scale(*dtype_names: str, headroom: float = 2.0**-10) -> float:
    """A magnitude `headroom` below the largest finite value of the narrowest of the dtypes (so
    sums of a few hundred terms stay finite), capped at 2^50 so that fp32 sums of squares (the
    l2norm over 256 elements) stay finite too: beyond that, overflow is the contract's, not a
    kernel's, and every fp32 implementation makes it."""
    biggest = min(torch.finfo(DTYPES[n]).max for n in dtype_names)
    return min(biggest * headroom, 2.0**50)


def tiny_scale(*dtype_names: str) -> float:
    """The smallest normal magnitude of the narrowest of the dtypes: standard normal values times
    it are subnormal about two times in three."""
    return max(torch.finfo(DTYPES[n]).tiny for n in dtype_names)


@st.composite
def slot_indices(draw, rows: int, *, pads: bool = True, max_extra: int = 3):
    """(indices or None, n_slots): each row gets a distinct slot of a pool with up to `max_extra`
    unused slots, in a drawn order; with `pads`, some rows are pad rows (−1). The pool always has
    at least one slot."""
    n_slots = max(rows + draw(st.integers(0, max_extra), label="extra_slots"), 1)
    perm = draw(st.permutations(range(n_slots)), label="slot_order")[:rows]
    if pads and rows:
        pad = st.sampled_from([False, False, False, True])    # about one row in four
        pad_mask = draw(st.lists(pad, min_size=rows, max_size=rows), label="pad_rows")
        perm = [-1 if p else s for s, p in zip(perm, pad_mask)]
    return list(perm), n_slots


def slots_tensor(indices: list[int]) -> torch.Tensor:
    return torch.tensor(indices, dtype=torch.int32)


def offsets(lengths: list[int]) -> torch.Tensor:
    """Cumulative offsets [N+1] int32 from sequence lengths."""
    return torch.tensor([0, *torch.tensor(lengths, dtype=torch.int64).cumsum(0).tolist()],
                        dtype=torch.int32)
