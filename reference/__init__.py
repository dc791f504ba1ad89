"""Pure-PyTorch references of the seven ops in SPEC.md: readable first, float64 by default.

Each op takes the schema's arguments (plus keyword-only `precision`, and `pad_slot_id` where the
schema lacks it) and returns its results together with the new state pool, without writing any
input. `precision=ORACLE` (the default) computes in float64 and rounds nothing; a working precision
such as `FP32` runs the same code in fp32 and rounds results as a kernel would.
"""

from reference.checks import PAD_SLOT_ID
from reference.conv import (causal_conv1d_fwd, causal_conv1d_update, causal_conv1d_weight_pack,
                            causal_conv1d_weight_unpack)
from reference.gdn import (chunk_gated_delta_rule, fused_gdn_gating,
                           fused_sigmoid_gating_delta_rule_update,
                           fused_sigmoid_gating_delta_rule_update_spec)
from reference.gdn_chunked import chunk_gated_delta_rule_chunked
from reference.precision import FP32, ORACLE, Precision, working

__all__ = [
    "PAD_SLOT_ID", "FP32", "ORACLE", "Precision", "working",
    "fused_gdn_gating", "fused_sigmoid_gating_delta_rule_update",
    "fused_sigmoid_gating_delta_rule_update_spec", "chunk_gated_delta_rule",
    "chunk_gated_delta_rule_chunked",
    "causal_conv1d_weight_pack", "causal_conv1d_weight_unpack", "causal_conv1d_fwd",
    "causal_conv1d_update",
]
