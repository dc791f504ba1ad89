// Gated delta net kernels (SPEC §1–3, §7): gating, the decode update (one token per row), the
// chunked prefill and the speculative decode update (several draft tokens per row).
//
// Decode, per (row, v head), with the state S[k, v] of the row's slot (V contiguous):
//   pass 1 reads S once and accumulates Sᵀk̂ and Sᵀq̂ of the *undecayed* state; since
//   S' = e^g·S + k̂·δᵀ, that gives δ = β·(v − e^g·Sᵀk̂) and o = scale·(e^g·Sᵀq̂ + δ·(k̂·q̂));
//   pass 2 writes S' while the slot is still in cache. Each slot crosses memory once each way.
// Arithmetic is fp32; a bf16/fp16 state is rounded once, when written back.
#include "common.h"
#include "gemm.h"

#include <array>
#include <atomic>
#include <cmath>
#include <functional>
#include <numeric>
#include <type_traits>

namespace gdn_kernels {
namespace {

constexpr float kL2NormEps = 1e-5f;
constexpr int64_t kVChunk = 8 * kVec;  // V columns accumulated at once: 16 accumulators in registers

// softplus as torch.nn.functional.softplus(x, beta, threshold).
inline float softplus(float x, float beta, float threshold) {
  return beta * x > threshold ? x : std::log1p(std::exp(beta * x)) / beta;
}

inline float sigmoid(float x) { return 1.f / (1.f + std::exp(-x)); }

// A small per-head vector as fp32 (A_log, dt_bias: [HV], any float dtype, any stride).
std::vector<float> head_vector(const Tensor& t, int64_t HV, const char* arg) {
  check_cpu(t, arg);
  CHECK_ARG(t.is_floating_point(), arg, "expected a floating-point tensor, got ", t.scalar_type());
  check_shape(t, {HV}, arg);
  const Tensor f = t.to(at::kFloat).contiguous();
  return std::vector<float>(f.data_ptr<float>(), f.data_ptr<float>() + HV);
}

// ---- §1 gating --------------------------------------------------------------------------------

std::tuple<Tensor, Tensor> fused_gdn_gating(const Tensor& A_log, const Tensor& a, const Tensor& b,
                                            const Tensor& dt_bias, double softplus_beta,
                                            double softplus_threshold) {
  check_cpu(a, "a");
  check_activation_dtype(a, "a");
  CHECK_ARG(a.dim() == 2, "a", "expected shape [T, HV], got ", a.sizes());
  const int64_t T = a.size(0), HV = a.size(1);
  check_cpu(b, "b");
  check_activation_dtype(b, "b");
  check_shape(b, {T, HV}, "b");
  const auto A = head_vector(A_log, HV, "A_log");
  const auto bias = head_vector(dt_bias, HV, "dt_bias");
  CHECK_ARG(softplus_beta > 0, "softplus_beta", "must be positive, got ", softplus_beta);
  Tensor g = at::empty({1, T, HV}, a.options().dtype(at::kFloat));
  Tensor beta = at::empty({1, T, HV}, b.options());
  const float sb = static_cast<float>(softplus_beta), thr = static_cast<float>(softplus_threshold);
  DISPATCH_ACTIVATION(a.scalar_type(), "fused_gdn_gating", [&] {
    using TA = scalar_t;
    DISPATCH_ACTIVATION(b.scalar_type(), "fused_gdn_gating", [&] {
      const TA* ap = a.data_ptr<TA>();
      const scalar_t* bp = b.data_ptr<scalar_t>();
      float* gp = g.data_ptr<float>();
      scalar_t* betap = beta.data_ptr<scalar_t>();
      at::parallel_for(0, T, 64, [&](int64_t t0, int64_t t1) {
        for (int64_t t = t0; t < t1; ++t)
          for (int64_t h = 0; h < HV; ++h) {
            const float x = static_cast<float>(ap[t * a.stride(0) + h * a.stride(1)]) + bias[h];
            gp[t * HV + h] = -std::exp(A[h]) * softplus(x, sb, thr);
            betap[t * HV + h] =
                static_cast<scalar_t>(sigmoid(static_cast<float>(bp[t * b.stride(0) + h * b.stride(1)])));
          }
      });
    });
  });
  return {g, beta};
}

// ---- §2 decode ----------------------------------------------------------------------------------

// One delta-rule step on one head's state [K, V] (rows K, V contiguous). q, k: K fp32 values
// (normalised, q unscaled); o receives V values. The state is read from `src` and the new state
// written to `work` (fp32, when kWork) and, rounded, to `store` (when kStore). Any of them may be
// the same memory: each element is read before it is written. (Compile-time flags: a branch per
// vector in the write pass cost the decode kernel ~20% at one row.)
template <typename SI, typename SO, bool kWork, bool kStore>
void step_head(const SI* src, float* work, SO* store, int64_t K, int64_t V, const float* q,
               const float* k, const float* v, float decay, float beta, float scale, float* o) {
  float kq = 0.f;
  for (int64_t i = 0; i < K; ++i) kq += k[i] * q[i];
  const Vec vdecay(decay), vbeta(beta), vscale(scale), vkq(kq);
  for (int64_t v0 = 0; v0 < V; v0 += kVChunk) {
    const int64_t nv = std::min(kVChunk, V - v0);
    Vec sk[8], sq[8];  // Sᵀk̂ and Sᵀq̂ of the chunk (zero-filled: they are the accumulators)
    for (int64_t i = 0; i < K; ++i) {  // pass 1: read
      const SI* row = src + i * V + v0;
      const Vec ki(k[i]), qi(q[i]);
      for (int64_t j = 0; j * kVec < nv; ++j) {
        const Vec s = load_f(row + j * kVec, std::min(kVec, nv - j * kVec));
        sk[j] = at::vec::fmadd(s, ki, sk[j]);
        sq[j] = at::vec::fmadd(s, qi, sq[j]);
      }
    }
    Vec delta[8];
    for (int64_t j = 0; j * kVec < nv; ++j) {
      const int64_t m = std::min(kVec, nv - j * kVec);
      delta[j] = vbeta * (load_f(v + v0 + j * kVec, m) - vdecay * sk[j]);
      (vscale * at::vec::fmadd(delta[j], vkq, vdecay * sq[j])).store(o + v0 + j * kVec, m);
    }
    for (int64_t i = 0; i < K; ++i) {  // pass 2: write, the chunk still in cache
      const SI* row = src + i * V + v0;
      const Vec ki(k[i]);
      for (int64_t j = 0; j * kVec < nv; ++j) {
        const int64_t m = std::min(kVec, nv - j * kVec), at = i * V + v0 + j * kVec;
        const Vec s = at::vec::fmadd(ki, delta[j], vdecay * load_f(row + j * kVec, m));
        if constexpr (kWork) s.store(work + at, m);
        if constexpr (kStore) store_f(store + at, s, m);
      }
    }
  }
}

// One delta-rule step on one head's state in place (decode).
template <typename S>
void decode_head(S* state, int64_t K, int64_t V, const float* q, const float* k, const float* v,
                 float decay, float beta, float scale, float* o) {
  step_head<S, S, false, true>(state, nullptr, state, K, V, q, k, v, decay, beta, scale, o);
}

// One token's q and k of one head as fp32 (l2-normalised when asked), and its v.
template <typename T>
void load_token(const T* qr, const T* kr, const T* vr, int64_t K, int64_t V, bool l2norm,
                float* qf, float* kf, float* vf) {
  float qn = 0.f, kn = 0.f;
  for (int64_t i = 0; i < K; ++i) {
    qf[i] = static_cast<float>(qr[i]);
    kf[i] = static_cast<float>(kr[i]);
    qn += qf[i] * qf[i];
    kn += kf[i] * kf[i];
  }
  if (l2norm) {
    const float iq = 1.f / std::sqrt(qn + kL2NormEps), ik = 1.f / std::sqrt(kn + kL2NormEps);
    for (int64_t i = 0; i < K; ++i) qf[i] *= iq, kf[i] *= ik;
  }
  for (int64_t j = 0; j < V; ++j) vf[j] = static_cast<float>(vr[j]);
}

// The decay e^g and β of one token and head from its a, b (§1, with the softplus parameters).
inline std::pair<float, float> token_gates(float a, float b, float A_log, float dt_bias, float sb,
                                           float thr) {
  return {std::exp(-std::exp(A_log) * softplus(a + dt_bias, sb, thr)), sigmoid(b)};
}

// q, k or v: [1, R, H, D] (decode and prefill), or [R, H, D] (tokens: speculative decode).
void check_qkv(const Tensor& t, const char* arg, int64_t R, bool tokens) {
  check_cpu(t, arg);
  check_activation_dtype(t, arg);
  if (tokens) {
    CHECK_ARG(t.dim() == 3, arg, "expected shape [T, H, D], got ", t.sizes());
  } else {
    CHECK_ARG(t.dim() == 4 && t.size(0) == 1, arg, "expected shape [1, B, H, D], got ", t.sizes());
  }
  CHECK_ARG(t.size(-3) == R, arg, "expected ", R, " rows, got ", t.size(-3));
  CHECK_ARG(t.numel() == 0 || t.stride(-1) == 1, arg,
            "the head dim must be contiguous (stride(-1) == 1), got strides ", t.strides());
}

// q, k [.., R, HK, K] and v [.., R, HV, V] of one dtype with HV % HK == 0 (q's rank checked by
// the caller, which names its rows); the names are the schema's. Returns {HK, K, HV, V}.
std::array<int64_t, 4> check_heads(const Tensor& q, const Tensor& k, const Tensor& v,
                                   const char* qn, const char* kn, const char* vn,
                                   bool tokens = false) {
  const int64_t R = q.size(-3), HK = q.size(-2), K = q.size(-1);
  check_qkv(q, qn, R, tokens);
  check_qkv(k, kn, R, tokens);
  CHECK_ARG(k.sizes() == q.sizes(), kn, "expected the shape of ", qn, " ", q.sizes(), ", got ",
            k.sizes());
  check_qkv(v, vn, R, tokens);
  const int64_t HV = v.size(-2), V = v.size(-1);
  CHECK_ARG(HK > 0 && HV % HK == 0, vn, "v heads (", HV, ") must be a multiple of q/k heads (",
            HK, ")");
  for (const auto& [t, name] : {std::pair<const Tensor&, const char*>{k, kn}, {v, vn}})
    CHECK_ARG(t.scalar_type() == q.scalar_type(), name, "expected ", qn, "'s dtype ",
              q.scalar_type(), ", got ", t.scalar_type());
  return {HK, K, HV, V};
}

// a, b [R, HV] of one activation dtype.
void check_gate_inputs(const Tensor& a, const Tensor& b, int64_t R, int64_t HV) {
  for (const auto& [t, name] : {std::pair<const Tensor&, const char*>{a, "a"}, {b, "b"}}) {
    check_cpu(t, name);
    check_activation_dtype(t, name);
    check_shape(t, {R, HV}, name);
  }
  CHECK_ARG(b.scalar_type() == a.scalar_type(), "b", "expected a's dtype ", a.scalar_type(),
            ", got ", b.scalar_type());
}

// What decode and speculative decode check alike: q, k, v, a, b for R rows (decode: q [1, R, HK,
// K]) or R tokens (speculative: q [R, HK, K]), A_log and dt_bias per v head, softplus_beta > 0, and
// the pool. Returns the head sizes and the per-head A_log and dt_bias as fp32.
struct StepArgs {
  int64_t HK, K, HV, V, G;
  std::vector<float> A, bias;
};

StepArgs check_step_args(const Tensor& A_log, const Tensor& dt_bias, const Tensor& q,
                         const Tensor& k, const Tensor& v, const Tensor& a, const Tensor& b,
                         const Tensor& state, double softplus_beta, bool tokens) {
  const auto heads = check_heads(q, k, v, "q", "k", "v", tokens);
  StepArgs s{heads[0], heads[1], heads[2], heads[3], heads[2] / heads[0], {}, {}};
  check_gate_inputs(a, b, q.size(-3), s.HV);
  s.A = head_vector(A_log, s.HV, "A_log");
  s.bias = head_vector(dt_bias, s.HV, "dt_bias");
  CHECK_ARG(softplus_beta > 0, "softplus_beta", "must be positive, got ", softplus_beta);
  check_ssm_pool(state, s.HV, s.K, s.V, "state");
  return s;
}

Tensor fused_sigmoid_gating_delta_rule_update(
    const Tensor& A_log, const Tensor& dt_bias, const Tensor& q, const Tensor& k, const Tensor& v,
    const Tensor& a, const Tensor& b, const Tensor& state, const Tensor& state_indices,
    const std::optional<Tensor>& cu_seqlens, bool use_qk_l2norm_in_kernel, double softplus_beta,
    double softplus_threshold) {
  check_cpu(q, "q");
  CHECK_ARG(q.dim() == 4 && q.size(0) == 1, "q", "expected shape [1, B, HK, K], got ", q.sizes());
  const int64_t B = q.size(1);
  // (named copies, not a structured binding: lambdas below capture them)
  const StepArgs args =
      check_step_args(A_log, dt_bias, q, k, v, a, b, state, softplus_beta, /*tokens=*/false);
  const int64_t K = args.K, HV = args.HV, V = args.V, G = args.G;
  const std::vector<float>&A = args.A, &bias = args.bias;
  const auto sdt = state.scalar_type();
  if (cu_seqlens.has_value()) {
    auto cu = offsets(*cu_seqlens, B, "cu_seqlens", /*count=*/B);
    for (int64_t i = 0; i < B; ++i)
      CHECK_ARG(cu[i + 1] - cu[i] == 1, "cu_seqlens", "decode takes one token per row, got ",
                cu[i + 1] - cu[i], " tokens in row ", i);
  }
  const auto slots = slot_plan(state_indices, B, state.size(0), -1, "state_indices");

  Tensor out = at::empty({B, 1, HV, V}, q.options());
  const float sb = static_cast<float>(softplus_beta), thr = static_cast<float>(softplus_threshold);
  const float scale = 1.f / std::sqrt(static_cast<float>(K));
  DISPATCH_ACTIVATION(q.scalar_type(), "fused_sigmoid_gating_delta_rule_update", [&] {
    using T = scalar_t;
    DISPATCH_ACTIVATION(a.scalar_type(), "fused_sigmoid_gating_delta_rule_update", [&] {
      using TA = scalar_t;
      DISPATCH_ACTIVATION(sdt, "fused_sigmoid_gating_delta_rule_update", [&] {
        using S = scalar_t;
        const T *qp = q.data_ptr<T>(), *kp = k.data_ptr<T>(), *vp = v.data_ptr<T>();
        const TA *ap = a.data_ptr<TA>(), *bp = b.data_ptr<TA>();
        S* sp = state.data_ptr<S>();
        T* op = out.data_ptr<T>();
        at::parallel_for(0, B * HV, 1, [&](int64_t begin, int64_t end) {
          std::vector<float> qf(K), kf(K), vf(V), of(V);
          for (int64_t item = begin; item < end; ++item) {
            const int64_t r = item / HV, h = item % HV, hk = h / G;
            T* o = op + (r * HV + h) * V;
            if (slots[r] < 0) {  // pad row: zeros out, state untouched
              std::fill(o, o + V, T(0));
              continue;
            }
            load_token(qp + r * q.stride(1) + hk * q.stride(2), kp + r * k.stride(1) + hk * k.stride(2),
                       vp + r * v.stride(1) + h * v.stride(2), K, V, use_qk_l2norm_in_kernel,
                       qf.data(), kf.data(), vf.data());
            const auto [decay, beta] = token_gates(
                static_cast<float>(ap[r * a.stride(0) + h * a.stride(1)]),
                static_cast<float>(bp[r * b.stride(0) + h * b.stride(1)]), A[h], bias[h], sb, thr);
            decode_head<S>(sp + slots[r] * state.stride(0) + h * K * V, K, V, qf.data(), kf.data(),
                           vf.data(), decay, beta, scale, of.data());
            for (int64_t j = 0; j < V; ++j) o[j] = static_cast<T>(of[j]);
          }
        });
      });
    });
  });
  return out;
}

// ---- §3 chunked prefill ------------------------------------------------------------------------
//
// Per (sequence, k head), chunks of kChunk tokens from the sequence's start; the v heads sharing the
// k head run chunk by chunk side by side, so q̂, k̂, K̂ᵀ and K̂·K̂ᵀ, Q̂·K̂ᵀ are built once for all of
// them. Each state S [K, V] is fp32 throughout. With G the inclusive cumsum of g in the chunk and
// Γ_ij = exp(G_i − G_j) (j ≤ i):
//   (I + L)·[−W | U] = [−diag(β·e^G)·K | diag(β)·V],  L = strict_tril(diag(β)·K·Kᵀ ⊙ Γ)
//   Δ = U − W·S;  O = (Q ⊙ e^G)·S + (Q·Kᵀ ⊙ Γ)·Δ;  S ← e^{G_last}·S + Kᵀ·(diag(e^{G_last − G})·Δ)
// (Q carries the 1/sqrt(K) scale.) −W and U come out of one product side by side, so Δ is U with
// (−W)·S accumulated onto it. The unit-lower-triangular system is solved by inverting I + L
// (forward substitution on the identity, m³/6 operations) and one product.

// 32 tokens, not vLLM's 64. Per token and v head the products with the state (W·S, Q·S, Kᵀ·Δ)
// cost 3·K·V multiply-adds whatever the chunk size C, the in-chunk ones (the inverse times
// [K | V], (Q·Kᵀ)·Δ, and [K; Q]·Kᵀ shared by G v heads) C·(K + 2V + 2K/G): at K = V = 128 and
// G = 2, 49K + 32K at C = 64 and 49K + 16K at C = 32, 20% fewer. Measured at the benchmark's
// shapes, 32 runs 1.1-1.25x faster than 64 on both brgemm paths; at 16 the smaller products lose
// more efficiency than they save (brgemm_bf16 ~15% slower than at 32).
constexpr int64_t kChunk = 32;
constexpr int64_t kChunkVecs = kChunk / kVec;

using bf16 = at::BFloat16;

// dst[i·ldd + j] = bf16(a_i · src[i·lds + j]) for j < cols (a_i = 1 without scale), zeros on
// [cols, cols_pad): an A operand whose reduction dim is padded to even.
inline void round_rows(const float* src, int64_t lds, int64_t rows, int64_t cols, int64_t cols_pad,
                       bf16* dst, int64_t ldd, const float* scale = nullptr) {
  for (int64_t i = 0; i < rows; ++i) {
    const Vec a(scale ? scale[i] : 1.f);
    for (int64_t j = 0; j < cols; j += 2 * kVec) {
      const int64_t r = std::min(2 * kVec, cols - j);
      const float* x = src + i * lds + j;
      store2_f(dst + i * ldd + j, a * Vec::loadu(x, std::min(r, kVec)),
               r > kVec ? a * Vec::loadu(x + kVec, r - kVec) : Vec(0.f), r);
    }
    std::fill(dst + i * ldd + cols, dst + i * ldd + cols_pad, bf16(0.f));
  }
}

// B [rows, N] (fp32, ld lds, row i scaled by scale[i] if given) as bf16 VNNI pairs: element (i, n)
// at dst[(i / 2)·2N + 2n + i % 2]; an odd last row is paired with zeros.
inline void pack_vnni(const float* src, int64_t lds, int64_t rows, int64_t N, bf16* dst,
                      const float* scale = nullptr) {
  for (int64_t i = 0; i < rows; i += 2) {
    const float* r0 = src + i * lds;
    const float* r1 = src + (i + 1) * lds;
    const bool pair = i + 1 < rows;
    const Vec a0(scale ? scale[i] : 1.f), a1(scale && pair ? scale[i + 1] : 1.f);
    bf16* d = dst + i * N;
    int64_t n = 0;
#if defined(CPU_CAPABILITY_AVX512)
    // Round both rows to bf16, then interleave 16-bit lanes: unpack works within 128-bit lanes,
    // so a 32-bit permute puts the pairs back in column order.
    const __m512i lo_idx = _mm512_setr_epi32(0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23);
    const __m512i hi_idx = _mm512_setr_epi32(8, 9, 10, 11, 24, 25, 26, 27, 12, 13, 14, 15, 28, 29, 30, 31);
    for (; n + 2 * kVec <= N; n += 2 * kVec) {
      const __m512i x0 = round_pair<bf16>(a0 * Vec::loadu(r0 + n), a0 * Vec::loadu(r0 + n + kVec));
      const __m512i x1 = pair ? __m512i(round_pair<bf16>(a1 * Vec::loadu(r1 + n), a1 * Vec::loadu(r1 + n + kVec)))
                              : _mm512_setzero_si512();
      const __m512i lo = _mm512_unpacklo_epi16(x0, x1), hi = _mm512_unpackhi_epi16(x0, x1);
      _mm512_storeu_si512(d + 2 * n, _mm512_permutex2var_epi32(lo, lo_idx, hi));
      _mm512_storeu_si512(d + 2 * n + 2 * kVec, _mm512_permutex2var_epi32(lo, hi_idx, hi));
    }
#endif
    for (; n < N; ++n) {
      d[2 * n] = bf16(scale ? scale[i] * r0[n] : r0[n]);
      d[2 * n + 1] = pair ? bf16(scale ? scale[i + 1] * r1[n] : r1[n]) : bf16(0.f);
    }
  }
}

struct ChunkScratch {
  // kq: k̂ rows then q̂ rows, so K̂·K̂ᵀ and Q̂·K̂ᵀ are one product; kt: K̂ᵀ [K, kChunk].
  std::vector<float> kq, kt, raw, L, qk, inv, rhs, x, qs, o, g, graw, run, beta, fk, fq, S;
  // brgemm_bf16 operands: A row-major, B in VNNI pairs (p suffix); raw = the inputs' q, k.
  std::vector<bf16> kq_raw, kt_rawp, kt16, inv16, rhsp, w16, Sp, qs16, qk16, dp;
  // The chunk's q and k rows are all finite (gather_qk); per v head of the group, whether its
  // state holds a non-finite value (set after a token-by-token chunk: chunk_step).
  bool qk_finite = true;
  std::vector<uint8_t> nonfinite_state;
  // The blas path (chunk_heads_blas): the group's states side by side, S [K, G·V], and per chunk
  // P = [K̂; Q̂]·S [2m, G·V], R [m, G·V], Y = [Δ; O-term] [2m, G·V]; inv holds [(I+L)⁻¹; M].
  std::vector<float> P, R, Y;
  ChunkScratch(int64_t K, int64_t V, int64_t heads, bool copy_state, GemmPath path)
      : kq(2 * kChunk * K), kt(K * kChunk), raw(2 * kChunk * kChunk), L(kChunk * kChunk),
        qk(kChunk * kChunk), inv(2 * kChunk * kChunk), rhs(kChunk * (K + V)), x(kChunk * (K + V)),
        qs(kChunk * K), o(kChunk * V), g(kChunk), graw(kChunk), run(kChunk), beta(kChunk),
        fk(kChunk), fq(kChunk), S(copy_state || path == GemmPath::kBlas ? heads * K * V : 0) {
    if (path == GemmPath::kBlas) {
      P.resize(2 * kChunk * heads * V);
      R.resize(kChunk * heads * V);
      Y.resize(2 * kChunk * heads * V);
    }
    if (path != GemmPath::kBrgemmBf16) return;
    for (auto* b : {&kq_raw, &kt_rawp, &kt16, &w16, &qs16}) b->resize(2 * kChunk * K);
    for (auto* b : {&inv16, &qk16}) b->resize(kChunk * kChunk);
    rhsp.resize(kChunk * (K + V));
    Sp.resize(K * V);
    dp.resize(kChunk * V);
  }
};

// y[0, n) = a · x[0, n) (y may be x).
inline void scale_row(float* y, const float* x, float a, int64_t n) {
  const Vec va(a);
  for (int64_t c = 0; c < n; c += kVec) {
    const int64_t r = std::min(kVec, n - c);
    (va * Vec::loadu(x + c, r)).store(y + c, r);
  }
}

// Rows j ∈ [B·kVec, min((B+1)·kVec, i)) of the substitution for row i: row j is zero beyond
// column j, so only vectors 0..B are read. B is a template argument so that the accumulators keep
// constant indices and stay in registers; two sets (even, odd j) halve the FMA dependency chain.
template <int B>
inline void inverse_rows(const float* Li, const float* inv, int64_t i, Vec* a0, Vec* a1) {
  const int64_t j1 = std::min<int64_t>(i, (B + 1) * kVec);
  int64_t j = B * kVec;
  for (; j + 1 < j1; j += 2) {
    const Vec l0(Li[j]), l1(Li[j + 1]);
    const float* x0 = inv + j * kChunk;
    for (int c = 0; c <= B; ++c) {
      a0[c] = a0[c] - l0 * Vec::loadu(x0 + c * kVec);
      a1[c] = a1[c] - l1 * Vec::loadu(x0 + kChunk + c * kVec);
    }
  }
  if (j < j1) {
    const Vec l0(Li[j]);
    for (int c = 0; c <= B; ++c) a0[c] = a0[c] - l0 * Vec::loadu(inv + j * kChunk + c * kVec);
  }
  if constexpr (B + 1 < kChunkVecs)
    if (j1 < i) inverse_rows<B + 1>(Li, inv, i, a0, a1);
}

// inv (ld kChunk, all kChunk columns written) = (I + L)⁻¹ for the strictly lower m×m L (ld kChunk)
// by forward substitution: row i = e_i − Σ_{j<i} L_ij·row j.
inline void invert_unit_lower(const float* L, int64_t m, float* inv) {
  static_assert(kChunk % kVec == 0, "rows are whole vectors");
  for (int64_t i = 0; i < m; ++i) {
    Vec a0[kChunkVecs], a1[kChunkVecs];
    for (int64_t c = 0; c < kChunkVecs; ++c) a0[c] = a1[c] = Vec(0.f);
    if (i > 0) inverse_rows<0>(L + i * kChunk, inv, i, a0, a1);
    for (int64_t c = 0; c < kChunkVecs; ++c) (a0[c] + a1[c]).store(inv + i * kChunk + c * kVec);
    inv[i * kChunk + i] = 1.f;
  }
}

// Gathers one chunk of q and k (l2-normalised if asked, q scaled) into w.kq and K̂ᵀ into w.kt.
template <typename T>
void gather_qk(const T* q, const T* k, int64_t qs, int64_t ks, int64_t m, int64_t K, bool l2norm,
               float eps, float scale, bool bf16_path, ChunkScratch& w) {
  bool finite = true;
  for (int64_t t = 0; t < m; ++t) {
    float* kt = w.kq.data() + t * K;
    float* qt = w.kq.data() + (m + t) * K;
    Vec qn(0.f), kn(0.f);
    for (int64_t i = 0; i < K; i += kVec) {
      const int64_t r = std::min(kVec, K - i);
      const Vec qi = load_f(q + t * qs + i, r), ki = load_f(k + t * ks + i, r);
      qi.store(qt + i, r);
      ki.store(kt + i, r);
      qn = at::vec::fmadd(qi, qi, qn);
      kn = at::vec::fmadd(ki, ki, kn);
    }
    const float q2 = at::vec::vec_reduce_all<float>(std::plus<Vec>(), qn);
    const float k2 = at::vec::vec_reduce_all<float>(std::plus<Vec>(), kn);
    // Σx² is NaN or inf when a value is (or when it overflows: the token path handles that too)
    finite = finite && std::isfinite(q2) && std::isfinite(k2);
    const float iq = (l2norm ? 1.f / std::sqrt(q2 + eps) : 1.f) * scale;
    const float ik = l2norm ? 1.f / std::sqrt(k2 + eps) : 1.f;
    w.fk[t] = ik;
    w.fq[t] = iq;
    if (bf16_path) {  // the inputs as bf16 (exact for bf16 inputs): normalised after the product
      round_rows(kt, K, 1, K, K, w.kq_raw.data() + t * K, K);
      round_rows(qt, K, 1, K, K, w.kq_raw.data() + (m + t) * K, K);
    }
    if (iq != 1.f) scale_row(qt, qt, iq, K);
    if (ik != 1.f) scale_row(kt, kt, ik, K);
  }
  w.qk_finite = finite;
  at::vec::transpose_mxn<float>(w.kq.data(), K, w.kt.data(), kChunk, m, K);  // K̂ᵀ
  if (bf16_path) {
    // Kᵀ in VNNI pairs is the [m, K/2] matrix of 32-bit pairs of the raw rows, transposed.
    at::vec::transpose_mxn<float>(reinterpret_cast<const float*>(w.kq_raw.data()), K / 2,
                                  reinterpret_cast<float*>(w.kt_rawp.data()), kChunk, m, K / 2);
    round_rows(w.kt.data(), kChunk, K, m, m + (m & 1), w.kt16.data(), kChunk);  // K̂ᵀ
  }
}

// The next chunk's rows, fetched while this chunk computes: token rows are a whole row of
// all heads apart (4–8 KB), which the hardware prefetchers do not follow, so loads stalled.
template <typename T>
struct NextRows {
  int64_t m = 0;  // rows to fetch (0: none)
  const T* v = nullptr;  // this v head's
  T* out = nullptr;  // this v head's output rows
  const T *q = nullptr, *k = nullptr, *beta = nullptr;  // set for the group's first v head only
  const float* g = nullptr;
  int64_t vs = 0, qs = 0, ks = 0, gs = 0, bs = 0, os = 0, K = 0, V = 0;
  // In a group's last chunk: the next group's state for this v head, st_row bytes per row of this
  // chunk (a short sequence's state is most of its memory traffic, and it starts cold).
  const char* st = nullptr;
  int64_t st_bytes = 0, st_row = 0;
};

// On x86 as inline asm: GCC 12 emitted no instruction for __builtin_prefetch in this file.
inline void prefetch_line(const void* p) {
#if defined(__x86_64__) || defined(__i386__)
  asm volatile("prefetcht0 %0" : : "m"(*static_cast<const char*>(p)));
#else
  __builtin_prefetch(p, 0, 3);
#endif
}

// The same with intent to write.
inline void prefetch_line_w(void* p) {
#if defined(__x86_64__) || defined(__i386__)
  asm volatile("prefetchw %0" : : "m"(*static_cast<char*>(p)));
#else
  __builtin_prefetch(p, 1, 3);
#endif
}

inline void prefetch_bytes(const void* p, int64_t n) {
  const char* c = static_cast<const char*>(p);
  for (int64_t b = 0; b < n; b += 64) prefetch_line(c + b);
}

template <typename T>
inline void prefetch_row(const NextRows<T>& n, int64_t i) {
  if (n.st && i * n.st_row < n.st_bytes)
    prefetch_bytes(n.st + i * n.st_row, std::min(n.st_row, n.st_bytes - i * n.st_row));
  if (i >= n.m) return;
  prefetch_bytes(n.v + i * n.vs, n.V * sizeof(T));
  for (int64_t b = 0; b < n.V * static_cast<int64_t>(sizeof(T)); b += 64)
    prefetch_line_w(reinterpret_cast<char*>(n.out + i * n.os) + b);
  if (!n.q) return;
  prefetch_bytes(n.q + i * n.qs, n.K * sizeof(T));
  prefetch_bytes(n.k + i * n.ks, n.K * sizeof(T));
  prefetch_line(n.g + i * n.gs);
  prefetch_line(n.beta + i * n.bs);
}

// One delta-rule step on an fp32 state S [K, V] in place, in the contract's order of operations:
// S ← e^g·S, δ = β·(v − Sᵀk̂), S ← S + k̂·δᵀ, o = Sᵀq̂ (q̂ carries the scale). Unlike step_head's
// o = e^g·Sᵀq̂ + δ·(k̂·q̂), o is read from the updated state, so an inf meets the same terms as in
// the token-by-token math and every result is NaN, +inf or −inf exactly where that math's is.
// (Row i of S at S + i·ld: ld = V for a state of its own, G·V in the blas path's side-by-side
// states.)
template <typename T>
void token_step(float* S, int64_t K, int64_t V, const float* q, const float* k, const T* v,
                float decay, float beta, float* o, int64_t ld) {
  const Vec vdecay(decay), vbeta(beta);
  for (int64_t v0 = 0; v0 < V; v0 += kVChunk) {
    const int64_t nv = std::min(kVChunk, V - v0);
    Vec sk[8], sq[8];  // (e^g·S)ᵀk̂, then S'ᵀq̂ of the columns (zero-filled)
    for (int64_t i = 0; i < K; ++i) {
      const float* row = S + i * ld + v0;
      const Vec ki(k[i]);
      for (int64_t j = 0; j * kVec < nv; ++j)
        sk[j] = at::vec::fmadd(vdecay * Vec::loadu(row + j * kVec, std::min(kVec, nv - j * kVec)), ki, sk[j]);
    }
    Vec delta[8];
    for (int64_t j = 0; j * kVec < nv; ++j)
      delta[j] = vbeta * (load_f(v + v0 + j * kVec, std::min(kVec, nv - j * kVec)) - sk[j]);
    for (int64_t i = 0; i < K; ++i) {
      float* row = S + i * ld + v0;
      const Vec ki(k[i]), qi(q[i]);
      for (int64_t j = 0; j * kVec < nv; ++j) {
        const int64_t r = std::min(kVec, nv - j * kVec);
        const Vec s = at::vec::fmadd(ki, delta[j], vdecay * Vec::loadu(row + j * kVec, r));
        s.store(row + j * kVec, r);
        sq[j] = at::vec::fmadd(s, qi, sq[j]);
      }
    }
    for (int64_t j = 0; j * kVec < nv; ++j) sq[j].store(o + v0 + j * kVec, std::min(kVec, nv - j * kVec));
  }
}

// Largest row sum of |x| over rows [0, m) of x (ld kChunk), row i summed over columns [0, i + d).
inline float max_abs_row_sum(const float* x, int64_t m, int64_t d) {
  float most = 0.f;
  for (int64_t i = 0; i < m; ++i) {
    Vec acc(0.f);
    for (int64_t j = 0; j < i + d; j += kVec)
      acc = acc + Vec::loadu(x + i * kChunk + j, std::min(kVec, i + d - j)).abs();
    const float sum = at::vec::vec_reduce_all<float>(std::plus<Vec>(), acc);
    most = std::isnan(sum) ? sum : std::max(most, sum);  // a NaN stays visible
  }
  return most;
}

// Chunks whose unit-lower-triangular system I + L has a condition estimate
// ‖I + L‖∞·‖(I + L)⁻¹‖∞ above this run token by token. The chunked form's error grows with the
// conditioning (the inverse, and Δ = U − W·S cancelling terms of size ‖(I + L)⁻¹‖), the token
// recurrence's does not. Measured on 1600 single 32-token chunks computed by the chunked form
// alone, score = max error / (2·the fp32 token recurrence's + 1 ulp·scale) (> 1 fails the
// policy), median/max per estimate bin; l2norm off: ‖k‖ ∈ [0.3, 1.41], keys around a common
// direction, β up to 1, g down to −1e-4:
//   estimate        <8        8-16      16-24     24-32     32-64     64-128
//   K = 8        .36/.75   .47/.83   .49/1.08  .58/1.26  .73/1.95  .95/2.27
//   K = 32       .39/.72   .42/1.10  .45/.90   .58/.94   .73/1.61  1.23/1.53
//   K = 128      .41/.73   .43/.65   .51/.79   .58/.79   .77/1.42  1.29/2.07
//   l2norm on    .43/1.00  .47/.60   .50/1.27  .67/.95   .58/1.22  -
// The normal regime (l2norm on, β ∈ (0, 1), model-like decays, random keys, K = V = 128, fp32 and
// bf16): estimate < 2.3 in all 480 chunks, score .38/1.06 (a 32-token chunk's worst element
// scatters that much; over a whole call it averages out). Up to 16 the scores are the normal
// regime's; beyond, the median climbs. So no normal chunk takes the slow path, and the
// ill-conditioned chunks that stay on the fast path keep the normal regime's margin.
constexpr float kMaxCondition = 16.f;

// The gates of one chunk of one v head and the masks built from them: w.graw (g), w.g (G, the
// inclusive cumsum), w.beta, w.L = strict_tril(diag(β)·K̂·K̂ᵀ ⊙ Γ), w.qk = tril(Q̂·K̂ᵀ ⊙ Γ) from
// w.raw, and w.run[j] = G_last − G_j at the end. Calls row(i) after row i's masks (the callers
// build their right-hand sides there, while the row is in cache). Returns whether the chunk's q,
// k, g and β are finite (a −∞ gate counts as finite: it is a reset).
template <typename T, typename RowFn>
bool chunk_masks(const float* g, int64_t gs, const T* betap, int64_t bs, int64_t m, ChunkScratch& w,
                 RowFn&& row) {
  float G = 0.f;
  bool finite = w.qk_finite;
  for (int64_t t = 0; t < m; ++t) {
    w.graw[t] = g[t * gs];
    G += w.graw[t];
    w.g[t] = G;
    w.beta[t] = static_cast<float>(betap[t * bs]);
    finite = finite && (std::isfinite(w.graw[t]) || w.graw[t] == -INFINITY) && std::isfinite(w.beta[t]);
  }
  // Γ_ij = exp(G_i − G_j) for j ≤ i, 0 above, built from run[j] = Σ_{j<s≤i} g_s: running sums
  // of consecutive gates. The difference of two cumulative sums would lose the small steps once
  // |G| is large, and is −∞ − (−∞) = NaN after a −∞ gate; run[] is exact there (and ≤ 0).
  float* run = w.run.data();
  for (int64_t i = 0; i < m; ++i) {
    const float* kk = w.raw.data() + i * kChunk;
    const float* qkr = w.raw.data() + (m + i) * kChunk;
    float* L = w.L.data() + i * kChunk;
    float* qk = w.qk.data() + i * kChunk;
    const Vec gi(w.graw[i]), bi(w.beta[i]);
    for (int64_t j = 0; j < i; j += kVec) {
      const int64_t r = std::min(kVec, i - j);
      (Vec::loadu(run + j, r) + gi).store(run + j, r);
    }
    run[i] = 0.f;
    for (int64_t j = 0; j <= i; j += kVec) {
      const int64_t r = std::min(kVec, i + 1 - j);
      const Vec gamma = Vec::loadu(run + j, r).exp();
      (bi * Vec::loadu(kk + j, r) * gamma).store(L + j, r);
      (Vec::loadu(qkr + j, r) * gamma).store(qk + j, r);
    }
    L[i] = 0.f;  // strictly lower: L has no diagonal
    std::fill(qk + i + 1, qk + m, 0.f);
    row(i);
  }
  return finite;
}

// Whether x[0, n) (row i at x + i·ld, V columns) holds a NaN or an infinity: x·0 is 0 for every
// finite x, NaN otherwise.
template <typename T>
inline bool any_nonfinite(const T* x, int64_t rows, int64_t V, int64_t ld) {
  Vec acc(0.f);
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < V; j += kVec)
      acc = at::vec::fmadd(load_f(x + i * ld + j, std::min(kVec, V - j)), Vec(0.f), acc);
  return at::vec::vec_reduce_all<float>(std::plus<Vec>(), acc) != 0.f;
}

// Whether one v head's chunk runs in the chunked form (else token by token): its inputs are
// finite, its state is (bad_state unset), and its system I + L is conditioned well enough,
// ‖I + L‖∞ (L: below the diagonal of rows 1..m−1) times ‖(I + L)⁻¹‖∞ (rows hold zeros above the
// diagonal) at most kMaxCondition; a NaN fails that test too. Leaves (I + L)⁻¹ in w.inv when it
// gets that far.
inline bool runs_chunked(bool finite, bool bad_state, int64_t m, ChunkScratch& w) {
  if (!finite || bad_state) return false;
  invert_unit_lower(w.L.data(), m, w.inv.data());
  return (1.f + max_abs_row_sum(w.L.data(), m, 0)) * max_abs_row_sum(w.inv.data(), m, 1) <= kMaxCondition;
}

// out rows [0, m) (stride os, as T) = src rows (V fp32 values, ld V).
template <typename T>
inline void store_rows(const float* src, int64_t m, int64_t V, T* out, int64_t os) {
  for (int64_t t = 0; t < m; ++t)
    for (int64_t j = 0; j < V; j += 2 * kVec) {
      const int64_t r = std::min(2 * kVec, V - j);
      const float* o = src + t * V + j;
      store2_f(out + t * os + j, Vec::loadu(o, std::min(r, kVec)),
               r > kVec ? Vec::loadu(o + kVec, r - kVec) : Vec(0.f), r);
    }
}

// The chunk of one v head token by token (token_step) on its fp32 state S (rows ld apart), with
// the gates chunk_masks left in w; the m output rows stored (stride os). Sets bad_state if the
// state is non-finite afterwards: once so, it stays so (0·NaN, NaN + x are NaN), and an
// ill-conditioned chunk's token steps can overflow it too.
template <typename T>
void chunk_token_by_token(float* S, int64_t ld, const T* v, int64_t vs, int64_t m, int64_t K,
                          int64_t V, T* out, int64_t os, ChunkScratch& w, uint8_t& bad_state) {
  const float* k = w.kq.data();
  const float* q = w.kq.data() + m * K;
  for (int64_t t = 0; t < m; ++t)
    token_step(S, K, V, q + t * K, k + t * K, v + t * vs, std::exp(w.graw[t]), w.beta[t],
               w.o.data() + t * V, ld);
  store_rows(w.o.data(), m, V, out, os);
  bad_state = bad_state || any_nonfinite(S, K, V, ld);
}

// One chunk of one v head: v, g, β of its m tokens (strides vs, gs, bs), its fp32 state Sf; needs
// w.kq, w.kt and w.raw (= [K̂; Q̂]·K̂ᵀ) of the chunk. Writes the m output rows (stride os).
// The chunk runs token by token (token_step) instead when
// - an input of it is NaN or ±inf (a −∞ gate aside: it is a reset, which the chunked form
//   computes exactly), or this head's state already holds one (`nonfinite_state`, set here): in
//   the chunked form the zeros of the inverse and of the masked Q·Kᵀ multiply the rows of later
//   tokens, and 0·NaN = 0·inf = NaN would reach earlier tokens' outputs;
// - its triangular system is ill-conditioned (kMaxCondition).
template <typename T>
void chunk_step(GemmPath path, const T* v, int64_t vs, const float* g, int64_t gs, const T* betap,
                int64_t bs, int64_t m, float* Sf, int64_t K, int64_t V, T* out, int64_t os,
                const NextRows<T>& next, ChunkScratch& w, uint8_t& nonfinite_state) {
  const int64_t KV = K + V;
  Vec v_nonfinite(0.f);  // stays 0 while every v·0 is 0, i.e. every v finite
  float* run = w.run.data();
  const float* k = w.kq.data();
  const float* q = w.kq.data() + m * K;
  bool finite = chunk_masks(g, gs, betap, bs, m, w, [&](int64_t i) {
    // right-hand sides [−diag(β·e^G)·K | diag(β)·V]
    const float eg = std::exp(w.g[i]);
    const Vec bi(w.beta[i]);
    float* rhs = w.rhs.data() + i * KV;
    scale_row(rhs, k + i * K, -w.beta[i] * eg, K);
    for (int64_t j = 0; j < V; j += kVec) {
      const int64_t r = std::min(kVec, V - j);
      const Vec vj = load_f(v + i * vs + j, r);
      v_nonfinite = at::vec::fmadd(vj, Vec(0.f), v_nonfinite);
      (bi * vj).store(rhs + K + j, r);
    }
    scale_row(w.qs.data() + i * K, q + i * K, eg, K);  // Q ⊙ e^G
    prefetch_row(next, i);
  });
  finite = finite && at::vec::vec_reduce_all<float>(std::plus<Vec>(), v_nonfinite) == 0.f;
  if (!runs_chunked(finite, nonfinite_state, m, w)) {
    chunk_token_by_token(Sf, V, v, vs, m, K, V, out, os, w, nonfinite_state);
    return;
  }
  float* x = w.x.data();  // [−W | U], then [−W | Δ]
  const bool bf16_path = path == GemmPath::kBrgemmBf16;
  const int64_t m2 = m + (m & 1);  // bf16 reduction dims are padded to even
  if (bf16_path) {  // the same products, each operand rounded to bf16 just before it
    round_rows(w.inv.data(), kChunk, m, m, m2, w.inv16.data(), kChunk);
    pack_vnni(w.rhs.data(), KV, m, KV, w.rhsp.data());
    gemm_bf16(m, KV, m2, w.inv16.data(), kChunk, w.rhsp.data(), KV, x, KV, false);
    round_rows(x, KV, m, K, K, w.w16.data(), K);
    pack_vnni(Sf, V, K, V, w.Sp.data());
    gemm_bf16(m, V, K, w.w16.data(), K, w.Sp.data(), V, x + K, KV, true);  // Δ = U − W·S
    round_rows(w.qs.data(), K, m, K, K, w.qs16.data(), K);
    gemm_bf16(m, V, K, w.qs16.data(), K, w.Sp.data(), V, w.o.data(), V, false);
    round_rows(w.qk.data(), kChunk, m, m, m2, w.qk16.data(), kChunk);
    pack_vnni(x + K, KV, m, V, w.dp.data());
    gemm_bf16(m, V, m2, w.qk16.data(), kChunk, w.dp.data(), V, w.o.data(), V, true);
  } else {
    gemm(path, m, KV, m, {w.inv.data(), kChunk}, {w.rhs.data(), KV}, x, KV, false);
    gemm(path, m, V, K, {x, KV}, {Sf, V}, x + K, KV, true);  // Δ = U − W·S
    gemm(path, m, V, K, {w.qs.data(), K}, {Sf, V}, w.o.data(), V, false);
    gemm(path, m, V, m, {w.qk.data(), kChunk}, {x + K, KV}, w.o.data(), V, true);
  }
  store_rows(w.o.data(), m, V, out, os);
  // S ← e^{G_last}·S + K̂ᵀ·(diag(e^{run})·Δ), run[i] = Σ_{i<s<m} g_s = G_last − G_i now
  scale_row(Sf, Sf, std::exp(w.g[m - 1]), K * V);
  if (bf16_path) {
    for (int64_t i = 0; i < m; ++i) run[i] = std::exp(run[i]);
    pack_vnni(x + K, KV, m, V, w.dp.data(), run);
    gemm_bf16(K, V, m2, w.kt16.data(), kChunk, w.dp.data(), V, Sf, V, true);
  } else {
    for (int64_t i = 0; i < m; ++i) scale_row(x + i * KV + K, x + i * KV + K, std::exp(run[i]), V);
    gemm(path, K, V, m, {w.kt.data(), kChunk}, {x + K, KV}, Sf, V, true);
  }
}

// c = a·b for lower-triangular m×m a and b (ld kChunk, b zero above its diagonal and in columns
// [m, kChunk)); all kChunk columns of c's m rows are written.
inline void lower_product(const float* a, const float* b, int64_t m, float* c) {
  for (int64_t i = 0; i < m; ++i) {
    Vec acc[kChunkVecs];
    for (int64_t j = 0; j < kChunkVecs; ++j) acc[j] = Vec(0.f);
    for (int64_t l = 0; l <= i; ++l) {
      const Vec ail(a[i * kChunk + l]);
      for (int64_t j = 0; j <= l / kVec; ++j)
        acc[j] = at::vec::fmadd(ail, Vec::loadu(b + l * kChunk + j * kVec), acc[j]);
    }
    for (int64_t j = 0; j < kChunkVecs; ++j) acc[j].store(c + i * kChunk + j * kVec);
  }
}

// ---- the blas path: one chunk of all the v heads of a group, in 3 + G BLAS calls --------------
//
// chunk_step's math regrouped so that the G heads sharing a k head share their products. With
// W_h = (I + L_h)⁻¹·diag(β_h·e^{G_h})·K̂, W_h·S_h = (I + L_h)⁻¹·diag(β_h·e^{G_h})·(K̂·S_h), so
//   R_h = diag(β_h)·(V_h − diag(e^{G_h})·K̂·S_h),   Δ_h = (I + L_h)⁻¹·R_h,
//   O_h = diag(e^{G_h})·Q̂·S_h + M_h·R_h,            M_h = (Q̂·K̂ᵀ ⊙ Γ_h)·(I + L_h)⁻¹,
//   S_h ← e^{G_last,h}·S_h + K̂ᵀ·diag(e^{G_last,h − G_h})·Δ_h.
// The heads' fp32 states sit side by side in w.S as one [K, G·V] matrix, so the products with
// them are one BLAS call each for all heads. Per chunk (row-major shapes; each call one sgemm_):
//   [K̂; Q̂]·K̂ᵀ                  [2m, K]·[K, m]       once (chunk_group, shared with brgemm)
//   P = [K̂; Q̂]·[S_1 | … | S_G]  [2m, K]·[K, G·V]     once
//   [Δ_h; M_h·R_h] = [(I + L_h)⁻¹; M_h]·R_h   [2m, m]·[m, V]   per head (R_h, M_h differ)
//   [S_1 | … | S_G] += K̂ᵀ·[D_1 | … | D_G]     [K, m]·[m, G·V]  once, β = 1
// 3 + G calls where chunk_step makes 1 + 5·G, and m²·K fewer multiply-adds per head (the inverse
// multiplies R_h [m, V], not [K | V]); M_h, a product of two triangles (m³/6), is ours. Which
// chunks run token by token is decided as in chunk_step, per head; such a head's columns of P are
// not used and its D columns are zero, so the shared update leaves its state as token_step left
// it (s + 0 = s, NaN and inf included: K̂ is finite whenever any head runs chunked).
template <typename T, typename NextOf>
void chunk_heads_blas(const T* v, int64_t vs, const float* g, int64_t gs, const T* betap,
                      int64_t bs, const std::array<int64_t, 3>& head_strides, int64_t heads,
                      int64_t m, int64_t K, int64_t V, T* out, int64_t os, NextOf&& next_of,
                      ChunkScratch& w) {
  const int64_t GV = heads * V;
  float *Sg = w.S.data(), *P = w.P.data(), *R = w.R.data(), *Y = w.Y.data();
  if (w.qk_finite) blas_gemm(2 * m, GV, K, w.kq.data(), K, Sg, GV, P, GV, false);
  bool any_chunked = false;
  for (int64_t h = 0; h < heads; ++h) {
    const T* vh = v + h * head_strides[0];
    T* oh = out + h * V;
    const NextRows<T> next = next_of(h);
    float* Rh = R + h * V;
    const float* Ph = P + h * V;
    Vec v_nonfinite(0.f);
    bool finite = chunk_masks(g + h * head_strides[1], gs, betap + h * head_strides[2], bs, m, w,
                              [&](int64_t i) {
      prefetch_row(next, i);
      const Vec bi(w.beta[i]), eg(std::exp(w.g[i]));
      for (int64_t j = 0; j < V; j += kVec) {
        const int64_t r = std::min(kVec, V - j);
        const Vec vj = load_f(vh + i * vs + j, r);
        v_nonfinite = at::vec::fmadd(vj, Vec(0.f), v_nonfinite);
        if (w.qk_finite)  // P is not computed otherwise (every head runs token by token)
          (bi * (vj - eg * Vec::loadu(Ph + i * GV + j, r))).store(Rh + i * GV + j, r);
      }
    });
    finite = finite && at::vec::vec_reduce_all<float>(std::plus<Vec>(), v_nonfinite) == 0.f;
    float* Yh = Y + h * V;
    if (!runs_chunked(finite, w.nonfinite_state[h], m, w)) {
      // token by token, this head's columns of S in place; its D columns zero
      chunk_token_by_token(Sg + h * V, GV, vh, vs, m, K, V, oh, os, w, w.nonfinite_state[h]);
      for (int64_t i = 0; i < m; ++i) std::fill_n(Yh + i * GV, V, 0.f);
      continue;
    }
    any_chunked = true;
    lower_product(w.qk.data(), w.inv.data(), m, w.inv.data() + m * kChunk);  // M_h below (I+L)⁻¹
    blas_gemm(2 * m, V, m, w.inv.data(), kChunk, Rh, GV, Yh, GV, false);
    // O_h = e^{G}·Q̂·S_h + M_h·R_h; then D_h = diag(e^{run})·Δ_h in place, run[i] = G_last − G_i
    for (int64_t t = 0; t < m; ++t) {
      const Vec eg(std::exp(w.g[t]));
      const float* qs_row = Ph + (m + t) * GV;
      const float* mr = Yh + (m + t) * GV;
      for (int64_t j = 0; j < V; j += 2 * kVec) {
        const int64_t r = std::min(2 * kVec, V - j), r0 = std::min(r, kVec);
        const Vec o0 = at::vec::fmadd(eg, Vec::loadu(qs_row + j, r0), Vec::loadu(mr + j, r0));
        const Vec o1 = r > kVec ? at::vec::fmadd(eg, Vec::loadu(qs_row + j + kVec, r - kVec),
                                                 Vec::loadu(mr + j + kVec, r - kVec))
                                : Vec(0.f);
        store2_f(oh + t * os + j, o0, o1, r);
      }
      scale_row(Yh + t * GV, Yh + t * GV, std::exp(w.run[t]), V);
    }
    const float decay = std::exp(w.g[m - 1]);
    for (int64_t i = 0; i < K; ++i) scale_row(Sg + i * GV + h * V, Sg + i * GV + h * V, decay, V);
  }
  if (any_chunked) blas_gemm(K, GV, m, w.kt.data(), kChunk, Y, GV, Sg, GV, true);
}

// A group's first rows, output rows, state and length: the one a thread runs, and the one it
// runs next (all null if none).
template <typename T, typename S>
struct Group {
  const T *q = nullptr, *k = nullptr, *v = nullptr, *beta = nullptr;
  const float* g = nullptr;
  T* out = nullptr;
  S* state = nullptr;
  int64_t len = 0;
};

// One sequence and one k head: the `heads` v heads h0, h0+1, ... that share it.
template <typename T, typename S>
void chunk_group(GemmPath path, const T* q, const T* k, const T* v, int64_t qs, int64_t ks,
                 int64_t vs, const float* g, int64_t gs, const T* betap, int64_t bs,
                 std::array<int64_t, 3> head_strides, int64_t heads, int64_t len, S* state, int64_t K, int64_t V, bool l2norm, float eps,
                 T* out, int64_t os, const Group<T, S>& after, ChunkScratch& w, bool write_back) {
  const float scale = 1.f / std::sqrt(static_cast<float>(K));
  const bool bf16_path = path == GemmPath::kBrgemmBf16;
  // An fp32 pool that gets the final state is updated in place; otherwise the group works on an
  // fp32 copy, stored back only when the final state is written (output_final_state). The blas
  // path always copies, into its side-by-side layout: head h's row i at w.S + i·G·V + h·V.
  const bool blas = path == GemmPath::kBlas;
  const bool copy = !std::is_same_v<S, float> || !write_back || blas;
  auto state_of = [&](int64_t h) -> float* {
    if constexpr (std::is_same_v<S, float>)
      if (!copy) return state + h * K * V;
    return w.S.data() + h * K * V;
  };
  // Row i of head h: in the pool at state + (h·K + i)·V, in the copy at w.S + copy_row(h, i).
  auto copy_row = [&](int64_t h, int64_t i) { return blas ? i * heads * V + h * V : (h * K + i) * V; };
  if (copy)
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t i = 0; i < K; ++i)
        for (int64_t j = 0; j < V; j += kVec) {
          const int64_t r = std::min(kVec, V - j);
          load_f(state + (h * K + i) * V + j, r).store(w.S.data() + copy_row(h, i) + j, r);
        }
  w.nonfinite_state.assign(heads, 0);  // a non-finite initial state is not looked for
  for (int64_t c0 = 0; c0 < len; c0 += kChunk) {
    const int64_t m = std::min(kChunk, len - c0);
    gather_qk(q + c0 * qs, k + c0 * ks, qs, ks, m, K, l2norm, eps, scale, bf16_path, w);
    if (bf16_path) {  // products of the inputs, then the row and column factors
      gemm_bf16(2 * m, m, K, w.kq_raw.data(), K, w.kt_rawp.data(), kChunk, w.raw.data(), kChunk,
                false);
      for (int64_t i = 0; i < 2 * m; ++i) {
        float* r = w.raw.data() + i * kChunk;
        const Vec fi(i < m ? w.fk[i] : w.fq[i - m]);
        for (int64_t j = 0; j < m; j += kVec) {
          const int64_t n = std::min(kVec, m - j);
          (fi * Vec::loadu(r + j, n) * Vec::loadu(w.fk.data() + j, n)).store(r + j, n);
        }
      }
    } else {
      gemm(path, 2 * m, m, K, {w.kq.data(), K}, {w.kt.data(), kChunk}, w.raw.data(), kChunk,
           false);
    }
    // The next chunk's rows: this group's, or in its last chunk the next group's first.
    const bool last = c0 + kChunk >= len;
    const int64_t c1 = last ? 0 : c0 + kChunk;
    const T *nq = last ? after.q : q, *nk = last ? after.k : k, *nv = last ? after.v : v;
    const T* nb = last ? after.beta : betap;
    const float* ng = last ? after.g : g;
    T* no = last ? after.out : out;
    NextRows<T> next{last ? (after.q ? std::min(kChunk, after.len) : 0) : std::min(kChunk, len - c1)};
    next.vs = vs, next.qs = qs, next.ks = ks, next.gs = gs, next.bs = bs, next.os = os, next.K = K, next.V = V;
    if (last && after.state) {
      next.st_bytes = K * V * static_cast<int64_t>(sizeof(S));
      next.st_row = (next.st_bytes / m + 63) / 64 * 64;
    }
    auto next_of = [&](int64_t h) {
      if (next.m > 0) {
        next.v = nv + c1 * vs + h * head_strides[0];
        next.out = no + c1 * os + h * V;
        if (h == 0) next.q = nq + c1 * qs, next.k = nk + c1 * ks, next.g = ng + c1 * gs, next.beta = nb + c1 * bs;
        else next.q = nullptr;
      }
      if (next.st_bytes) next.st = reinterpret_cast<const char*>(after.state + h * K * V);
      return next;
    };
    if (blas) {
      chunk_heads_blas<T>(v + c0 * vs, vs, g + c0 * gs, gs, betap + c0 * bs, bs, head_strides,
                          heads, m, K, V, out + c0 * os, os, next_of, w);
      continue;
    }
    for (int64_t h = 0; h < heads; ++h)
      chunk_step<T>(path, v + c0 * vs + h * head_strides[0], vs, g + c0 * gs + h * head_strides[1],
                    gs, betap + c0 * bs + h * head_strides[2], bs, m, state_of(h), K, V,
                    out + c0 * os + h * V, os, next_of(h), w, w.nonfinite_state[h]);
  }
  if (copy && write_back)
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t i = 0; i < K; ++i)
        for (int64_t j = 0; j < V; j += kVec) {
          const int64_t r = std::min(kVec, V - j);
          store_f(state + (h * K + i) * V + j, Vec::loadu(w.S.data() + copy_row(h, i) + j, r), r);
        }
}

Tensor chunk_gated_delta_rule(const Tensor& query, const Tensor& key, const Tensor& value,
                              const Tensor& g, const Tensor& beta, const Tensor& initial_state,
                              bool output_final_state, const std::optional<Tensor>& cu_seqlens_,
                              bool head_first, bool use_qk_l2norm_in_kernel,
                              const std::optional<Tensor>& initial_state_indices_, double eps,
                              const std::string& gemm_path) {
  const Tensor& cu_seqlens = required(cu_seqlens_, "cu_seqlens");
  const Tensor& initial_state_indices = required(initial_state_indices_, "initial_state_indices");
  const GemmPath path = parse_gemm_path(gemm_path);
  CHECK_ARG(!head_first, "head_first", "only head_first=False ([1, T, H, D]) is in the contract");
  check_cpu(query, "query");
  CHECK_ARG(query.dim() == 4 && query.size(0) == 1, "query", "expected shape [1, T, HK, K], got ",
            query.sizes());
  const int64_t T = query.size(1);
  const auto heads = check_heads(query, key, value, "query", "key", "value");
  const int64_t HK = heads[0], K = heads[1], HV = heads[2], V = heads[3];
  check_cpu(g, "g");
  check_dtype(g, at::kFloat, "g");
  check_shape(g, {1, T, HV}, "g");
  check_cpu(beta, "beta");
  CHECK_ARG(beta.scalar_type() == query.scalar_type(), "beta", "expected query's dtype ",
            query.scalar_type(), ", got ", beta.scalar_type());
  check_shape(beta, {1, T, HV}, "beta");
  const Tensor& state = initial_state;
  check_ssm_pool(state, HV, K, V, "initial_state");
  const auto sdt = state.scalar_type();
  const auto cu = offsets(cu_seqlens, T, "cu_seqlens");
  const int64_t N = static_cast<int64_t>(cu.size()) - 1;
  const auto slots = slot_plan(initial_state_indices, N, state.size(0), -1, "initial_state_indices");
  const int64_t G = HV / HK;
  CHECK_ARG(path != GemmPath::kBrgemmBf16 || K % 2 == 0, "query",
            "gemm_path \"brgemm_bf16\" needs an even head dim (VNNI pairs), got ", K);
  // The mode multiplies the raw q and k in bf16, exact only when they are bf16 already.
  CHECK_ARG(path != GemmPath::kBrgemmBf16 || query.scalar_type() == at::kBFloat16, "query",
            "gemm_path \"brgemm_bf16\" is for bf16 activations, got ", query.scalar_type());
  CHECK_ARG(path != GemmPath::kBrgemmBf16 || bf16_brgemm_available(), "gemm_path",
            "\"brgemm_bf16\" needs oneDNN's bf16 brgemm (AMX or AVX512-BF16), which this CPU "
            "or torch build does not offer");

  // Not zero-filled: every row is written below (a pass over the whole output cost ~2%).
  Tensor out = at::empty({1, T, HV, V}, query.options());
  DISPATCH_ACTIVATION(query.scalar_type(), "chunk_gated_delta_rule", [&] {
    using T_ = scalar_t;
    DISPATCH_ACTIVATION(sdt, "chunk_gated_delta_rule", [&] {
      using S = scalar_t;
      const T_ *qp = query.data_ptr<T_>(), *kp = key.data_ptr<T_>(), *vp = value.data_ptr<T_>();
      const T_* bp = beta.data_ptr<T_>();
      const float* gp = g.data_ptr<float>();
      S* sp = state.data_ptr<S>();
      T_* op = out.data_ptr<T_>();
      // Work items (sequence, k head), longest sequence first, handed out one at a time: a varlen
      // batch mixes lengths, and an even split by item count would leave one thread with the long
      // ones. A thread claims its next item before running the current one, so that it can fetch
      // the next item's first rows and state meanwhile (chunk_group's `after`).
      const int64_t n_items = N * HK;
      std::vector<int64_t> order(n_items);
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
        return cu[a / HK + 1] - cu[a / HK] > cu[b / HK + 1] - cu[b / HK];
      });
      std::atomic<int64_t> next_pos{0};
      // An item's first rows, output rows, state and length; empty for a pad or empty sequence.
      auto group_at = [&](int64_t item) {
        Group<T_, S> a;
        const int64_t i = item / HK, hk = item % HK, h = hk * G, t0 = cu[i];
        if (slots[i] < 0 || cu[i + 1] == t0) return a;
        a.q = qp + t0 * query.stride(1) + hk * query.stride(2);
        a.k = kp + t0 * key.stride(1) + hk * key.stride(2);
        a.v = vp + t0 * value.stride(1) + h * value.stride(2);
        a.g = gp + t0 * g.stride(1) + h * g.stride(2);
        a.beta = bp + t0 * beta.stride(1) + h * beta.stride(2);
        a.out = op + (t0 * HV + h) * V;
        a.state = sp + slots[i] * state.stride(0) + h * K * V;
        a.len = cu[i + 1] - t0;
        return a;
      };
      at::parallel_for(0, at::get_num_threads(), 1, [&](int64_t, int64_t) {
        int64_t pos = next_pos.fetch_add(1);
        if (pos >= n_items) return;
        ChunkScratch scratch(K, V, G, !std::is_same_v<S, float> || !output_final_state, path);
        for (int64_t pos1; pos < n_items; pos = pos1) {
          pos1 = next_pos.fetch_add(1);
          const int64_t item = order[pos], i = item / HK, h = item % HK * G;
          if (slots[i] < 0) {  // pad: zeros out, nothing read, state untouched
            for (int64_t t = cu[i]; t < cu[i + 1]; ++t) std::fill_n(op + (t * HV + h) * V, G * V, T_(0));
            continue;
          }
          const Group<T_, S> cur = group_at(item);
          if (cur.len == 0) continue;  // empty: state unchanged
          const Group<T_, S> after = pos1 < n_items ? group_at(order[pos1]) : Group<T_, S>{};
          chunk_group<T_, S>(path, cur.q, cur.k, cur.v, query.stride(1), key.stride(1),
                             value.stride(1), cur.g, g.stride(1), cur.beta, beta.stride(1),
                             {value.stride(2), g.stride(2), beta.stride(2)}, G, cur.len,
                             cur.state, K, V, use_qk_l2norm_in_kernel,
                             static_cast<float>(eps), cur.out, HV * V, after, scratch,
                             output_final_state);
        }
        gemm_release(path);
      });
    });
  });
  return out;
}


// ---- §7 speculative decode ---------------------------------------------------------------------
//
// Per (row, v head), one work item: the row's draft tokens run in order on an fp32 running state.
// The first step reads the resume slot, every step writes the running state and, rounded, the
// slot of its draft position (if any): the resume slot is read once and each stored state written
// once. No two items touch one row's head, and the slot plan (below) keeps rows' slots apart.

struct SpecRow {
  int64_t start = 0, length = 0, resume = -1;  // resume -1: a pad row (or one without tokens)
  std::vector<int64_t> stores;                  // per token: the slot it stores into, or -1
};

// SPEC §7's rules, with the reference's messages (reference/checks.py, spec_slot_plan).
std::vector<SpecRow> spec_plan(const Tensor& indices, const Tensor& accepted,
                               const std::vector<int64_t>& cu, int64_t n_slots) {
  const char* arg = "spec_state_indices";
  const int64_t B = indices.size(0), S = indices.size(1);
  CHECK_ARG(static_cast<int64_t>(cu.size()) == B + 1, "cu_seqlens", "expected ", B + 1,
            " offsets (B = ", B, " rows of ", arg, "), got ", cu.size());
  for (int64_t r = 0; r < B; ++r)
    CHECK_ARG(cu[r + 1] - cu[r] <= S, "cu_seqlens", "row ", r, " has ", cu[r + 1] - cu[r],
              " tokens, more than the ", S, " draft positions of ", arg);
  check_cpu(accepted, "num_accepted_tokens");
  check_dtype(accepted, at::kInt, "num_accepted_tokens");
  check_shape(accepted, {B}, "num_accepted_tokens");
  const auto acc = accepted.accessor<int32_t, 1>();
  const auto idx = indices.accessor<int32_t, 2>();
  for (int64_t r = 0; r < B; ++r) {
    CHECK_ARG(acc[r] >= 1 && acc[r] <= S, "num_accepted_tokens", acc[r], " at row ", r,
              " is outside [1, ", S, "]");
    for (int64_t t = 0; t < S; ++t)
      CHECK_ARG(idx[r][t] == -1 || (idx[r][t] >= 0 && idx[r][t] < n_slots), arg, "index ",
                idx[r][t], " at row ", r, ", position ", t, " is outside [0, ", n_slots,
                ") and is not the pad slot id -1");
  }
  std::vector<SpecRow> plan(B);
  std::vector<int64_t> owner(n_slots, -1), written(n_slots, -1);
  for (int64_t r = 0; r < B; ++r) {
    SpecRow& row = plan[r];
    row.start = cu[r];
    row.length = cu[r + 1] - cu[r];
    row.stores.assign(row.length, -1);
    const int64_t resume = idx[r][acc[r] - 1];
    if (resume == -1 || row.length == 0) continue;
    row.resume = resume;
    auto own = [&](int64_t s) {
      CHECK_ARG(owner[s] == -1 || owner[s] == r, arg, "slot ", s, " is used by rows ", owner[s],
                " and ", r);
      owner[s] = r;
    };
    own(resume);
    for (int64_t t = 0; t < row.length; ++t) {
      const int64_t s = idx[r][t];
      if (s == -1) continue;
      own(s);
      CHECK_ARG(written[s] == -1, arg, "slot ", s, " is written at positions ", written[s],
                " and ", t, " of row ", r);
      written[s] = t;
      row.stores[t] = s;
    }
  }
  return plan;
}

Tensor fused_sigmoid_gating_delta_rule_update_spec(
    const Tensor& A_log, const Tensor& dt_bias, const Tensor& q, const Tensor& k, const Tensor& v,
    const Tensor& a, const Tensor& b, const Tensor& state, const Tensor& spec_state_indices,
    const Tensor& num_accepted_tokens, const Tensor& cu_seqlens, bool use_qk_l2norm_in_kernel,
    double softplus_beta, double softplus_threshold) {
  check_cpu(q, "q");
  CHECK_ARG(q.dim() == 3, "q", "expected shape [T, HK, K], got ", q.sizes());
  const int64_t T = q.size(0);
  // (named copies, not a structured binding: lambdas below capture them)
  const StepArgs args =
      check_step_args(A_log, dt_bias, q, k, v, a, b, state, softplus_beta, /*tokens=*/true);
  const int64_t K = args.K, HV = args.HV, V = args.V, G = args.G;
  const std::vector<float>&A = args.A, &bias = args.bias;
  check_cpu(spec_state_indices, "spec_state_indices");
  check_dtype(spec_state_indices, at::kInt, "spec_state_indices");
  CHECK_ARG(spec_state_indices.dim() == 2, "spec_state_indices", "expected shape [B, S], got ",
            spec_state_indices.sizes());
  check_cpu(cu_seqlens, "cu_seqlens");
  check_dtype(cu_seqlens, at::kInt, "cu_seqlens");
  CHECK_ARG(cu_seqlens.dim() == 1 && cu_seqlens.numel() == spec_state_indices.size(0) + 1,
            "cu_seqlens", "expected ", spec_state_indices.size(0) + 1, " offsets (B = ",
            spec_state_indices.size(0), " rows of spec_state_indices), got shape ",
            cu_seqlens.sizes());
  const auto cu = offsets(cu_seqlens, T, "cu_seqlens");
  const auto plan = spec_plan(spec_state_indices, num_accepted_tokens, cu, state.size(0));
  const int64_t B = spec_state_indices.size(0);

  Tensor out = at::empty({T, HV, V}, q.options());
  const float sb = static_cast<float>(softplus_beta), thr = static_cast<float>(softplus_threshold);
  const float scale = 1.f / std::sqrt(static_cast<float>(K));
  DISPATCH_ACTIVATION(q.scalar_type(), "fused_sigmoid_gating_delta_rule_update_spec", [&] {
    using T_ = scalar_t;
    DISPATCH_ACTIVATION(a.scalar_type(), "fused_sigmoid_gating_delta_rule_update_spec", [&] {
      using TA = scalar_t;
      DISPATCH_ACTIVATION(state.scalar_type(), "fused_sigmoid_gating_delta_rule_update_spec", [&] {
        using S = scalar_t;
        const T_ *qp = q.data_ptr<T_>(), *kp = k.data_ptr<T_>(), *vp = v.data_ptr<T_>();
        const TA *ap = a.data_ptr<TA>(), *bp = b.data_ptr<TA>();
        S* sp = state.data_ptr<S>();
        T_* op = out.data_ptr<T_>();
        at::parallel_for(0, B * HV, 1, [&](int64_t begin, int64_t end) {
          std::vector<float> qf(K), kf(K), vf(V), of(V), work(K * V);
          for (int64_t item = begin; item < end; ++item) {
            const SpecRow& row = plan[item / HV];
            const int64_t h = item % HV, hk = h / G;
            if (row.resume < 0) {  // a pad row (or no tokens): zeros out, no state touched
              for (int64_t t = row.start; t < row.start + row.length; ++t)
                std::fill(op + (t * HV + h) * V, op + (t * HV + h + 1) * V, T_(0));
              continue;
            }
            auto slot = [&](int64_t s) { return s < 0 ? nullptr : sp + s * state.stride(0) + h * K * V; };
            for (int64_t i = 0; i < row.length; ++i) {
              const int64_t t = row.start + i;
              load_token(qp + t * q.stride(0) + hk * q.stride(1), kp + t * k.stride(0) + hk * k.stride(1),
                         vp + t * v.stride(0) + h * v.stride(1), K, V, use_qk_l2norm_in_kernel,
                         qf.data(), kf.data(), vf.data());
              const auto [decay, beta] = token_gates(
                  static_cast<float>(ap[t * a.stride(0) + h * a.stride(1)]),
                  static_cast<float>(bp[t * b.stride(0) + h * b.stride(1)]), A[h], bias[h], sb, thr);
              // From the resume slot first, then from the running state; stored if the
              // position has a slot.
              S* store = slot(row.stores[i]);
              auto step = [&](const auto* src) {
                using SI = std::remove_cv_t<std::remove_pointer_t<decltype(src)>>;
                if (store)
                  step_head<SI, S, true, true>(src, work.data(), store, K, V, qf.data(), kf.data(),
                                               vf.data(), decay, beta, scale, of.data());
                else
                  step_head<SI, S, true, false>(src, work.data(), nullptr, K, V, qf.data(),
                                                kf.data(), vf.data(), decay, beta, scale, of.data());
              };
              if (i == 0)
                step(static_cast<const S*>(slot(row.resume)));
              else
                step(static_cast<const float*>(work.data()));
              T_* o = op + (t * HV + h) * V;
              for (int64_t j = 0; j < V; ++j) o[j] = static_cast<T_>(of[j]);
            }
          }
        });
      });
    });
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(gdn_kernels, CPU, m) {
  m.impl("fused_gdn_gating", &fused_gdn_gating);
  m.impl("fused_sigmoid_gating_delta_rule_update", &fused_sigmoid_gating_delta_rule_update);
  m.impl("chunk_gated_delta_rule", &chunk_gated_delta_rule);
  m.impl("fused_sigmoid_gating_delta_rule_update_spec", &fused_sigmoid_gating_delta_rule_update_spec);
}

}  // namespace gdn_kernels
