"""Fake (meta) implementations: output shapes, dtypes and strides without computing, so that
torch.compile and torch.library.opcheck can trace the ops. They must match the C++ outputs.

They also serve as the ops' Meta kernels, which the dispatcher picks whenever any argument is a
meta tensor: a call mixing meta and real CPU tensors is an error naming the meta argument (the CPU
kernel never sees it, and an output of uninitialised memory would pass for a result). Fake tensors
(FakeTensorMode, torch.compile, opcheck) and calls whose tensors are all meta are traced as usual.
"""

import torch

NS = "gdn_kernels"


def _one_device(**tensors):
    """Raises naming the first meta tensor argument when another is a real tensor elsewhere."""
    given = {n: t for n, t in tensors.items() if isinstance(t, torch.Tensor)}
    if any(type(t) not in (torch.Tensor, torch.nn.Parameter) for t in given.values()):
        return                    # fake or otherwise wrapped tensors: tracing, not a real call
    meta = [n for n, t in given.items() if t.device.type == "meta"]
    real = [n for n, t in given.items() if t.device.type != "meta"]
    if meta and real:
        raise RuntimeError(f"{meta[0]}: expected a CPU tensor, got one on the meta device (while "
                           f"{real[0]} is on {given[real[0]].device})")


@torch.library.register_fake(f"{NS}::causal_conv1d_weight_pack")
def _(weight):
    _one_device(weight=weight)
    return torch.empty_like(weight, memory_format=torch.contiguous_format)


@torch.library.register_fake(f"{NS}::causal_conv1d_fwd")
def _(x, weight, bias, conv_states, query_start_loc, cache_indices, has_initial_state,
      silu_activation, pad_slot_id, is_weight_packed):
    _one_device(x=x, weight=weight, bias=bias, conv_states=conv_states,
                query_start_loc=query_start_loc, cache_indices=cache_indices,
                has_initial_state=has_initial_state)
    # Token-major (channels contiguous) like the kernel's output, returned in x's logical shape.
    return x.new_empty(x.transpose(-1, -2).shape).transpose(-1, -2)


@torch.library.register_fake(f"{NS}::causal_conv1d_update")
def _(x, conv_states, weight, bias, silu_activation, num_accepted_tokens, conv_state_indices,
      pad_slot_id, is_weight_packed):
    _one_device(x=x, conv_states=conv_states, weight=weight, bias=bias,
                num_accepted_tokens=num_accepted_tokens, conv_state_indices=conv_state_indices)
    return x.new_empty(x.shape)


@torch.library.register_fake(f"{NS}::fused_gdn_gating")
def _(A_log, a, b, dt_bias, softplus_beta=1.0, softplus_threshold=20.0):
    _one_device(A_log=A_log, a=a, b=b, dt_bias=dt_bias)
    T, HV = a.shape
    return a.new_empty((1, T, HV), dtype=torch.float32), b.new_empty((1, T, HV))


@torch.library.register_fake(f"{NS}::fused_sigmoid_gating_delta_rule_update")
def _(A_log, dt_bias, q, k, v, a, b, state, state_indices, cu_seqlens, use_qk_l2norm_in_kernel,
      softplus_beta=1.0, softplus_threshold=20.0):
    _one_device(A_log=A_log, dt_bias=dt_bias, q=q, k=k, v=v, a=a, b=b, state=state,
                state_indices=state_indices, cu_seqlens=cu_seqlens)
    _, B, HV, V = v.shape
    return q.new_empty((B, 1, HV, V))


@torch.library.register_fake(f"{NS}::chunk_gated_delta_rule")
def _(query, key, value, g, beta, initial_state, output_final_state, cu_seqlens, head_first,
      use_qk_l2norm_in_kernel, initial_state_indices, eps=1e-5, gemm_path="brgemm"):
    _one_device(query=query, key=key, value=value, g=g, beta=beta, initial_state=initial_state,
                cu_seqlens=cu_seqlens, initial_state_indices=initial_state_indices)
    return query.new_empty((*value.shape[:3], value.shape[3]))


@torch.library.register_fake(f"{NS}::fused_sigmoid_gating_delta_rule_update_spec")
def _(A_log, dt_bias, q, k, v, a, b, state, spec_state_indices, num_accepted_tokens, cu_seqlens,
      use_qk_l2norm_in_kernel, softplus_beta=1.0, softplus_threshold=20.0):
    _one_device(A_log=A_log, dt_bias=dt_bias, q=q, k=k, v=v, a=a, b=b, state=state,
                spec_state_indices=spec_state_indices, num_accepted_tokens=num_accepted_tokens,
                cu_seqlens=cu_seqlens)
    return q.new_empty(v.shape)
