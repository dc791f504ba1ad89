"""The references reject every contract error of the catalogue (harness/errors.py) with a
RuntimeError naming the argument first. Entries limited to some backends (`backends`) are their
own limits, not the contract's: the references compute those."""

import pytest

import cases
import reference as R
from harness.errors import ERRORS

# The chunked prefill form shares the argument checks of the recurrence; both must reject.
REFERENCES = {op: (getattr(R, op),) for op in ERRORS}
REFERENCES["chunk_gated_delta_rule"] += (R.chunk_gated_delta_rule_chunked,)

CONTRACT_ERRORS = [pytest.param(op, err, id=f"{op}-{err.name}")
                   for op, errs in ERRORS.items() for err in errs if err.backends == ()]


@pytest.mark.parametrize("op, err", CONTRACT_ERRORS)
def test_reference_rejects_naming_the_argument(op, err):
    for reference in REFERENCES[op]:
        kwargs = cases.build(op, err.case)
        err.spoil(kwargs)
        with pytest.raises(RuntimeError) as raised:
            reference(**kwargs)
        assert str(raised.value).startswith(err.arg), \
            f"{reference.__name__}: {raised.value} (expected it to name {err.arg} first)"


@pytest.mark.parametrize("op, err", [pytest.param(op, err, id=f"{op}-{err.name}")
                                     for op, errs in ERRORS.items() for err in errs if err.backends])
def test_backend_limits_are_computed_by_the_reference(op, err):
    """A backend's own limit is not a contract error: the reference computes the input."""
    for reference in REFERENCES[op]:
        kwargs = cases.build(op, err.case)
        err.spoil(kwargs)
        reference(**kwargs)


def test_names_are_unique_within_an_op():
    for op, errs in ERRORS.items():
        names = [e.name for e in errs]
        assert len(names) == len(set(names)), op


@pytest.mark.parametrize("how", [None, "padded", "offset", "strided"])
@pytest.mark.parametrize("op, pool, axes", [
    ("fused_sigmoid_gating_delta_rule_update", "state", {"slot_gap": 3}),
    ("chunk_gated_delta_rule", "initial_state", {}),
    ("causal_conv1d_update", "conv_states", {"layout": "SD", "state_extra": 2, "slot_gap": 3}),
    ("causal_conv1d_fwd", "conv_states", {"layout": "DS", "state_extra": 1}),
])
def test_pool_overlap_check_passes_every_layout_the_cases_build(op, pool, axes, how):
    """The pools' overlap check (slots apart, no two elements of a slot at one address) refuses
    no layout a valid case builds: SD and DS, slot gaps, and each view of cases/views.py."""
    from cases.views import relaid
    from reference.checks import check_slots_apart
    t = cases.build(op, axes)[pool]
    check_slots_apart(t if how is None else relaid(t, how), pool)
