"""Argument checks shared by the references.

Every failure is a RuntimeError whose message starts with the argument's name, like a kernel's
TORCH_CHECK: the harness compares a backend's error against the reference's by type and argument.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

PAD_SLOT_ID = -1
SCAN_BLOCK = 1 << 16    # entries of an index or offsets tensor read per step (never all at once)


def check(cond: bool, arg: str, msg: str) -> None:
    if not cond:
        raise RuntimeError(f"{arg}: {msg}")


def check_shape(t: torch.Tensor, arg: str, shape: Sequence[int | None]) -> None:
    """`shape` may hold None for a free dimension."""
    ok = t.dim() == len(shape) and all(s is None or s == d for s, d in zip(shape, t.shape))
    want = "[" + ", ".join("*" if s is None else str(s) for s in shape) + "]"
    check(ok, arg, f"expected shape {want}, got {list(t.shape)}")


def check_float(t: torch.Tensor | None, arg: str) -> None:
    if t is not None:
        check(t.is_floating_point(), arg, f"expected a floating-point tensor, got {t.dtype}")


def check_cpu(**tensors: torch.Tensor | None) -> None:
    """The ops are CPU ops: every tensor argument (given by name, in the schema's order) on the
    CPU. One tensor on another device (e.g. meta) among CPU tensors is named, not computed on."""
    for arg, t in tensors.items():
        if isinstance(t, torch.Tensor):
            check(t.device.type == "cpu", arg, f"expected a CPU tensor, got one on {t.device}")


def check_int32(t: torch.Tensor, arg: str) -> None:
    """Indices, offsets and counts are int32 (SPEC)."""
    check(t.dtype == torch.int32, arg, f"expected int32, got {t.dtype}")


def check_slots_apart(pool: torch.Tensor, arg: str) -> None:
    """A pool the op updates in place must not hold one element twice: a write to one slot would
    change another, so no backend could keep the other slots bit-identical. (The reference reads
    the pool by logical index and never writes it; the check is the contract's, not its own.)
    Slots must lie apart (the slot stride at least a slot's extent), and inside a slot no two
    elements may share an address either: ordered by stride, each dimension's stride must step
    past everything the smaller strides span (a layout that interleaves dimensions is refused
    too; SD, DS, dense and padded slots all pass)."""
    check(all(s != 0 for n, s in zip(pool.shape, pool.stride()) if n > 1), arg,
          f"elements overlap in memory (a stride of 0 in {list(pool.stride())})")
    extent = 1 + sum((n - 1) * s for n, s in zip(pool.shape[1:], pool.stride()[1:]))
    check(pool.shape[0] <= 1 or pool.stride(0) >= extent, arg,
          f"slot stride {pool.stride(0)} is smaller than a slot's extent {extent}: slots would "
          f"share memory")
    if pool.numel() == 0:
        return
    span = 1
    for s, n in sorted((s, n) for n, s in zip(pool.shape, pool.stride()) if n > 1):
        check(s >= span, arg, f"elements overlap in memory: strides {list(pool.stride())} for "
                              f"shape {list(pool.shape)} (a stride of {s} inside a span of {span})")
        span += (n - 1) * s


def slot_plan(indices: torch.Tensor | None, rows: int, n_slots: int, pad_slot_id: int,
              arg: str) -> list[int | None]:
    """The pool slot of each row (None for a pad row), with the contract's checks.

    `indices` None means identity (row i uses slot i). A pad entry skips the row; any other index
    outside [0, n_slots) is an error, and so is a slot shared by two rows (their order of update
    would be undefined).
    """
    if indices is None:
        check(rows <= n_slots, arg, f"absent, so rows use slots 0..{rows - 1}, but the pool has "
                                    f"{n_slots} slots")
        return list(range(rows))
    check_int32(indices, arg)
    check_shape(indices, arg, [rows])
    plan: list[int | None] = []
    seen: dict[int, int] = {}
    for first in range(0, rows, SCAN_BLOCK):    # a block at a time: the first bad row stops it
        for row, s in enumerate(indices[first:first + SCAN_BLOCK].tolist(), first):
            if s == pad_slot_id:
                plan.append(None)
                continue
            check(0 <= s < n_slots, arg, f"index {s} at row {row} is outside [0, {n_slots}) and is "
                                         f"not the pad slot id {pad_slot_id}")
            check(s not in seen, arg, f"slot {s} is used by rows {seen.get(s)} and {row}")
            seen[s] = row
            plan.append(s)
    return plan


def check_offsets(cu: torch.Tensor, total: int, arg: str, count: int | None = None) -> None:
    """Cumulative offsets [N+1] (N = `count` when the caller knows it) that start at 0, end at
    `total` and never decrease: the length and both ends first, then a scan a block at a time, so
    a wrong offsets tensor of any length is refused without reading it whole."""
    check_int32(cu, arg)
    if count is not None:
        check_shape(cu, arg, [count + 1])
    check(cu.dim() == 1 and cu.numel() >= 1, arg, f"expected shape [N+1], got {list(cu.shape)}")
    first, last = int(cu[0]), int(cu[-1])
    check(first == 0, arg, f"must start at 0, got {first}")
    check(last == total, arg, f"must end at the token count {total}, got {last}")
    n = cu.numel()
    for lo in range(0, n - 1, SCAN_BLOCK):
        block = cu[lo:lo + SCAN_BLOCK + 1]
        drops = (block[1:] < block[:-1]).nonzero()
        if drops.numel():
            i = int(drops[0])
            check(False, arg, f"must be non-decreasing, got {int(block[i])} then "
                              f"{int(block[i + 1])} at entries {lo + i} and {lo + i + 1}")


def sequence_bounds(cu: torch.Tensor, total: int, arg: str,
                    count: int | None = None) -> list[tuple[int, int]]:
    """(start, length) of each sequence from cumulative offsets [N+1] that cover 0..total."""
    check_offsets(cu, total, arg, count)
    c = cu.tolist()
    return [(s, e - s) for s, e in zip(c, c[1:])]


def spec_slot_plan(indices: torch.Tensor, accepted: torch.Tensor, lengths: list[int],
                   n_slots: int, pad_slot_id: int, arg: str = "spec_state_indices",
                   arg_accepted: str = "num_accepted_tokens"
                   ) -> list[tuple[int | None, list[int | None]]]:
    """Speculative decode (SPEC §7): per row, (the slot it resumes from or None for a pad row,
    the slot each of its tokens stores its state into or None where it stores nothing).

    `indices` [B, S] holds one slot per draft position; a row resumes from the position of its
    last accepted token, `accepted[i] − 1` (accepted in [1, S]), and stores the state after its
    t-th token at position t. Every entry is the pad id or a slot in [0, n_slots); a row whose
    resume entry is the pad id is a pad row. A row with no tokens reads and writes nothing. A slot
    a row reads or writes may not be read or written by another row, nor written twice.
    """
    check_int32(indices, arg)
    check(indices.dim() == 2, arg, f"expected shape [B, S], got {list(indices.shape)}")
    B, S = indices.shape
    check(len(lengths) == B, "cu_seqlens",
          f"expected {B + 1} offsets (B = {B} rows of {arg}), got {len(lengths) + 1}")
    for row, n in enumerate(lengths):
        check(n <= S, "cu_seqlens", f"row {row} has {n} tokens, more than the {S} draft positions "
                                    f"of {arg}")
    check_int32(accepted, arg_accepted)
    check_shape(accepted, arg_accepted, [B])
    idx, acc = indices.tolist(), accepted.tolist()
    for row in range(B):
        check(1 <= acc[row] <= S, arg_accepted, f"{acc[row]} at row {row} is outside [1, {S}]")
        for t, s in enumerate(idx[row]):
            check(s == pad_slot_id or 0 <= s < n_slots, arg,
                  f"index {s} at row {row}, position {t} is outside [0, {n_slots}) and is not the "
                  f"pad slot id {pad_slot_id}")
    plan: list[tuple[int | None, list[int | None]]] = []
    owner: dict[int, int] = {}        # slot -> the row that reads or writes it
    written: dict[int, int] = {}      # slot -> the position that stores into it
    for row in range(B):
        resume = idx[row][acc[row] - 1]
        if resume == pad_slot_id or lengths[row] == 0:
            plan.append((None, [None] * lengths[row]))
            continue
        stores = [None if s == pad_slot_id else s for s in idx[row][:lengths[row]]]
        for s in {resume, *(s for s in stores if s is not None)}:
            check(owner.get(s, row) == row, arg, f"slot {s} is used by rows {owner.get(s)} and {row}")
            owner[s] = row
        written.clear()
        for t, s in enumerate(stores):
            if s is not None:
                check(s not in written, arg, f"slot {s} is written at positions {written.get(s)} "
                                             f"and {t} of row {row}")
                written[s] = t
        plan.append((resume, stores))
    return plan
