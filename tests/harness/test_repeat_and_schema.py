"""The checks that call a backend again (harness/repeat.py) and the schema rows (opcheck), each
shown to catch the defect it is for on a test double, and to pass the correct one."""

import pytest

from harness.registry import REGISTRY
from harness.session import Session

D = "tests.harness.doubles:"


@pytest.fixture(scope="module")
def inline():
    return Session(isolate=False)


def _decode(inline, double):
    case = REGISTRY["fused_sigmoid_gating_delta_rule_update"].examples[0][1]
    return inline.case("fused_sigmoid_gating_delta_rule_update", D + double, "", case)


def test_a_result_that_changes_from_call_to_call_fails(inline):
    row = _decode(inline, "Nondeterministic")
    assert row["status"] == "fail" and "not reproducible when repeated" in row["reason"]


def test_a_result_that_follows_the_thread_count_fails(inline):
    row = _decode(inline, "ThreadDependent")
    assert row["status"] == "fail" and "not reproducible across thread counts" in row["reason"]
    assert row["threads"] >= 2 and f"--threads {row['threads']}" in row["repro"]


def test_a_row_that_follows_its_batch_fails(inline):
    row = _decode(inline, "BatchDependent")
    assert row["status"] == "fail" and "not batch invariant: row" in row["reason"]


def test_a_schema_that_hides_a_write_fails_opcheck(inline):
    case = REGISTRY["fused_gdn_gating"].examples[0][1]
    hidden = inline.schema("fused_gdn_gating", D + "HiddenWrite", "", case)
    assert hidden["kind"] == "schema" and hidden["status"] == "fail"
    assert hidden["reason"].startswith("test_schema:")
    declared = inline.schema("fused_gdn_gating", D + "DeclaredWrite", "", case)
    assert declared["status"] == "pass", declared["reason"]
    assert "test_faketensor (no fake implementation)" in declared["schema_not_registered"]


def test_a_backend_without_torch_ops_has_no_schema_rows(inline):
    case = REGISTRY["fused_gdn_gating"].examples[0][1]
    row = inline.schema("fused_gdn_gating", D + "FP32Reference", "", case)
    assert row["status"] == "unsupported" and "no torch.library op" in row["reason"]
