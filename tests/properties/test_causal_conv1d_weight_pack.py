"""causal_conv1d_weight_pack through the harness: drawn and pinned cases, then error inputs, on every backend."""

from harness.pytest_plugin import error_input_test, property_test

test_causal_conv1d_weight_pack = property_test("causal_conv1d_weight_pack")
test_causal_conv1d_weight_pack_errors = error_input_test("causal_conv1d_weight_pack")
