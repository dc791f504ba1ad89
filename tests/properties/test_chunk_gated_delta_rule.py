"""chunk_gated_delta_rule through the harness: drawn and pinned cases, then error inputs, on every backend."""

from harness.pytest_plugin import error_input_test, property_test

test_chunk_gated_delta_rule = property_test("chunk_gated_delta_rule")
test_chunk_gated_delta_rule_errors = error_input_test("chunk_gated_delta_rule")
