"""fused_gdn_gating through the harness: drawn and pinned cases, then error inputs, on every backend."""

from harness.pytest_plugin import error_input_test, property_test

test_fused_gdn_gating = property_test("fused_gdn_gating")
test_fused_gdn_gating_errors = error_input_test("fused_gdn_gating")
