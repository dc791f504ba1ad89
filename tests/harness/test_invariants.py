"""The exact invariants: pool gaps, slots outside the writable region, inputs, metadata."""

import torch

from cases.layouts import conv_pool, ssm_pool
from harness.invariants import Snapshot, storage_elements


def pool_and_mask():
    pool = ssm_pool(torch.randn(3, 2, 4, 5), slot_gap=7)
    mask = torch.zeros(pool.shape, dtype=torch.bool)
    mask[1] = True
    return pool, mask


def test_writing_the_writable_slot_is_fine():
    pool, mask = pool_and_mask()
    q = torch.randn(4)
    snap = Snapshot(dict(state=pool, q=q, flag=True))
    pool[1] += 1
    assert snap.violations({"state": mask}) == []


def test_other_slot_gap_and_tail_are_caught():
    pool, mask = pool_and_mask()
    snap = Snapshot(dict(state=pool))
    pool[2, 0, 0, 0] = 5
    assert snap.violations({"state": mask}) == [
        "state: 1 elements outside the indexed slots' writable region changed"]
    pool, mask = pool_and_mask()
    snap = Snapshot(dict(state=pool))
    flat = storage_elements(pool)
    flat[pool.stride(0) - 1] = 0          # the gap after slot 0
    flat[-1] = 0                          # the tail after the last slot
    assert "2 elements" in snap.violations({"state": mask})[0]


def test_an_input_written_is_caught_even_nan_for_nan():
    x = torch.full((4,), float("nan"))
    snap = Snapshot(dict(x=x))
    x.view(torch.int32)[0] += 1           # another NaN payload
    assert snap.violations({}) == ["x: 1 elements of an input the op must not write changed"]


def test_metadata_rewritten_in_place_is_caught():
    pool = conv_pool(torch.randn(2, 8, 3), "DS", slot_gap=5)
    snap = Snapshot(dict(conv_states=pool))
    pool.as_strided_(pool.shape, (24, 3, 1), 0)
    (v,) = snap.violations({"conv_states": torch.ones(pool.shape, dtype=torch.bool)})
    assert v.startswith("conv_states: metadata changed")


def test_a_write_next_to_a_metadata_change_is_still_caught():
    """A kernel that rewrites the strides and also writes into the gaps between slots: both are
    reported (the storage is compared through the view as it was before the call)."""
    pool = conv_pool(torch.randn(2, 8, 3), "DS", slot_gap=5)
    snap = Snapshot(dict(conv_states=pool))
    storage_elements(pool)[pool.storage_offset() + 24] = 0     # in the gap after slot 0
    pool.as_strided_(pool.shape, (24, 3, 1), 0)
    found = snap.violations({"conv_states": torch.ones(pool.shape, dtype=torch.bool)})
    assert found[0].startswith("conv_states: metadata changed")
    assert found[1] == "conv_states: 1 elements outside the indexed slots' writable region changed"
