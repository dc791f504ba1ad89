"""The runner's verdicts on backends that are right or wrong in known ways, and crash isolation:
a backend that segfaults, aborts or hangs costs one `crash` row, and the run goes on."""

import pytest

from harness.registry import REGISTRY
from harness.runner import names
from harness.session import Session
from tests.properties import child

D = "tests.harness.doubles:"
OPS = sorted(REGISTRY)


def pinned(op):
    """A small valid case of the op: its first pinned example, else its first error input's."""
    spec = REGISTRY[op]
    return spec.examples[0][1] if spec.examples else spec.errors[0].case


@pytest.fixture(scope="module")
def inline():
    return Session(isolate=False)


@pytest.mark.parametrize("op", OPS)
def test_the_same_precision_baseline_passes_every_pinned_case(inline, op):
    """The policy is never tighter than the baseline it is built on. (Accuracy and invariants
    only: the fp32 reference runs its rows through batched matmuls whose blocking follows the
    batch size, so it is not batch invariant, and the harness rightly says so.)"""
    for _, case in REGISTRY[op].examples or [(None, pinned(op))]:
        row = inline.case(op, D + "FP32Reference", "", case)
        problems = [p for p in row["reason"].split("; ") if p and "not batch invariant" not in p]
        assert row["status"] in ("pass", "fail") and not problems, row["reason"]


@pytest.mark.parametrize("op", OPS)
def test_error_inputs_pass_on_the_reference_and_fail_on_a_backend_that_accepts(inline, op):
    for i, err in enumerate(REGISTRY[op].errors):
        row = inline.error_input(op, D + "FP32Reference", "", i)
        if err.backends:   # a limit of those backends only: another backend is not held to it
            assert row["status"] == "unsupported" and err.backends[0] in row["reason"]
            continue
        assert row["status"] == "pass"
        row = inline.error_input(op, D + "Accepting", "", i)
        assert row["status"] == "fail" and "accepted an invalid" in row["reason"]


@pytest.mark.parametrize("message,arg,named", [
    ("b: expected shape [3, 4], got [2, 4]", "b", True),
    ("Input tensor shape mismatch: expected [3, 4]", "b", False),      # a letter inside a word
    ("chunk_gated_delta_rule_cpu: does not support head first", "head_first", True),
    ("causal_conv1d_weight_pack: support only width of 4", "weight", False),  # inside an identifier
    ("initial_state_indices: expected int32", "initial_state", False),
    ("conv_states[2] is out of range", "conv_states", True),
    # PyTorch's broadcast message calls its two operands "tensor a" and "tensor b": no argument
    ("The size of tensor a (3) must match the size of tensor b (2) at non-singleton dimension 0",
     "b", False),
    ("The size of tensor a (3) must match the size of tensor b (2) at non-singleton dimension 0",
     "a", False),
    ("b: the size of tensor a (3) must match", "b", True),
])
def test_an_error_message_names_its_argument_as_a_word(message, arg, named):
    assert names(message, arg) is named


@pytest.mark.parametrize("double,status,reason", [
    ("Perturbed", "fail", "out: relative RMS error"),   # 1% of the largest value, everywhere
    ("DirtyGap", "fail", "outside the indexed slots' writable region changed"),
])
def test_wrong_backends_fail_with_the_reason(inline, double, status, reason):
    row = inline.case("causal_conv1d_update", D + double, "", pinned("causal_conv1d_update"))
    assert row["status"] == status and reason in row["reason"]
    assert row["repro"].startswith("python -m harness repro causal_conv1d_update --backend ")


def test_unwritten_outputs_are_caught_under_the_isolated_workers_poisoning():
    s = Session()
    try:
        row = s.case("fused_sigmoid_gating_delta_rule_update", D + "Unwritten", "",
                     pinned("fused_sigmoid_gating_delta_rule_update"))
    finally:
        s.close()
    assert row["status"] == "fail" and "non-finite" in row["reason"], row["reason"]


@pytest.mark.parametrize("double,signal", [("Segfaulting", "SIGSEGV"), ("Aborting", "SIGABRT")])
def test_a_crash_is_a_row_and_the_run_goes_on(double, signal):
    s = Session()
    try:
        case = pinned("causal_conv1d_fwd")
        crashed = s.case("causal_conv1d_fwd", D + double, "", case)
        after = s.case("causal_conv1d_fwd", D + "FP32Reference", "", case)
        crashed_error = s.error_input("causal_conv1d_fwd", D + double, "", 0)
    finally:
        s.close()
    assert crashed["status"] == "crash" and signal in crashed["reason"]
    assert crashed["case_id"].startswith("lengths[5,0,70]-varlen-D64") and "--case '" in crashed["repro"]
    assert after["status"] == "pass"
    assert crashed_error["status"] == "crash" and crashed_error["kind"] == "error"
    assert [r["status"] for r in s.rows] == ["crash", "pass", "crash"]


def test_a_hang_is_a_crash_after_the_timeout():
    s = Session()
    s.isolated.timeout = 10      # the worker's start-up (importing torch) is inside it
    try:
        row = s.case("causal_conv1d_weight_pack", D + "Hanging", "", pinned("causal_conv1d_weight_pack"))
    finally:
        s.close()
    assert row["status"] == "crash" and "no answer within 10 s" in row["reason"]


def test_an_op_the_backend_does_not_implement_is_skipped_with_unsupported_rows(tmp_path):
    """The property test of an op missing from a backend's OPS: every draw would be unsupported
    and rejected, which Hypothesis reports as Unsatisfiable (a failed test). It is skipped
    instead, and its pinned cases are in the report as unsupported rows with the reason."""
    run, rows = child.run(tmp_path / "run.csv", "test_fused_gdn_gating and not schema and not errors",
                          "--backend", D + "WithoutGating", "--survey")
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert "does not implement fused_gdn_gating" in run.stdout
    assert len(rows) == len(REGISTRY["fused_gdn_gating"].examples)
    assert set(rows["status"]) == {"unsupported"}
    assert rows["reason"].str.contains("does not implement fused_gdn_gating").all()
