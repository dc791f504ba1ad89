"""The property suite, one templated module over the registry: for every op, a Hypothesis test of
its drawn and pinned cases and a test of its error inputs, on every backend target.

    test_<op>[<backend>-<gemm path>]          e.g. test_chunk_gated_delta_rule[ours-blas]
    test_<op>_schema[<backend>-<pinned case>]   torch.library.opcheck, on the first pinned cases
    test_<op>_errors[<backend>-<error name>]

`pytest tests/properties -k causal_conv1d_update` runs one op. A new op in harness/registry.py gets
all three with no change here.
"""

from harness.pytest_plugin import error_input_test, property_test, schema_test
from harness.registry import REGISTRY

for _op in REGISTRY:
    globals()[f"test_{_op}"] = property_test(_op)
    globals()[f"test_{_op}_schema"] = schema_test(_op)
    globals()[f"test_{_op}_errors"] = error_input_test(_op)
