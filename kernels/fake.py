"""Fake (meta) implementations: output shapes, dtypes and strides without computing, so that
torch.compile and torch.library.opcheck can trace the ops. They must match the C++ outputs."""

import torch

NS = "gdn_kernels"


@torch.library.register_fake(f"{NS}::causal_conv1d_weight_pack")
def _(weight):
    return torch.empty_like(weight, memory_format=torch.contiguous_format)


@torch.library.register_fake(f"{NS}::causal_conv1d_fwd")
def _(x, weight, bias, conv_states, query_start_loc, cache_indices, has_initial_state,
      silu_activation, pad_slot_id, is_weight_packed):
    # Token-major (channels contiguous) like the kernel's output, returned in x's logical shape.
    return x.new_empty(x.transpose(-1, -2).shape).transpose(-1, -2)


@torch.library.register_fake(f"{NS}::causal_conv1d_update")
def _(x, conv_states, weight, bias, silu_activation, num_accepted_tokens, conv_state_indices,
      pad_slot_id, is_weight_packed):
    return x.new_empty(x.shape)


@torch.library.register_fake(f"{NS}::fused_gdn_gating")
def _(A_log, a, b, dt_bias, softplus_beta=1.0, softplus_threshold=20.0):
    T, HV = a.shape
    return a.new_empty((1, T, HV), dtype=torch.float32), b.new_empty((1, T, HV))


@torch.library.register_fake(f"{NS}::fused_sigmoid_gating_delta_rule_update")
def _(A_log, dt_bias, q, k, v, a, b, state, state_indices, cu_seqlens, use_qk_l2norm_in_kernel,
      softplus_beta=1.0, softplus_threshold=20.0):
    _, B, HV, V = v.shape
    return q.new_empty((B, 1, HV, V))


@torch.library.register_fake(f"{NS}::chunk_gated_delta_rule")
def _(query, key, value, g, beta, initial_state, output_final_state, cu_seqlens, head_first,
      use_qk_l2norm_in_kernel, initial_state_indices, eps=1e-5, gemm_path="brgemm"):
    return query.new_empty((*value.shape[:3], value.shape[3]))


@torch.library.register_fake(f"{NS}::fused_sigmoid_gating_delta_rule_update_spec")
def _(A_log, dt_bias, q, k, v, a, b, state, spec_state_indices, num_accepted_tokens, cu_seqlens,
      use_qk_l2norm_in_kernel, softplus_beta=1.0, softplus_threshold=20.0):
    return q.new_empty(v.shape)
