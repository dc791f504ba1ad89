"""Our kernels, op by op, through the harness's one comparator (harness/runner.py: metrics, tolerance
policy, invariants), in this process: every pinned case of the registry on every GEMM path, every
error input of the catalogue, torch.library.opcheck and torch.compile.

Nothing here builds inputs, sets a tolerance or checks an invariant of its own: cases come from
cases.build, verdicts from the same runner that writes the property suite's report rows, so a unit
test and a report row cannot disagree. A failure prints the row's reason and its one-line repro.

    pytest tests/kernels -k causal_conv1d_update       one kernel
"""

from __future__ import annotations

import pytest
import torch

import cases
from harness import backends, runner
from harness.registry import REGISTRY

OURS = backends.make("ours")


def _targets():
    return [pytest.param(op, variant, case, id=f"{op}-{variant or 'default'}-{label}")
            for op, spec in REGISTRY.items() for variant in OURS.variants(op, spec.gemm)
            for label, case in spec.examples]


def _explain(row: dict) -> str:
    return f"[{row['status']}] {row['reason']}\n  case: {row['case_id']}\n  repro: {row['repro']}"


@pytest.mark.parametrize("op, variant, case", _targets())
def test_pinned_case(ops, op, variant, case):
    row = runner.run_case(op, OURS, variant, case)
    assert row["status"] in ("pass", "unsupported"), _explain(row)


@pytest.mark.parametrize("op, err", [pytest.param(op, e, id=f"{op}-{e.name}")
                                     for op, spec in REGISTRY.items() for e in spec.errors])
def test_error_input(ops, op, err):
    variant = OURS.variants(op, REGISTRY[op].gemm)[0]
    row = runner.run_error_input(op, OURS, variant, err)
    assert row["status"] == "pass", _explain(row)


def _sample(op: str) -> dict:
    """The op's first pinned case: the hazards on, small."""
    return cases.build(op, REGISTRY[op].examples[0][1])


@pytest.mark.parametrize("op", sorted(REGISTRY))
def test_opcheck(ops, op):
    """Schema (declared mutation and aliasing), fake tensor, autograd registration."""
    torch.library.opcheck(getattr(ops, op), (), _sample(op))


@pytest.mark.parametrize("op", sorted(REGISTRY))
def test_torch_compile_fullgraph(ops, op):
    """torch.compile(fullgraph=True) traces the op; the compiled call returns what eager returns
    and leaves every argument (pools included) as eager leaves its copy."""
    args = _sample(op)
    eager = {k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in args.items()}
    fn = getattr(ops, op)
    want = fn(**eager)
    got = torch.compile(lambda kw: fn(**kw), fullgraph=True, backend="aot_eager")(args)
    want, got = (want, got) if isinstance(want, tuple) else ((want,), (got,))
    assert all(torch.equal(a, b) for a, b in zip(got, want))
    for k, v in args.items():
        if isinstance(v, torch.Tensor):
            assert torch.equal(v, eager[k]), f"{k} differs after the compiled call"
