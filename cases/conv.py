"""Seeded inputs for the causal-conv1d ops, as keyword dicts in the schema's argument names."""

from __future__ import annotations

import torch

from cases.layouts import conv_pool


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def conv_weights(D, W, *, dtype=torch.float32, bias=True, seed=0):
    gen = _gen(seed)
    w = (torch.randn(D, W, generator=gen) * 0.5).to(dtype)
    b = torch.randn(D, generator=gen).to(dtype) if bias else None
    return w, b


def conv_states(N, D, state_len, *, layout="SD", slot_gap=0, dtype=torch.float32, seed=1):
    gen = _gen(seed)
    return conv_pool(torch.randn(N, D, state_len, generator=gen).to(dtype), layout, slot_gap)


def varlen_x(lengths, D, *, dtype=torch.float32, seed=2):
    """x as the varlen op takes it: a [D, T] transposed view of a token-major [T, D] buffer,
    and query_start_loc [B+1] int32."""
    gen = _gen(seed)
    T = sum(lengths)
    x = torch.randn(T, D, generator=gen).to(dtype).T
    qsl = torch.tensor([0, *torch.tensor(lengths, dtype=torch.int64).cumsum(0).tolist()],
                       dtype=torch.int32)
    return x, qsl
