"""State pools laid out in memory the way serving engines lay them out.

A pool is a view into a larger buffer: each slot is dense, but the slot stride may exceed the slot
size (a per-layer view into a shared cache), and the conv state may be SD (D innermost) or DS
(state_len innermost). The bytes outside the view — a guard slot before the first slot, gaps
between slots, and a gap plus a guard slot after the last — are filled with a sentinel so that a
kernel writing there is caught, including one that takes a pad index (−1) or N as a real slot.
"""

from __future__ import annotations

import torch

SENTINEL = -7.0  # exactly representable in every float dtype; never a plausible state value

CONV_LAYOUTS = ("SD", "DS")


def _strided_copy(logical: torch.Tensor, slot_numel: int, slot_gap: int,
                  inner_strides: tuple[int, ...]) -> torch.Tensor:
    """A copy of `logical` ([N, ...]) with slot stride slot_numel + slot_gap and the given strides
    for the inner dims, living in a sentinel-filled buffer with a guard slot on either side."""
    n = logical.shape[0]
    slot_stride = slot_numel + slot_gap
    buf = torch.full(((n + 2) * slot_stride + slot_gap,), SENTINEL, dtype=logical.dtype)
    view = buf.as_strided(logical.shape, (slot_stride, *inner_strides), slot_stride)
    view.copy_(logical)
    return view


def ssm_pool(logical: torch.Tensor, slot_gap: int = 0) -> torch.Tensor:
    """[N, HV, K, V] with dense slots and slot stride HV·K·V + slot_gap."""
    _, HV, K, V = logical.shape
    return _strided_copy(logical, HV * K * V, slot_gap, (K * V, V, 1))


def conv_pool(logical: torch.Tensor, layout: str, slot_gap: int = 0) -> torch.Tensor:
    """Logical [N, D, state_len] stored SD (stride(-2) == 1) or DS (stride(-1) == 1)."""
    _, D, S = logical.shape
    if layout == "SD":
        inner = (1, D)
    elif layout == "DS":
        inner = (S, 1)
    else:
        raise ValueError(f"layout: expected one of {CONV_LAYOUTS}, got {layout!r}")
    return _strided_copy(logical, D * S, slot_gap, inner)
