// The op schemas of the gdn_kernels namespace. They follow vLLM's CPU ops (argument names and
// order) so that backends are interchangeable, with every tensor an op writes marked mutable
// (Tensor(a!)), including conv_states in fwd. Implementations register per file; fake (meta)
// implementations live in kernels/fake.py.
#include <torch/library.h>

TORCH_LIBRARY(gdn_kernels, m) {
  m.def("causal_conv1d_weight_pack(Tensor weight) -> Tensor");
  m.def(
      "causal_conv1d_fwd(Tensor x, Tensor weight, Tensor? bias, Tensor(a!)? conv_states, "
      "Tensor? query_start_loc, Tensor? cache_indices, Tensor? has_initial_state, "
      "bool silu_activation, int pad_slot_id, bool is_weight_packed) -> Tensor");
  m.def(
      "causal_conv1d_update(Tensor x, Tensor(a!) conv_states, Tensor weight, Tensor? bias, "
      "bool silu_activation, Tensor? num_accepted_tokens, Tensor? conv_state_indices, "
      "int pad_slot_id, bool is_weight_packed) -> Tensor");
}
