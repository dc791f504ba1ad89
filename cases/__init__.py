"""Case construction: one builder per op, turning a case description into the op's arguments.

    import cases
    kwargs = cases.build("chunk_gated_delta_rule", dict(lengths=[65, 0, 3], K=64, V=32, seed=3))

A description is a plain dict of JSON values (what Hypothesis draws and shrinks, what a report row
records, what a repro line replays). Any axis it leaves out takes the op's default (`DEFAULTS`), so
a description written before an axis existed still builds the same tensors. Unit tests, property
tests, benchmarks and the fuzzer all build through here; tensor values come from a generator seeded
by the case's `seed`. The `views` axis re-lays chosen tensor arguments as strided views
(cases/views.py); the `poison` axis sets one element of one input to NaN or ±inf before that
(cases/axes.py).
"""

from __future__ import annotations

from collections.abc import Callable

from cases import conv, gdn
from cases.axes import poisoned
from cases.views import VIEWS, relayout

# op -> (defaults, builder). A default may be a function of the already-completed description.
BUILDERS: dict[str, tuple[dict, Callable[[dict], dict]]] = {
    "fused_gdn_gating": (gdn.GATING_DEFAULTS, gdn.build_gating),
    "fused_sigmoid_gating_delta_rule_update": (gdn.DECODE_DEFAULTS, gdn.build_decode),
    "chunk_gated_delta_rule": (gdn.PREFILL_DEFAULTS, gdn.build_prefill),
    "fused_sigmoid_gating_delta_rule_update_spec": (gdn.SPEC_DEFAULTS, gdn.build_spec),
    "causal_conv1d_weight_pack": (conv.PACK_DEFAULTS, conv.build_pack),
    "causal_conv1d_fwd": (conv.FWD_DEFAULTS, conv.build_fwd),
    "causal_conv1d_update": (conv.UPDATE_DEFAULTS, conv.build_update),
}


def complete(op: str, case: dict) -> dict:
    """The description with every missing axis set to the op's default."""
    if op not in BUILDERS:
        raise ValueError(f"op: expected one of {sorted(BUILDERS)}, got {op!r}")
    defaults = BUILDERS[op][0]
    unknown = set(case) - set(defaults)
    if unknown:
        raise ValueError(f"case: unknown axes {sorted(unknown)} for {op} "
                         f"(axes: {sorted(defaults)})")
    full = {k: v for k, v in defaults.items() if not callable(v)} | dict(case)
    for k, v in defaults.items():            # derived defaults, in their written order
        if callable(v) and k not in case:
            full[k] = v(full)
    return full


def build(op: str, case: dict) -> dict:
    """The op's keyword arguments (the contract's names) for a case description."""
    full = complete(op, case)
    return relayout(poisoned(BUILDERS[op][1](full), full["poison"]), full["views"])


__all__ = ["BUILDERS", "VIEWS", "build", "complete"]
