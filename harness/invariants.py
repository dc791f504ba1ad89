"""Exact invariants, checked on every case whatever the tolerance says.

Before the backend runs, every tensor argument is snapshotted: its metadata and every element of
its storage (not just its view: a pool's slot gaps and a strided input's padding count too). After
the call:
- every argument keeps its shape, strides, storage offset and dtype (a change is reported, and the
  storage is still compared element by element, through the view as it was);
- an input the op does not write is bit-identical, storage and all;
- a pool the op updates in place is bit-identical everywhere except the elements the contract lets
  change (the indexed slots' history columns, say): other slots, pad rows' slots, gaps, tails.
Bits are compared as integers, so a NaN written over a NaN of another payload is still caught.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from harness.metrics import _BITS


def storage_elements(t: torch.Tensor) -> torch.Tensor:
    """The whole storage behind t, as a flat tensor of t's dtype."""
    return torch.empty(0, dtype=t.dtype).set_(t.untyped_storage())


def covered(t: torch.Tensor, mask: torch.Tensor | bool = True, meta: tuple | None = None) -> torch.Tensor:
    """A bool per element of t's storage: True where the view t covers it (and `mask`, a bool
    tensor of t's shape, is True there). `meta` (metadata(t) taken earlier) places the view as it
    was then."""
    shape, stride, offset, _ = meta or metadata(t)
    flags = torch.zeros(storage_elements(t).numel(), dtype=torch.bool)
    flags.as_strided(shape, stride, offset).copy_(torch.as_tensor(mask))
    return flags


def _as_bits(flat: torch.Tensor) -> torch.Tensor:
    return flat.view(_BITS[flat.dtype]) if flat.dtype in _BITS else flat


def metadata(t: torch.Tensor) -> tuple:
    return (tuple(t.shape), t.stride(), t.storage_offset(), t.dtype)


class Snapshot:
    def __init__(self, inputs: Mapping[str, object]):
        self.tensors = {n: t for n, t in inputs.items() if isinstance(t, torch.Tensor)}
        self.meta = {n: metadata(t) for n, t in self.tensors.items()}
        self.storage = {n: storage_elements(t).clone() for n, t in self.tensors.items()}

    def violations(self, writable: Mapping[str, torch.Tensor]) -> list[str]:
        """What broke, as short sentences. `writable` maps each in-place argument to a bool mask
        over its logical shape: the elements the op may change."""
        found = []
        for name, t in self.tensors.items():
            if metadata(t) != self.meta[name]:
                # Reported, and the storage is still compared below, through the view as it was
                # when the call began (a kernel that rewrites strides may also write elsewhere).
                found.append(f"{name}: metadata changed from {self.meta[name][:3]} to {metadata(t)[:3]}")
            now, before = _as_bits(storage_elements(t)), _as_bits(self.storage[name])
            if now.numel() != before.numel():
                found.append(f"{name}: its storage was replaced ({before.numel()} elements, now "
                             f"{now.numel()})")
                continue
            changed = now != before
            if name in writable:
                changed &= ~covered(t, writable[name], self.meta[name])
                what = "elements outside the indexed slots' writable region"
            else:
                what = "elements of an input the op must not write"
            if changed.any():
                found.append(f"{name}: {int(changed.sum())} {what} changed")
        return found
