"""Seeded inputs for the gated-delta-net ops, as keyword dicts in the schema's argument names.

Values are signed and independent (never aliased); the decay regime is chosen by `decay`:
"normal" (g drawn like a model's, −exp(A_log)·softplus(·)), "zero" (g = 0: no forgetting) or
"strong" (g ≈ −8: the state is almost wiped every token).
"""

from __future__ import annotations

import torch

from cases.layouts import ssm_pool

DECAYS = ("normal", "zero", "strong")


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _randn(gen, *shape, dtype=torch.float32):
    return torch.randn(*shape, generator=gen).to(dtype)


def _decay(gen, shape, decay: str) -> torch.Tensor:
    if decay == "zero":
        return torch.zeros(shape)
    if decay == "strong":
        return -8.0 - torch.rand(shape, generator=gen)
    if decay == "normal":
        return -torch.nn.functional.softplus(torch.randn(shape, generator=gen)) * 0.5
    raise ValueError(f"decay: expected one of {DECAYS}, got {decay!r}")


def prefill_inputs(lengths, HK, HV, K, V, *, slots=None, n_slots=None, dtype=torch.float32,
                   state_dtype=torch.float32, decay="normal", slot_gap=0, l2norm=True, seed=0):
    """chunk_gated_delta_rule kwargs for sequences of the given lengths.

    `slots` are the initial_state_indices (default 0..N−1), `n_slots` the pool size.
    """
    gen = _gen(seed)
    T = sum(lengths)
    slots = list(range(len(lengths))) if slots is None else list(slots)
    n_slots = n_slots or max([s + 1 for s in slots] + [1])
    cu = torch.tensor([0, *torch.tensor(lengths).cumsum(0).tolist()], dtype=torch.int32)
    return dict(
        query=_randn(gen, 1, T, HK, K, dtype=dtype),
        key=_randn(gen, 1, T, HK, K, dtype=dtype),
        value=_randn(gen, 1, T, HV, V, dtype=dtype),
        g=_decay(gen, (1, T, HV), decay),
        beta=torch.rand(1, T, HV, generator=gen).to(dtype),
        initial_state=ssm_pool(_randn(gen, n_slots, HV, K, V, dtype=state_dtype) * 0.5, slot_gap),
        output_final_state=True,
        cu_seqlens=cu,
        head_first=False,
        use_qk_l2norm_in_kernel=l2norm,
        initial_state_indices=torch.tensor(slots, dtype=torch.int32),
    )


def decode_inputs(B, HK, HV, K, V, *, slots=None, n_slots=None, dtype=torch.float32,
                  state_dtype=torch.float32, slot_gap=0, l2norm=True, seed=0):
    """fused_sigmoid_gating_delta_rule_update kwargs for B rows (one token each)."""
    gen = _gen(seed)
    slots = list(range(B)) if slots is None else list(slots)
    n_slots = n_slots or max([s + 1 for s in slots] + [1])
    return dict(
        A_log=torch.rand(HV, generator=gen) * 2 - 1,
        dt_bias=_randn(gen, HV, dtype=dtype),
        q=_randn(gen, 1, B, HK, K, dtype=dtype),
        k=_randn(gen, 1, B, HK, K, dtype=dtype),
        v=_randn(gen, 1, B, HV, V, dtype=dtype),
        a=_randn(gen, B, HV, dtype=dtype),
        b=_randn(gen, B, HV, dtype=dtype),
        state=ssm_pool(_randn(gen, n_slots, HV, K, V, dtype=state_dtype) * 0.5, slot_gap),
        state_indices=torch.tensor(slots, dtype=torch.int32),
        use_qk_l2norm_in_kernel=l2norm,
    )
