// Shared helpers of the kernels: argument checks whose messages start with the argument's name
// (as the references' do), slot-index validation, and fp32 vector loads/stores of any activation
// dtype with a counted tail, so no channel is ever dropped.
#pragma once

#include <ATen/ATen.h>
#include <ATen/MemoryOverlap.h>
#include <ATen/Parallel.h>
#include <ATen/cpu/vec/functional.h>
#include <ATen/cpu/vec/vec.h>
#include <torch/library.h>

#include <algorithm>
#include <optional>
#include <vector>

namespace gdn_kernels {

using at::Tensor;
using Vec = at::vec::Vectorized<float>;
constexpr int64_t kVec = Vec::size();

// TORCH_CHECK with the argument's name first: "conv_states: expected ...".
#define CHECK_ARG(cond, arg, ...) TORCH_CHECK((cond), arg, ": ", __VA_ARGS__)

// A tensor the op needs, declared optional in the schema only so that a missing one (None) gets an
// error naming the argument instead of the dispatcher's "tensor does not have a device".
inline const Tensor& required(const std::optional<Tensor>& t, const char* arg) {
  CHECK_ARG(t.has_value(), arg, "is required, got None");
  return *t;
}

inline void check_cpu(const Tensor& t, const char* arg) {
  CHECK_ARG(t.device().is_cpu(), arg, "expected a CPU tensor, got ", t.device());
}

inline void check_dtype(const Tensor& t, at::ScalarType want, const char* arg) {
  CHECK_ARG(t.scalar_type() == want, arg, "expected dtype ", want, ", got ", t.scalar_type());
}

inline void check_activation_dtype(const Tensor& t, const char* arg) {
  auto s = t.scalar_type();
  CHECK_ARG(s == at::kBFloat16 || s == at::kHalf || s == at::kFloat, arg,
            "expected bfloat16, float16 or float32, got ", s);
}

inline void check_shape(const Tensor& t, at::IntArrayRef want, const char* arg) {
  CHECK_ARG(t.sizes() == want, arg, "expected shape ", want, ", got ", t.sizes());
}

// Slot of each row, -1 for a pad row. `indices` absent means identity. Every other index must be
// in [0, n_slots) and used by one row only: rows run in parallel, so a shared slot would race.
inline std::vector<int64_t> slot_plan(const std::optional<Tensor>& indices, int64_t rows,
                                      int64_t n_slots, int64_t pad_slot_id, const char* arg) {
  if (!indices.has_value()) {
    CHECK_ARG(rows <= n_slots, arg, "absent, so rows use slots 0..", rows - 1,
              ", but the pool has ", n_slots, " slots");
    std::vector<int64_t> plan(rows);
    for (int64_t r = 0; r < rows; ++r) plan[r] = r;
    return plan;
  }
  const Tensor& idx = *indices;
  check_cpu(idx, arg);
  check_dtype(idx, at::kInt, arg);
  check_shape(idx, {rows}, arg);
  auto acc = idx.accessor<int32_t, 1>();
  // Validated before anything of the batch's size is allocated: (slot, row) of the non-pad rows,
  // at most n_slots + 1 of them (past n_slots rows, two must share a slot).
  std::vector<std::pair<int64_t, int64_t>> used;
  for (int64_t r = 0; r < rows && static_cast<int64_t>(used.size()) <= n_slots; ++r) {
    const int64_t s = acc[r];
    if (s == pad_slot_id) continue;
    CHECK_ARG(s >= 0 && s < n_slots, arg, "index ", s, " at row ", r, " is outside [0, ", n_slots,
              ") and is not the pad slot id ", pad_slot_id);
    used.emplace_back(s, r);
  }
  std::sort(used.begin(), used.end());
  for (size_t i = 1; i < used.size(); ++i)
    CHECK_ARG(used[i].first != used[i - 1].first, arg, "slot ", used[i].first,
              " is used by rows ", used[i - 1].second, " and ", used[i].second);
  std::vector<int64_t> plan(rows);
  for (int64_t r = 0; r < rows; ++r) plan[r] = acc[r] == pad_slot_id ? -1 : acc[r];
  return plan;
}

// An SSM state pool [N, HV, K, V]: each slot dense, slots apart (only the slot stride is free).
inline void check_ssm_pool(const Tensor& s, int64_t HV, int64_t K, int64_t V, const char* arg) {
  check_cpu(s, arg);
  const auto dt = s.scalar_type();
  CHECK_ARG(dt == at::kFloat || dt == at::kBFloat16 || dt == at::kHalf, arg,
            "expected float32, bfloat16 or float16, got ", dt);
  CHECK_ARG(s.dim() == 4 && s.size(1) == HV && s.size(2) == K && s.size(3) == V, arg,
            "expected shape [N, ", HV, ", ", K, ", ", V, "], got ", s.sizes());
  CHECK_ARG(s.stride(3) == 1 && s.stride(2) == V && s.stride(1) == K * V, arg,
            "each slot must be dense [HV, K, V] (only the slot stride is free), got strides ",
            s.strides());
  CHECK_ARG(s.size(0) <= 1 || s.stride(0) >= HV * K * V, arg, "slot stride ", s.stride(0),
            " is smaller than a slot (", HV * K * V, "): slots would share storage");
}

// [N+1] int32 offsets starting at 0, non-decreasing, ending at `total`; with count >= 0, N must be
// count. The length and both ends are checked first and the whole tensor before it is copied, so
// wrong offsets of any length are refused without allocating their size.
inline std::vector<int64_t> offsets(const Tensor& cu, int64_t total, const char* arg,
                                    int64_t count = -1) {
  check_cpu(cu, arg);
  check_dtype(cu, at::kInt, arg);
  if (count >= 0)
    CHECK_ARG(cu.dim() == 1 && cu.numel() == count + 1, arg, "expected shape [", count + 1,
              "], got ", cu.sizes());
  CHECK_ARG(cu.dim() == 1 && cu.numel() >= 1, arg, "expected shape [N+1], got ", cu.sizes());
  const auto acc = cu.accessor<int32_t, 1>();
  const int64_t n = cu.numel();
  CHECK_ARG(acc[0] == 0, arg, "must start at 0, got ", acc[0]);
  CHECK_ARG(acc[n - 1] == total, arg, "must end at the token count ", total, ", got ", acc[n - 1]);
  for (int64_t i = 1; i < n; ++i)
    CHECK_ARG(acc[i - 1] <= acc[i], arg, "must be non-decreasing, got ", acc[i - 1], " then ",
              acc[i], " at entries ", i - 1, " and ", i);
  std::vector<int64_t> c(n);
  for (int64_t i = 0; i < n; ++i) c[i] = acc[i];
  return c;
}

// --- fp32 vector I/O for float, BFloat16 and Half; n < kVec loads/stores only n lanes ---------

template <typename T>
inline Vec load_f(const T* p, int64_t n = kVec) {
  if constexpr (std::is_same_v<T, float>) {
    return n == kVec ? Vec::loadu(p) : Vec::loadu(p, n);
  } else {
    if (n == kVec) {
      Vec v;
      at::vec::load_to_float<T>(p, v);
      return v;
    }
    alignas(64) float tmp[kVec] = {};
    for (int64_t i = 0; i < n; ++i) tmp[i] = static_cast<float>(p[i]);
    return Vec::loadu(tmp);
  }
}

template <typename T>
inline void store_f(T* p, const Vec& v, int64_t n = kVec) {
  if constexpr (std::is_same_v<T, float>) {
    v.store(p, n);
  } else {
    if (n == kVec) {
      at::vec::convert_from_float<T>(v, v).store(p, kVec);  // round to nearest even
      return;
    }
    alignas(64) float tmp[kVec];
    v.store(tmp);
    for (int64_t i = 0; i < n; ++i) p[i] = static_cast<T>(tmp[i]);
  }
}

// 2·kVec elements (one cache line of bf16) as two fp32 vectors; n < 2·kVec reads only n.
template <typename T>
inline void load2_f(const T* p, int64_t n, Vec& lo, Vec& hi) {
  if constexpr (!std::is_same_v<T, float>) {
    if (n == 2 * kVec) {
      std::tie(lo, hi) = at::vec::convert_to_float<T>(at::vec::Vectorized<T>::loadu(p));
      return;
    }
  }
  lo = load_f(p, std::min(n, kVec));
  hi = n > kVec ? load_f(p + kVec, n - kVec) : Vec(0.f);
}

// Two fp32 vectors rounded (to nearest even) into one vector of T. With AVX512-BF16 this is one
// instruction instead of ATen's emulated rounding — except that the instruction flushes fp32
// subnormal inputs to zero, so a pair holding one takes ATen's exact path.
template <typename T>
inline at::vec::Vectorized<T> round_pair(const Vec& lo, const Vec& hi) {
#if defined(CPU_CAPABILITY_AVX512) && defined(__AVX512BF16__)
  if constexpr (std::is_same_v<T, at::BFloat16>) {
    constexpr int kDenormal = 0x20;  // vfpclassps category
    if ((_mm512_fpclass_ps_mask(lo, kDenormal) | _mm512_fpclass_ps_mask(hi, kDenormal)) == 0)
      return at::vec::Vectorized<T>((__m512i)_mm512_cvtne2ps_pbh(hi, lo));
  }
#endif
  return at::vec::convert_from_float<T>(lo, hi);
}

template <typename T>
inline void store2_f(T* p, const Vec& lo, const Vec& hi, int64_t n) {
  if constexpr (!std::is_same_v<T, float>) {
    if (n == 2 * kVec) {
      round_pair<T>(lo, hi).store(p);
      return;
    }
  }
  store_f(p, lo, std::min(n, kVec));
  if (n > kVec) store_f(p + kVec, hi, n - kVec);
}

// n contiguous raw elements, inline (a libc memcpy call per cache line costs more than the copy).
template <typename T>
inline void copy_n(T* dst, const T* src, int64_t n) {
  using V = at::vec::Vectorized<T>;
  for (int64_t i = 0; i < n; i += V::size()) {
    const int64_t k = std::min<int64_t>(V::size(), n - i);
    (k == V::size() ? V::loadu(src + i) : V::loadu(src + i, k)).store(dst + i, k);
  }
}

// n raw elements dst[i·stride] = src[i·stride]: an exact move, no conversion.
template <typename T>
inline void copy_strided(T* dst, const T* src, int64_t stride, int64_t n) {
  if (stride == 1) return copy_n(dst, src, n);
  for (int64_t i = 0; i < n; ++i) dst[i * stride] = src[i * stride];
}

// n raw elements dst[i·stride] = src[i] from a contiguous source.
template <typename T>
inline void copy_to_strided(T* dst, int64_t stride, const T* src, int64_t n) {
  if (stride == 1) return copy_n(dst, src, n);
  for (int64_t i = 0; i < n; ++i) dst[i * stride] = src[i];
}

// Elements p[0], p[stride], ... : a vector load when stride is 1, a gather otherwise.
template <typename T>
inline Vec load_strided_f(const T* p, int64_t stride, int64_t n = kVec) {
  if (stride == 1) return load_f(p, n);
  alignas(64) float tmp[kVec] = {};
  for (int64_t i = 0; i < n; ++i) tmp[i] = static_cast<float>(p[i * stride]);
  return Vec::loadu(tmp);
}

template <typename T>
inline void load2_strided_f(const T* p, int64_t stride, int64_t n, Vec& lo, Vec& hi) {
  if (stride == 1) return load2_f(p, n, lo, hi);
  lo = load_strided_f(p, stride, std::min(n, kVec));
  hi = n > kVec ? load_strided_f(p + kVec * stride, stride, n - kVec) : Vec(0.f);
}

template <typename T>
inline void store_strided_f(T* p, int64_t stride, const Vec& v, int64_t n = kVec) {
  if (stride == 1) return store_f(p, v, n);
  alignas(64) float tmp[kVec];
  v.store(tmp);
  for (int64_t i = 0; i < n; ++i) p[i * stride] = static_cast<T>(tmp[i]);
}

#if defined(CPU_CAPABILITY_AVX512)
// y·σ(y) given e = exp(−|y|) as p·2^⌊n⌋ (vscalefps, exact): σ(y) = 1/(1+e) for y ≥ 0 and e/(1+e)
// otherwise, 1/(1+e) by a reciprocal estimate (relative error < 2^-14) and, with kNewton, one
// Newton step. Shared by silu_for_rounding below and the bf16 prefill's SiLU in conv.cpp, which
// differ in how they reach p and n and in whether they refine the reciprocal.
template <bool kNewton = true>
inline __m512 silu_from_exp2(__m512 y, __m512 p, __m512 n) {
  const __m512 e = _mm512_scalef_ps(p, n);
  const __m512 d = _mm512_add_ps(e, _mm512_set1_ps(1.f));
  __m512 r = _mm512_rcp14_ps(d);
  if constexpr (kNewton) r = _mm512_mul_ps(r, _mm512_fnmadd_ps(d, r, _mm512_set1_ps(2.f)));
  const __mmask16 negative = _mm512_cmp_ps_mask(y, _mm512_setzero_ps(), _CMP_LT_OQ);
  return _mm512_mul_ps(y, _mm512_mask_mul_ps(r, negative, e, r));
}
#endif

// SiLU y·σ(y) for a result that will be rounded to bf16/fp16. On AVX-512, with a = |y| and
// e = exp(−a) ∈ (0, 1]: σ(y) = 1/(1+e) for y ≥ 0 and e/(1+e) otherwise, so nothing overflows and
// ±∞, NaN come out as torch's do. e = 2^t, t = −a·log2(e) = n + f with f ∈ [−½, ½]: 2^f from
// Cephes' degree-6 exp2 polynomial (relative error ~1e-7), 2^n by vscalefps (exact; t ≥ −150
// underflows to 0); 1/(1+e) by a reciprocal estimate and one Newton step. A few fp32 ulps in
// all, far below the unit roundoff of bf16 (2^-8) or fp16 (2^-11).
inline Vec silu_for_rounding(const Vec& y) {
#if defined(CPU_CAPABILITY_AVX512)
  const __m512 yv = y;
  const __m512 a = _mm512_abs_ps(yv);
  // max(bound, t) keeps a NaN t: it returns its second operand when either is NaN.
  const __m512 t = _mm512_max_ps(_mm512_set1_ps(-150.f),
                                 _mm512_mul_ps(a, _mm512_set1_ps(-1.4426950408889634f)));
  const __m512 n = _mm512_roundscale_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m512 f = _mm512_sub_ps(t, n);
  __m512 p = _mm512_set1_ps(1.535336188319500e-4f);
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.339887440266574e-3f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(9.618437357674640e-3f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(5.550332471162809e-2f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(2.402264791363012e-1f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(6.931472028550421e-1f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.f));
  return Vec(silu_from_exp2(yv, p, n));
#else
  return y / (Vec(1.f) + y.neg().exp_u20());
#endif
}

#define DISPATCH_ACTIVATION(dtype, NAME, ...)                                        \
  [&] {                                                                              \
    switch (dtype) {                                                                 \
      case at::kFloat: { using scalar_t = float; return __VA_ARGS__(); }            \
      case at::kBFloat16: { using scalar_t = at::BFloat16; return __VA_ARGS__(); }  \
      case at::kHalf: { using scalar_t = at::Half; return __VA_ARGS__(); }          \
      default: TORCH_CHECK(false, NAME, ": unsupported dtype ", dtype);             \
    }                                                                                \
  }()

}  // namespace gdn_kernels
