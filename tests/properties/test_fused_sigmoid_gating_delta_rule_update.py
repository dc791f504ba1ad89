"""fused_sigmoid_gating_delta_rule_update through the harness: drawn and pinned cases, then error inputs, on every backend."""

from harness.pytest_plugin import error_input_test, property_test

test_fused_sigmoid_gating_delta_rule_update = property_test("fused_sigmoid_gating_delta_rule_update")
test_fused_sigmoid_gating_delta_rule_update_errors = error_input_test("fused_sigmoid_gating_delta_rule_update")
