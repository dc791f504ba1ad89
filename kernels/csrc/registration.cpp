// The op schemas of the gdn_kernels namespace. They follow vLLM's CPU ops (argument names and
// order) so that backends are interchangeable, with every tensor an op writes marked mutable
// (Tensor(a!)), including conv_states in fwd. Implementations register per file; fake (meta)
// implementations live in kernels/fake.py.
#include <torch/library.h>

TORCH_LIBRARY(gdn_kernels, m) {
  // softplus_beta/threshold extend vLLM's gating schema (defaults keep its calls valid);
  // cu_seqlens is optional in decode (vLLM's requires one, then ignores it).
  m.def(
      "fused_gdn_gating(Tensor A_log, Tensor a, Tensor b, Tensor dt_bias, "
      "float softplus_beta=1.0, float softplus_threshold=20.0) -> (Tensor, Tensor)");
  m.def(
      "fused_sigmoid_gating_delta_rule_update(Tensor A_log, Tensor dt_bias, Tensor q, Tensor k, "
      "Tensor v, Tensor a, Tensor b, Tensor(a!) state, Tensor state_indices, Tensor? cu_seqlens, "
      "bool use_qk_l2norm_in_kernel, float softplus_beta=1.0, float softplus_threshold=20.0) "
      "-> Tensor");
  // Speculative decode (SPEC §7): q, k [T, HK, K], v [T, HV, V], a, b [T, HV]; the pool is written
  // at the slots of spec_state_indices [B, S] (one per draft position).
  m.def(
      "fused_sigmoid_gating_delta_rule_update_spec(Tensor A_log, Tensor dt_bias, Tensor q, "
      "Tensor k, Tensor v, Tensor a, Tensor b, Tensor(a!) state, Tensor spec_state_indices, "
      "Tensor num_accepted_tokens, Tensor cu_seqlens, bool use_qk_l2norm_in_kernel, "
      "float softplus_beta=1.0, float softplus_threshold=20.0) -> Tensor");
  m.def("causal_conv1d_weight_pack(Tensor weight) -> Tensor");
  m.def(
      "causal_conv1d_fwd(Tensor x, Tensor weight, Tensor? bias, Tensor(a!)? conv_states, "
      "Tensor? query_start_loc, Tensor? cache_indices, Tensor? has_initial_state, "
      "bool silu_activation, int pad_slot_id, bool is_weight_packed) -> Tensor");
  m.def(
      "causal_conv1d_update(Tensor x, Tensor(a!)? conv_states, Tensor weight, Tensor? bias, "
      "bool silu_activation, Tensor? num_accepted_tokens, Tensor? conv_state_indices, "
      "int pad_slot_id, bool is_weight_packed) -> Tensor");
  // Tensors the contract requires but the schema marks optional (conv_states in update;
  // cu_seqlens and initial_state_indices in the prefill) raise an error naming them when None.
  // The final states are written in place into initial_state. vLLM's op also returns the pool
  // itself; an output aliasing a mutated input would break functionalization, so ours returns only
  // out. gemm_path picks the GEMM implementation ("brgemm", "blas", or "brgemm_bf16": bf16
  // operands, fp32 accumulation) for this call.
  m.def(
      "chunk_gated_delta_rule(Tensor query, Tensor key, Tensor value, Tensor g, Tensor beta, "
      "Tensor(a!) initial_state, bool output_final_state, Tensor? cu_seqlens, bool head_first, "
      "bool use_qk_l2norm_in_kernel, Tensor? initial_state_indices, float eps=1e-05, "
      "str gemm_path=\"brgemm\") -> Tensor");
}
