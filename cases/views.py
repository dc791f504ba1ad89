"""Input transforms (PyTorch OpInfo's `SampleInput.noncontiguous()` idea): after a case is built,
any tensor argument can be re-laid as a strided view holding the same values, so that a kernel that
reads a view as if it were contiguous reads the wrong elements.

A case asks for them with its `views` axis, {argument: how}; `how` is one of VIEWS:
- "padded":    sliced out of a larger buffer: every dim one element wider (rows padded);
- "offset":    dense, but at a storage offset (17 elements into its buffer);
- "strided":   every other element of a buffer twice as wide: innermost stride 2;
- "broadcast": stride 0 along the first dim of size > 1, holding that dim's first entry
               everywhere (so the values change: only for arguments the op only reads).
The buffer's elements outside the view hold a poison (NaN, or an index no pool has), so a kernel
that steps outside the view reads garbage, and the invariants see a write there.
"""

from __future__ import annotations

import torch
from hypothesis import strategies as st

VIEWS = ("padded", "offset", "strided", "broadcast")
OFFSET = 17
INDEX_POISON = 2**30 - 3      # an index past any pool: a misread index is an out-of-range slot


def _poison(dtype: torch.dtype):
    if dtype.is_floating_point:
        return float("nan")
    if dtype == torch.bool:
        return True
    return INDEX_POISON


def _buffer(numel: int, dtype: torch.dtype) -> torch.Tensor:
    return torch.full((numel,), _poison(dtype), dtype=dtype)


def relaid(t: torch.Tensor, how: str) -> torch.Tensor:
    """t's values in a view of the layout `how` (see the module's docstring)."""
    if how == "padded":
        wide = [n + 1 for n in t.shape]
        buf = _buffer(int(torch.tensor(wide).prod()), t.dtype).view(wide)
        view = buf[tuple(slice(0, n) for n in t.shape)]
    elif how == "offset":
        view = _buffer(t.numel() + OFFSET, t.dtype)[OFFSET:].view(t.shape)
    elif how == "strided":
        if t.dim() == 0:
            return t.clone()
        buf = _buffer(2 * t.numel(), t.dtype).view(*t.shape[:-1], 2 * t.shape[-1])
        view = buf[..., ::2]
    elif how == "broadcast":
        dims = [d for d, n in enumerate(t.shape) if n > 1]
        if not dims:
            return t.clone()
        return t.narrow(dims[0], 0, 1).clone().expand(t.shape)
    else:
        raise ValueError(f"views: expected one of {VIEWS}, got {how!r}")
    view.copy_(t)
    return view


def relayout(kwargs: dict, views: dict[str, str]) -> dict:
    """kwargs with each argument named in `views` re-laid; an absent optional (None) stays absent;
    an unknown or non-tensor name is a ValueError naming it."""
    for name, how in views.items():
        if name in kwargs and kwargs[name] is None:
            continue
        if not isinstance(kwargs.get(name), torch.Tensor):
            raise ValueError(f"views: {name!r} is not a tensor argument of this case "
                             f"(tensors: {sorted(n for n, v in kwargs.items() if isinstance(v, torch.Tensor))})")
        kwargs[name] = relaid(kwargs[name], how)
    return kwargs


def views(inputs: tuple[str, ...], broadcastable: tuple[str, ...]) -> st.SearchStrategy:
    """Draws a `views` axis: each tensor input independently kept as built (about two times in
    three) or re-laid one of the VIEWS ways; "broadcast" only for `broadcastable` inputs (read-only,
    and any value valid in every row). Shrinks towards no views."""
    @st.composite
    def draw_views(draw):
        out = {}
        for name in inputs:
            kinds = [k for k in VIEWS if k != "broadcast" or name in broadcastable]
            how = draw(st.sampled_from([None] * 8 + kinds), label=f"view {name}")
            if how is not None:
                out[name] = how
        return out
    return draw_views()
