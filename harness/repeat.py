"""Properties checked by calling the backend again on the same case (SPEC, shared conventions:
Reproducibility). Both compare bits, not errors: a difference is a failure even when every result
is within tolerance.

- Reproducible: the call repeated on a fresh copy of the inputs (every byte of every storage, the
  views laid out as before) at the same thread count, and again at 1 thread, gives bit-identical
  outputs and pools (a pool's whole storage: slots, gaps and guards). A work split in which two
  threads update one row's state, or a reduction whose order follows the thread count, fails.
- Batch invariant: one row (or sequence) of the batch, called alone with the same pool, gives
  bit-identical outputs for its tokens and a bit-identical slot. Each op says how to cut its row out
  of the arguments (`OpSpec.alone` in harness/registry.py).
"""

from __future__ import annotations

import torch

from harness.invariants import storage_elements
from harness.metrics import bit_mismatches


def replica(kwargs: dict) -> dict:
    """A deep copy of the arguments: each tensor in a storage of its own with the same bytes, and
    its view (shape, strides, offset) as before."""
    out = {}
    for name, v in kwargs.items():
        if isinstance(v, torch.Tensor):
            storage = v.untyped_storage().clone()
            v = torch.empty(0, dtype=v.dtype).set_(storage, v.storage_offset(), v.shape, v.stride())
        out[name] = v
    return out


def outcome(returned: dict, kwargs: dict, pools: tuple[str, ...]) -> dict[str, torch.Tensor]:
    """What a call produced: its returned results, and the whole storage of each in-place pool."""
    got = {n: t for n, t in returned.items() if isinstance(t, torch.Tensor)}
    got.update({n: storage_elements(kwargs[n]) for n in pools if isinstance(kwargs.get(n), torch.Tensor)})
    return got


def compare(first: dict, again: dict, what: str) -> list[str]:
    found = []
    for name, t in first.items():
        if name not in again:
            found.append(f"{name}: {what}: missing")
            continue
        n = bit_mismatches(t, again[name])
        if n:
            found.append(f"{name}: {what}: {n}/{t.numel()} elements differ in their bits")
    return found


def at_threads(n: int, fn):
    """fn() with torch's intra-op thread count set to n, restored after."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        return fn()
    finally:
        torch.set_num_threads(before)
