// Causal conv1d kernels (SPEC §4–6): weight pack, prefill (fwd) and decode (update).
//
// fp32 arithmetic vectorised over channels with at::vec. Taps are read from the caller's weight
// (plain [D, W] or VNNI-packed) and converted per channel vector, so a call does no O(D·W)
// preparation. Activations are read token-major (channels contiguous). The conv state is read and
// written only through its strides, so SD, DS and any slot stride work and the caller's tensor
// metadata is never touched.
#include "common.h"

namespace gdn_kernels {
namespace {

constexpr int64_t kMaxWidth = 16;
constexpr int64_t kVnniBlock = 32;
constexpr int64_t kPackedWidth = 4;
// The packed-tap fast path loads kVec channels of one VNNI block at a time.
static_assert(kVnniBlock % kVec == 0, "a vector must not straddle VNNI blocks");
constexpr int64_t kChannelBlock = 1024;  // channels per work item: 2 KiB of bf16 per token row
constexpr int64_t kTokenTile = 64;       // tokens per prefill work item
constexpr int64_t kDecodeBlock = 1024;   // channels per decode work item (all rows)
constexpr int64_t kMinParallelWork = 4096;  // decode channel-rows worth waking a thread for
constexpr int64_t kPrefetch = 8;         // tokens ahead to prefetch in a prefill column
constexpr int64_t kPrefetchRows = 2;     // tokens ahead to prefetch in a token-major prefill tile

// The conv state pool: element (slot, channel, column) at base[slot*s0 + c*s1 + j*s2].
template <typename T>
struct Pool {
  T* base;
  int64_t n, state_len, s0, s1, s2;
  T* at(int64_t slot, int64_t c, int64_t j) const { return base + slot * s0 + c * s1 + j * s2; }
};

// VNNI-2 position of w[c, j]: blocks of 32 channels, pairs of taps innermost.
inline int64_t vnni_index(int64_t c, int64_t j) {
  return (((c / kVnniBlock) * (kPackedWidth / 2) + j / 2) * kVnniBlock + c % kVnniBlock) * 2 +
         j % 2;
}

// The taps and bias in the caller's layout, converted to fp32 one channel vector at a time.
template <typename T>
struct Weights {
  const T* w;
  int64_t D, W, s0, s1;
  bool packed;
  const T* bias;  // contiguous [D], or null

  // taps[j] = w[c .. c+m, j] for every j < W.
  void load(int64_t c, int64_t m, Vec* taps) const {
    if (m == kVec && packed) {  // 2·kVec elements: (w[c, 2k], w[c, 2k+1]) pairs
      for (int64_t k2 = 0; k2 < W / 2; ++k2) {
        const T* p = w + vnni_index(c, 2 * k2);
        std::tie(taps[2 * k2], taps[2 * k2 + 1]) =
            at::vec::deinterleave2(load_f(p), load_f(p + kVec));
      }
    } else if (m == kVec && W == 4 && s1 == 1 && s0 == 4) {  // plain row-major [D, 4]
      const T* p = w + c * 4;
      auto [e0, o0] = at::vec::deinterleave2(load_f(p), load_f(p + kVec));
      auto [e1, o1] = at::vec::deinterleave2(load_f(p + 2 * kVec), load_f(p + 3 * kVec));
      std::tie(taps[0], taps[2]) = at::vec::deinterleave2(e0, e1);
      std::tie(taps[1], taps[3]) = at::vec::deinterleave2(o0, o1);
    } else {  // any width, strides or a channel tail: gather
      for (int64_t j = 0; j < W; ++j) {
        alignas(64) float tmp[kVec] = {};
        for (int64_t i = 0; i < m; ++i)
          tmp[i] = static_cast<float>(packed ? w[vnni_index(c + i, j)] : w[(c + i) * s0 + j * s1]);
        taps[j] = Vec::loadu(tmp);
      }
    }
  }

  Vec load_bias(int64_t c, int64_t m) const { return bias ? load_f(bias + c, m) : Vec(0.f); }
};

void check_weight(const Tensor& weight, const char* arg) {
  check_cpu(weight, arg);
  check_activation_dtype(weight, arg);
  CHECK_ARG(weight.dim() == 2, arg, "expected a 2-D [D, W] weight, got shape ", weight.sizes());
}

void check_packable(const Tensor& weight, const char* arg) {
  CHECK_ARG(weight.size(1) == kPackedWidth, arg, "VNNI packing needs width ", kPackedWidth,
            ", got ", weight.size(1));
  CHECK_ARG(weight.size(0) % kVnniBlock == 0, arg, "VNNI packing needs D % ", kVnniBlock,
            " == 0, got D=", weight.size(0));
}

// Checks weight and bias against x; returns the bias made contiguous (undefined when absent).
Tensor check_weights(const Tensor& weight, const std::optional<Tensor>& bias, int64_t D,
                     at::ScalarType dtype, bool is_weight_packed) {
  check_weight(weight, "weight");
  CHECK_ARG(weight.scalar_type() == dtype, "weight", "expected x's dtype ", dtype, ", got ",
            weight.scalar_type());
  CHECK_ARG(weight.size(0) == D, "weight", "expected ", D, " channels (as x has), got ", weight.size(0));
  const int64_t W = weight.size(1);
  CHECK_ARG(W >= 2 && W <= kMaxWidth, "weight", "width must be in [2, ", kMaxWidth, "], got ", W);
  if (is_weight_packed) {
    check_packable(weight, "weight");
    CHECK_ARG(weight.is_contiguous(), "weight", "a packed weight must be contiguous");
  }
  if (!bias.has_value()) return Tensor();
  check_cpu(*bias, "bias");
  CHECK_ARG(bias->scalar_type() == dtype, "bias", "expected x's dtype ", dtype, ", got ",
            bias->scalar_type());
  check_shape(*bias, {D}, "bias");
  return bias->contiguous();
}

template <typename T>
Weights<T> make_weights(const Tensor& weight, const Tensor& bias, bool packed) {
  return Weights<T>{weight.data_ptr<T>(), weight.size(0), weight.size(1), weight.stride(0),
                    weight.stride(1), packed, bias.defined() ? bias.data_ptr<T>() : nullptr};
}

// Rank and memory checks of the pool, before anything reads its sizes.
void check_pool_tensor(const Tensor& s) {
  check_cpu(s, "conv_states");
  CHECK_ARG(s.dim() == 3, "conv_states", "expected shape [N, D, state_len], got ", s.sizes());
  // Rows run in parallel and shift their slot in place: slots sharing bytes would race.
  CHECK_ARG(at::has_internal_overlap(s) != at::MemOverlap::Yes, "conv_states",
            "elements overlap in memory (e.g. an expanded pool): slots must not share storage");
  const int64_t footprint = s.numel() == 0 ? 0 : 1 + (s.size(1) - 1) * s.stride(1) + (s.size(2) - 1) * s.stride(2);
  CHECK_ARG(s.size(0) <= 1 || s.stride(0) >= footprint, "conv_states", "slot stride ", s.stride(0),
            " is smaller than a slot's extent ", footprint, ": slots would share storage");
  // Inside a slot (which has_internal_overlap cannot always tell): with the channel and column
  // dims ordered by stride, the larger stride must step past the smaller dim's whole span.
  if (s.numel() > 0 && s.size(1) > 1 && s.size(2) > 1) {
    const bool channels_inner = s.stride(1) <= s.stride(2);
    const int64_t inner = channels_inner ? 1 : 2, outer = channels_inner ? 2 : 1;
    CHECK_ARG(s.stride(outer) >= 1 + (s.size(inner) - 1) * s.stride(inner), "conv_states",
              "elements of a slot overlap in memory: strides ", s.strides(), " for shape ",
              s.sizes());
  }
}

// The pool against x and the weight: dtype, channels and a history of W-1 columns.
void check_pool(const Tensor& s, int64_t D, int64_t W, at::ScalarType dtype) {
  check_pool_tensor(s);
  CHECK_ARG(s.scalar_type() == dtype, "conv_states", "expected x's dtype ", dtype, ", got ",
            s.scalar_type());
  CHECK_ARG(s.dim() == 3 && s.size(1) == D, "conv_states", "expected shape [N, ", D,
            ", state_len], got ", s.sizes());
  CHECK_ARG(s.size(2) >= W - 1, "conv_states", "state_len ", s.size(2),
            " is shorter than the history W-1 = ", W - 1);
}

template <typename T>
Pool<T> make_pool(const Tensor& s, int64_t D, int64_t W, at::ScalarType dtype) {
  check_pool(s, D, W, dtype);
  return Pool<T>{s.data_ptr<T>(), s.size(0), s.size(2), s.stride(0), s.stride(1), s.stride(2)};
}

// SiLU on the fp32 result: a few-ulp fast form for bf16/fp16 outputs (it vanishes in their
// rounding); an fp32 output keeps the accurate exp and division.
template <typename T>
inline Vec activate(const Vec& y, bool silu_on) {
  if (!silu_on) return y;
  if constexpr (std::is_same_v<T, float>) {  // σ from e = exp(−|y|) ≤ 1: no overflow, exact tails
    const Vec e = y.abs().neg().exp(), r = Vec(1.f) / (Vec(1.f) + e);
    return y * Vec::blendv(r, e * r, y < Vec(0.f));
  }
  return silu_for_rounding(y);
}

// bias + Σ_j taps[j]·h[j] over the window h[0..W−1] (h[W−1] the current token).
inline Vec dot_taps(const Vec& bias, const Vec* taps, const Vec* h, int64_t W) {
  Vec acc = bias;
  for (int64_t j = 0; j < W; ++j) acc = at::vec::fmadd(taps[j], h[j], acc);
  return acc;
}

struct Sequence {
  int64_t x_offset;  // element offset of token 0 (channel 0) in the token-major x
  int64_t out_offset;
  int64_t len, slot;  // slot −1: no state (pad, or no conv_states)
  bool init;
};

// ---- prefill ---------------------------------------------------------------------------------

// The width-4 column walk with everything in named registers (arrays would live on the stack).
// x and out point at the column's first channel; tokens t0..t1 of the sequence.
// kFull: m is a whole line (2·kVec), so the loop carries no tail handling.
template <typename T, bool kFull>
inline void fwd_column_w4(const T* x, int64_t xs, T* out, int64_t os, int64_t t0, int64_t t1,
                          int64_t m_, const Vec* taps0, const Vec* taps1, const Vec& b0,
                          const Vec& b1, const Vec* h0, const Vec* h1, bool silu_on) {
  const int64_t m = kFull ? 2 * kVec : m_;
  const Vec w00 = taps0[0], w01 = taps0[1], w02 = taps0[2], w03 = taps0[3];
  const Vec w10 = taps1[0], w11 = taps1[1], w12 = taps1[2], w13 = taps1[3];
  Vec a0 = h0[0], a1 = h0[1], a2 = h0[2], c0 = h1[0], c1 = h1[1], c2 = h1[2];
  for (int64_t t = t0; t < t1; ++t) {
    // The column's lines are a row apart: ask for later ones early (no effect on results).
    __builtin_prefetch(x + (t + kPrefetch) * xs);
    Vec a3, c3;
    load2_f(x + t * xs, m, a3, c3);
    Vec y0 = at::vec::fmadd(w03, a3, at::vec::fmadd(w02, a2, at::vec::fmadd(w01, a1, at::vec::fmadd(w00, a0, b0))));
    Vec y1 = at::vec::fmadd(w13, c3, at::vec::fmadd(w12, c2, at::vec::fmadd(w11, c1, at::vec::fmadd(w10, c0, b1))));
    store2_f(out + t * os, activate<T>(y0, silu_on), activate<T>(y1, silu_on), m);
    a0 = a1, a1 = a2, a2 = a3;
    c0 = c1, c1 = c2, c2 = c3;
  }
}

#if defined(CPU_CAPABILITY_AVX512) && defined(__AVX512BF16__)
// SiLU for the bf16 prefill, in 12 operations against silu_for_rounding's 17, at about 1/28 of
// bf16's unit roundoff (2^-8 = 3.9e-3) instead of a few fp32 ulps: the result is rounded to bf16
// right after, so the difference moves under 1% of outputs (those within 1.4e-4 of a rounding
// boundary) by one bf16 ulp. The harness's normwise tolerance absorbs that; the kernel tests'
// elementwise bound carries the 1.4e-4 explicitly (SILU_REL in tests/kernels/checks.py).
// σ(y) = r for y ≥ 0 and e·r otherwise, with e = exp(−|y|) = 2^t and r ≈ 1/(1+e):
// - −min(|y|, 150·ln 2) by one vrangeps (imm 0b1110: the smaller magnitude, sign set; a NaN y
//   stays NaN);
// - f = t − ⌊t⌋ ∈ [0, 1) by one vreduceps (round down), and 2^⌊t⌋ by vscalefps on t itself;
// - 2^f by a degree-3 minimax polynomial: relative error 7.5e-5;
// - r by vrcp14ps alone: relative error below 2^-14 = 6.1e-5.
// So σ, and the SiLU, are within 1.4e-4 relative (plus fp32 rounding).
inline Vec silu_bf16_out(const Vec& y) {
  const __m512 yv = y;
  const __m512 na = _mm512_range_ps(yv, _mm512_set1_ps(103.97207708f), 0x0E);
  const __m512 t = _mm512_mul_ps(na, _mm512_set1_ps(1.4426950408889634f));
  const __m512 f = _mm512_reduce_ps(t, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
  __m512 p = _mm512_set1_ps(0.07802452892065048f);
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0.22606714069843292f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0.6958335638046265f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0.9999251961708069f));
  return Vec(silu_from_exp2</*kNewton=*/false>(yv, p, t));
}
#endif

#if defined(CPU_CAPABILITY_AVX512) && defined(__AVX512BF16__)
// vpermt2w indices interleaving two rows of 32 bf16 into (a[i], b[i]) pairs: lanes 0–15, 16–31.
alignas(64) static const uint16_t kPairLo[32] = {0, 32, 1, 33, 2, 34, 3, 35, 4, 36, 5, 37, 6, 38, 7, 39,
                                                 8, 40, 9, 41, 10, 42, 11, 43, 12, 44, 13, 45, 14, 46, 15, 47};
alignas(64) static const uint16_t kPairHi[32] = {16, 48, 17, 49, 18, 50, 19, 51, 20, 52, 21, 53, 22, 54, 23, 55,
                                                 24, 56, 25, 57, 26, 58, 27, 59, 28, 60, 29, 61, 30, 62, 31, 63};

// The production prefill — bf16, VNNI-packed width-4 taps — on AVX512-BF16, for one work item:
// tokens t0..t1 of a sequence over channels c0..c0+n (n a multiple of 32, at most kChannelBlock).
// Token-major: each token's row of n channels is read and written as one contiguous run (one
// page, one prefetch stream), and the W−1 earlier rows are re-read from L1. Per 16 channels two
// vdpbf16ps against the packed pairs as stored, with the data pairs (x[t−3], x[t−2]) and
// (x[t−1], x[t]) interleaved by vpermt2w. hist[k] holds position k−3 (channels c0..c0+n).
// vdpbf16ps reads subnormal inputs as zero and flushes subnormal products and sums to zero
// (DAZ/FTZ, whatever MXCSR says). Where every nonzero tap, bias, history and x value is at least
// 2^-50 in magnitude, nothing is flushed: every operand and product (exact in fp32) is a multiple
// of 2^-114, and so is every partial sum, rounded or not (below 2^-90 it is exact; above, its ulp
// is at least 2^-113), so each is zero or normal. Anything smaller makes this return false (the
// outputs are then not final) and the caller redoes the item in fp32, which keeps subnormals. A
// model's data never comes near.
constexpr uint16_t kSmallBits = 0x2680;  // bf16 2^-50

// Lanes of 32 bf16 holding a nonzero value below 2^-50 in magnitude: |bits| − 1 < 0x2680 − 1,
// unsigned, with zero wrapping to 0xFFFF.
inline __m512i magnitude_less_one(__m512i v) {
  return _mm512_sub_epi16(_mm512_and_si512(v, _mm512_set1_epi16(0x7FFF)), _mm512_set1_epi16(1));
}
inline __mmask32 bf16_small(__m512i v) {
  return _mm512_cmplt_epu16_mask(magnitude_less_one(v), _mm512_set1_epi16(kSmallBits - 1));
}

inline bool any_bf16_small(const at::BFloat16* p, int64_t n) {  // n a multiple of 32
  __mmask32 small = 0;
  for (int64_t i = 0; i < n; i += 2 * kVec) small |= bf16_small(_mm512_loadu_si512(p + i));
  return small != 0;
}

inline bool fwd_tile_w4_dpbf16(const at::BFloat16* xseq, int64_t xs, at::BFloat16* oseq,
                               int64_t os, int64_t t0, int64_t t1, int64_t c0, int64_t n,
                               const at::BFloat16* packed, const at::BFloat16* bias,
                               const at::BFloat16* const* hist, bool silu_on) {
  const at::BFloat16* wb = packed + c0 * kPackedWidth;
  auto row = [&](int64_t pos) { return pos >= 0 ? xseq + pos * xs + c0 : hist[pos + 3]; };
  if (any_bf16_small(wb, n * kPackedWidth) || (bias && any_bf16_small(bias + c0, n))) return false;
  for (int64_t pos = t0 - 3; pos < t0; ++pos)  // the rows before t0 (each later row is checked as x[t])
    if (any_bf16_small(row(pos), n)) return false;
  alignas(64) float bias_f[kChannelBlock];
  for (int64_t i = 0; i < n; i += kVec)
    (bias ? load_f(bias + c0 + i) : Vec(0.f)).store(bias_f + i);
  const __m512i lo = _mm512_load_si512(kPairLo), hi = _mm512_load_si512(kPairHi);
  // The rows x[t] are checked in the loop as a running unsigned minimum of |bits| − 1 over lanes.
  __m512i least = _mm512_set1_epi16(-1);
  auto emit = [&](at::BFloat16* o, __m512 y0, __m512 y1) {
    if (silu_on)
      store2_f(o, silu_bf16_out(Vec(y0)), silu_bf16_out(Vec(y1)), 2 * kVec);
    else
      store2_f(o, Vec(y0), Vec(y1), 2 * kVec);
  };
  // The taps and bias of channels i..i+32 (loaded once per step, for one or two tokens).
  struct Taps {
    __m512bh w0, w1, w2, w3;
    __m512 b0, b1;
  };
  auto taps_at = [&](int64_t i) {
    const at::BFloat16* wi = wb + i * kPackedWidth;
    return Taps{(__m512bh)_mm512_loadu_si512(wi), (__m512bh)_mm512_loadu_si512(wi + 2 * kVec),
                (__m512bh)_mm512_loadu_si512(wi + 4 * kVec), (__m512bh)_mm512_loadu_si512(wi + 6 * kVec),
                _mm512_load_ps(bias_f + i), _mm512_load_ps(bias_f + i + kVec)};
  };
  // One output token over those 32 channels from its window rows r0..r3 (oldest first): two
  // vdpbf16ps per 16 channels, on the pairs (r0, r1) and (r2, r3).
  auto conv32 = [&](at::BFloat16* o, const Taps& w, __m512i r0, __m512i r1, __m512i r2, __m512i r3) {
    const __m512 y0 = _mm512_dpbf16_ps(_mm512_dpbf16_ps(w.b0, (__m512bh)_mm512_permutex2var_epi16(r0, lo, r1), w.w0),
                                       (__m512bh)_mm512_permutex2var_epi16(r2, lo, r3), w.w2);
    const __m512 y1 = _mm512_dpbf16_ps(_mm512_dpbf16_ps(w.b1, (__m512bh)_mm512_permutex2var_epi16(r0, hi, r1), w.w1),
                                       (__m512bh)_mm512_permutex2var_epi16(r2, hi, r3), w.w3);
    emit(o, y0, y1);
  };
  int64_t t = t0;
  // Token pairs: five rows, one load of the taps and of the bias serve two output rows; an odd
  // last token goes alone below.
  for (; t + 1 < t1; t += 2) {
    const at::BFloat16 *p0 = row(t - 3), *p1 = row(t - 2), *p2 = row(t - 1), *p3 = row(t),
                       *p4 = row(t + 1);
    at::BFloat16* o0 = oseq + t * os + c0;
    at::BFloat16* o1 = o0 + os;
    for (int64_t i = 0; i < n; i += 2 * kVec) {
      __builtin_prefetch(p3 + i + kPrefetchRows * xs);
      __builtin_prefetch(p4 + i + kPrefetchRows * xs);
      const __m512i a = _mm512_loadu_si512(p0 + i), b = _mm512_loadu_si512(p1 + i);
      const __m512i d = _mm512_loadu_si512(p2 + i), e = _mm512_loadu_si512(p3 + i);
      const __m512i g = _mm512_loadu_si512(p4 + i);
      least = _mm512_min_epu16(least, _mm512_min_epu16(magnitude_less_one(e), magnitude_less_one(g)));
      const Taps w = taps_at(i);
      conv32(o0 + i, w, a, b, d, e);
      conv32(o1 + i, w, b, d, e, g);
    }
  }
  for (; t < t1; ++t) {
    const at::BFloat16 *p0 = row(t - 3), *p1 = row(t - 2), *p2 = row(t - 1), *p3 = row(t);
    at::BFloat16* o = oseq + t * os + c0;
    for (int64_t i = 0; i < n; i += 2 * kVec) {
      __builtin_prefetch(p3 + i + kPrefetchRows * xs);  // the row kPrefetchRows tokens on
      const __m512i e = _mm512_loadu_si512(p3 + i);
      least = _mm512_min_epu16(least, magnitude_less_one(e));
      conv32(o + i, taps_at(i), _mm512_loadu_si512(p0 + i), _mm512_loadu_si512(p1 + i),
             _mm512_loadu_si512(p2 + i), e);
    }
  }
  return _mm512_cmplt_epu16_mask(least, _mm512_set1_epi16(kSmallBits - 1)) == 0;
}
#endif

// A work item is (sequence, tile of kTokenTile tokens, block of kChannelBlock channels). Within
// it, a column of 2·kVec channels (one cache line of bf16) walks down the tokens with its taps,
// bias and W−1 history in registers: each x element is loaded and converted once.
template <typename T, int kW>
void fwd_kernel(const T* x, int64_t xs, T* out, const std::vector<Sequence>& seqs,
                const Weights<T>& w, const std::optional<Pool<T>>& pool, bool silu_on) {
  const int64_t D = w.D, W = kW > 0 ? kW : w.W;
  const int64_t n_cb = (D + kChannelBlock - 1) / kChannelBlock;
  std::vector<std::pair<int64_t, int64_t>> tiles;  // (sequence, first token)
  for (size_t i = 0; i < seqs.size(); ++i)
    for (int64_t t0 = 0; t0 < seqs[i].len; t0 += kTokenTile) tiles.emplace_back(i, t0);

  // Phase 1: outputs. A sequence's first W−1 tokens take their history from the slot (or zeros).
  at::parallel_for(0, static_cast<int64_t>(tiles.size()) * n_cb, 1, [&](int64_t begin, int64_t end) {
    for (int64_t item = begin; item < end; ++item) {
      const auto [si, t0] = tiles[item / n_cb];
      const Sequence& s = seqs[si];
      const int64_t c0 = (item % n_cb) * kChannelBlock, c1 = std::min(c0 + kChannelBlock, D);
      const int64_t t1 = std::min(t0 + kTokenTile, s.len);
      const T* xseq = x + s.x_offset;
      T* oseq = out + s.out_offset;
#if defined(CPU_CAPABILITY_AVX512) && defined(__AVX512BF16__)
      if constexpr (std::is_same_v<T, at::BFloat16> && kW == 4) {
        if (w.packed && D % (2 * kVec) == 0) {
          const int64_t n = c1 - c0;
          alignas(64) T hbuf[3][kChannelBlock];
          const T* hist[3];
          for (int64_t k = 0; k < 3 && t0 + k < 3; ++k) {  // only a tile at the start reads them
            if (s.slot >= 0 && s.init && pool->s1 == 1) {
              hist[k] = pool->at(s.slot, c0, k);
            } else if (s.slot >= 0 && s.init) {
              for (int64_t c = 0; c < n; ++c) hbuf[k][c] = *pool->at(s.slot, c0 + c, k);
              hist[k] = hbuf[k];
            } else {
              std::fill(hbuf[k], hbuf[k] + n, T(0));
              hist[k] = hbuf[k];
            }
          }
          if (fwd_tile_w4_dpbf16(xseq, xs, oseq, D, t0, t1, c0, n, w.w, w.bias, hist, silu_on))
            continue;  // else a value below 2^-50: the fp32 columns below
        }
      }
#endif
      for (int64_t c = c0; c < c1; c += 2 * kVec) {
        const int64_t m = std::min(2 * kVec, c1 - c), m0 = std::min(kVec, m), m1 = m - m0;
        // Sized by the compile-time width: Vectorized zero-fills on construction.
        constexpr int64_t kN = kW > 0 ? kW : kMaxWidth;
        Vec taps0[kN], taps1[kN], h0[kN], h1[kN];
        w.load(c, m0, taps0);
        const Vec b0 = w.load_bias(c, m0);
        Vec b1(0.f);
        if (m1 > 0) {
          w.load(c + kVec, m1, taps1);
          b1 = w.load_bias(c + kVec, m1);
        }
        for (int64_t j = 0; j < W - 1; ++j) {  // window for token t0: positions t0−W+1 .. t0−1
          const int64_t pos = t0 - (W - 1) + j;
          if (pos >= 0) {
            load2_f(xseq + pos * xs + c, m, h0[j], h1[j]);
          } else if (s.slot >= 0 && s.init) {
            h0[j] = load_strided_f(pool->at(s.slot, c, W - 1 + pos), pool->s1, m0);
            h1[j] = m1 > 0 ? load_strided_f(pool->at(s.slot, c + kVec, W - 1 + pos), pool->s1, m1)
                           : Vec(0.f);
          } else {
            h0[j] = h1[j] = Vec(0.f);
          }
        }
        if constexpr (kW == 4) {
          auto column = m == 2 * kVec ? fwd_column_w4<T, true> : fwd_column_w4<T, false>;
          column(xseq + c, xs, oseq + c, D, t0, t1, m, taps0, taps1, b0, b1, h0, h1, silu_on);
        } else {
          for (int64_t t = t0; t < t1; ++t) {
            load2_f(xseq + t * xs + c, m, h0[W - 1], h1[W - 1]);
            const Vec y0 = activate<T>(dot_taps(b0, taps0, h0, W), silu_on);
            const Vec y1 = activate<T>(dot_taps(b1, taps1, h1, W), silu_on);
            store2_f(oseq + t * D + c, y0, y1, m);
            for (int64_t j = 0; j < W - 1; ++j) {
              h0[j] = h0[j + 1];
              h1[j] = h1[j + 1];
            }
          }
        }
      }
    }
  });
  if (!pool.has_value()) return;

  // Phase 2: each slot's first W−1 columns ← the last W−1 columns of [history, x_seq], moved as
  // raw elements. Column p reads column len + p ≥ p, so ascending p never reads what it already
  // overwrote.
  at::parallel_for(0, static_cast<int64_t>(seqs.size()) * n_cb, 1, [&](int64_t begin, int64_t end) {
    for (int64_t item = begin; item < end; ++item) {
      const Sequence& s = seqs[item / n_cb];
      if (s.slot < 0) continue;
      const int64_t c0 = (item % n_cb) * kChannelBlock, nc = std::min(kChannelBlock, D - c0);
      for (int64_t p = 0; p < W - 1; ++p) {
        const int64_t src = s.len + p;  // index into [history (W−1), x_seq (len)]
        T* dst = pool->at(s.slot, c0, p);
        if (src >= W - 1) {
          const T* xr = x + s.x_offset + (src - (W - 1)) * xs + c0;
          for (int64_t c = 0; c < nc; ++c) dst[c * pool->s1] = xr[c];
        } else if (s.init) {
          copy_strided(dst, pool->at(s.slot, c0, src), pool->s1, nc);
        } else {
          for (int64_t c = 0; c < nc; ++c) dst[c * pool->s1] = T(0);
        }
      }
    }
  });
}

Tensor causal_conv1d_fwd(const Tensor& x, const Tensor& weight, const std::optional<Tensor>& bias,
                         const std::optional<Tensor>& conv_states,
                         const std::optional<Tensor>& query_start_loc,
                         const std::optional<Tensor>& cache_indices,
                         const std::optional<Tensor>& has_initial_state, bool silu_activation,
                         int64_t pad_slot_id, bool is_weight_packed) {
  check_cpu(x, "x");
  check_activation_dtype(x, "x");
  const bool varlen = query_start_loc.has_value();
  if (varlen) {
    CHECK_ARG(x.dim() == 2, "x", "with query_start_loc expected a varlen [D, T], got shape ",
              x.sizes());
  } else {
    CHECK_ARG(x.dim() == 3, "x", "without query_start_loc expected a batch [B, D, L], got shape ",
              x.sizes());
  }
  const int64_t D = x.size(-2);
  const Tensor bias_c = check_weights(weight, bias, D, x.scalar_type(), is_weight_packed);
  // Every argument is checked before x is copied or the output allocated (both x's size).
  std::vector<int64_t> cu;
  if (varlen) cu = offsets(*query_start_loc, x.size(1), "query_start_loc");
  const int64_t B = varlen ? static_cast<int64_t>(cu.size()) - 1 : x.size(0);
  std::vector<int64_t> plan;
  Tensor init;
  if (!conv_states.has_value()) {
    CHECK_ARG(!cache_indices.has_value(), "cache_indices", "given without conv_states");
    CHECK_ARG(!has_initial_state.has_value(), "has_initial_state", "given without conv_states");
  } else {
    check_pool(*conv_states, D, weight.size(1), x.scalar_type());
    plan = slot_plan(cache_indices, B, conv_states->size(0), pad_slot_id, "cache_indices");
    if (has_initial_state.has_value()) {
      check_cpu(*has_initial_state, "has_initial_state");
      CHECK_ARG(has_initial_state->scalar_type() == at::kBool, "has_initial_state",
                "expected a bool tensor, got ", has_initial_state->scalar_type());
      check_shape(*has_initial_state, {B}, "has_initial_state");
      init = has_initial_state->contiguous();
    }
  }
  Tensor xt = x.transpose(-1, -2);  // token-major view: [T, D] or [B, L, D]
  if (xt.numel() > 0 && xt.stride(-1) != 1) xt = xt.contiguous();  // channels must be contiguous
  Tensor out_t = at::empty(xt.sizes(), x.options());  // token-major, like x's fast layout
  const int64_t xs = xt.stride(-2);

  std::vector<Sequence> seqs;
  if (varlen) {
    for (size_t i = 0; i + 1 < cu.size(); ++i)
      seqs.push_back({cu[i] * xs, cu[i] * D, cu[i + 1] - cu[i], -1, false});
  } else {
    for (int64_t b = 0; b < x.size(0); ++b)
      seqs.push_back({b * xt.stride(0), b * x.size(2) * D, x.size(2), -1, false});
  }
  if (conv_states.has_value()) {
    for (int64_t i = 0; i < B; ++i) {
      seqs[i].slot = plan[i];
      seqs[i].init = init.defined() && init.data_ptr<bool>()[i];
    }
  }
  DISPATCH_ACTIVATION(x.scalar_type(), "causal_conv1d_fwd", [&] {
    std::optional<Pool<scalar_t>> pool;
    if (conv_states.has_value())
      pool = make_pool<scalar_t>(*conv_states, D, weight.size(1), x.scalar_type());
    const auto w = make_weights<scalar_t>(weight, bias_c, is_weight_packed);
    auto run = w.W == 4 ? fwd_kernel<scalar_t, 4> : fwd_kernel<scalar_t, 0>;
    run(xt.data_ptr<scalar_t>(), xs, out_t.data_ptr<scalar_t>(), seqs, w, pool, silu_activation);
  });
  return out_t.transpose(-1, -2);
}

// ---- decode ----------------------------------------------------------------------------------

// Width-4 decode of one row over n channels of an SD slot (column j at s + j·col_stride, channels
// contiguous): window, output, and the shift of the history, with everything in registers.
// taps holds 4 fp32 vectors per kVec channels, bias one.
template <typename T>
inline void update_row_w4_sd(T* s, int64_t col_stride, const T* x, T* out, int64_t n,
                             const Vec* taps, const Vec* bias, bool silu_on) {
  T* s0 = s;
  T* s1 = s + col_stride;
  T* s2 = s + 2 * col_stride;
  for (int64_t c = 0; c < n; c += 2 * kVec) {
    const int64_t m = std::min(2 * kVec, n - c);
    const Vec* t = taps + (c / kVec) * 4;
    Vec a0, a1, a2, a3, b0, b1, b2, b3;
    load2_f(s0 + c, m, a0, b0);
    load2_f(s1 + c, m, a1, b1);
    load2_f(s2 + c, m, a2, b2);
    load2_f(x + c, m, a3, b3);
    const Vec* u = t + 4;  // taps of the second kVec channels
    const Vec y0 = at::vec::fmadd(t[3], a3, at::vec::fmadd(t[2], a2, at::vec::fmadd(t[1], a1, at::vec::fmadd(t[0], a0, bias[c / kVec]))));
    const Vec y1 = m > kVec ? at::vec::fmadd(u[3], b3, at::vec::fmadd(u[2], b2, at::vec::fmadd(u[1], b1, at::vec::fmadd(u[0], b0, bias[c / kVec + 1])))) : Vec(0.f);
    store2_f(out + c, activate<T>(y0, silu_on), activate<T>(y1, silu_on), m);
    copy_n(s0 + c, s1 + c, m);  // history shifts by one: raw moves, exact
    copy_n(s1 + c, s2 + c, m);
    copy_n(s2 + c, x + c, m);
  }
}

#if defined(CPU_CAPABILITY_AVX512) && defined(__AVX512BF16__)
// The taps of 16 channels from their packed (w[c, 2k], w[c, 2k+1]) pairs, exactly: a bf16 is the
// upper half of its fp32.
inline void unpack_tap_pair(__m512i pairs, Vec& even, Vec& odd) {
  even = Vec(_mm512_castsi512_ps(_mm512_slli_epi32(pairs, 16)));
  odd = Vec(_mm512_castsi512_ps(_mm512_and_si512(pairs, _mm512_set1_epi32(0xFFFF0000))));
}

// The production case — bf16, VNNI-packed width-4 weights, SD state — on AVX512-BF16: per 16
// channels two vdpbf16ps (each two fp32 FMAs of exact bf16 products) against the packed pairs
// (w[c, 2k], w[c, 2k+1]) as they are stored, with the data pairs (s0, s1) and (s2, x) interleaved by
// vpermt2w. No tap is converted to fp32. n is a multiple of 32 and c0 a multiple of 32.
// The caller has checked the taps and bias against 2^-50 (see fwd_tile_w4_dpbf16); a step whose
// data holds a smaller nonzero value is redone with fp32 FMAs.
inline void update_row_w4_sd_dpbf16(at::BFloat16* s, int64_t col_stride, const at::BFloat16* x,
                                    at::BFloat16* out, int64_t c0, int64_t n,
                                    const at::BFloat16* packed, const at::BFloat16* bias,
                                    bool silu_on) {
  const __m512i lo = _mm512_load_si512(kPairLo), hi = _mm512_load_si512(kPairHi);
  at::BFloat16* s0 = s;
  at::BFloat16* s1 = s + col_stride;
  at::BFloat16* s2 = s + 2 * col_stride;
  for (int64_t c = 0; c < n; c += 2 * kVec) {
    const __m512i a = _mm512_loadu_si512(s0 + c), b = _mm512_loadu_si512(s1 + c);
    const __m512i d = _mm512_loadu_si512(s2 + c), e = _mm512_loadu_si512(x + c);
    const at::BFloat16* wb = packed + ((c0 + c) / kVnniBlock) * kVnniBlock * kPackedWidth;
    Vec b0(0.f), b1(0.f);
    if (bias) load2_f(bias + c0 + c, 2 * kVec, b0, b1);
    const __m512i w0 = _mm512_loadu_si512(wb), w1 = _mm512_loadu_si512(wb + 2 * kVec);
    const __m512i w2 = _mm512_loadu_si512(wb + 4 * kVec), w3 = _mm512_loadu_si512(wb + 6 * kVec);
    __m512 y0 = _mm512_dpbf16_ps(b0, (__m512bh)_mm512_permutex2var_epi16(a, lo, b), (__m512bh)w0);
    __m512 y1 = _mm512_dpbf16_ps(b1, (__m512bh)_mm512_permutex2var_epi16(a, hi, b), (__m512bh)w1);
    y0 = _mm512_dpbf16_ps(y0, (__m512bh)_mm512_permutex2var_epi16(d, lo, e), (__m512bh)w2);
    y1 = _mm512_dpbf16_ps(y1, (__m512bh)_mm512_permutex2var_epi16(d, hi, e), (__m512bh)w3);
    const __m512i least = _mm512_min_epu16(_mm512_min_epu16(magnitude_less_one(a), magnitude_less_one(b)),
                                           _mm512_min_epu16(magnitude_less_one(d), magnitude_less_one(e)));
    if (_mm512_cmplt_epu16_mask(least, _mm512_set1_epi16(kSmallBits - 1))) {
      Vec t[8], h0[4], h1[4];  // taps 0..3 of the low 16 channels, then of the high 16
      unpack_tap_pair(w0, t[0], t[1]);
      unpack_tap_pair(w2, t[2], t[3]);
      unpack_tap_pair(w1, t[4], t[5]);
      unpack_tap_pair(w3, t[6], t[7]);
      load2_f(s0 + c, 2 * kVec, h0[0], h1[0]);
      load2_f(s1 + c, 2 * kVec, h0[1], h1[1]);
      load2_f(s2 + c, 2 * kVec, h0[2], h1[2]);
      load2_f(x + c, 2 * kVec, h0[3], h1[3]);
      y0 = dot_taps(b0, t, h0, 4);
      y1 = dot_taps(b1, t + 4, h1, 4);
    }
    store2_f(out + c, activate<at::BFloat16>(Vec(y0), silu_on), activate<at::BFloat16>(Vec(y1), silu_on),
             2 * kVec);
    _mm512_storeu_si512(s0 + c, b);  // the history shifts by one: raw moves, exact
    _mm512_storeu_si512(s1 + c, d);
    _mm512_storeu_si512(s2 + c, e);
  }
}

// Decode of bf16 rows with packed width-4 weights and an SD pool, at any batch: the taps go
// straight from the packed weight (a block's 8 KiB stay in L1) into dot products (see above), with
// no fp32 conversion of taps or data; parallel over (row, channel block). Returns false, having
// done nothing, when a tap or the bias is below 2^-50: the caller then takes the fp32 path.
bool update_kernel_dpbf16(const at::BFloat16* x, int64_t xs, at::BFloat16* out,
                          const std::vector<int64_t>& slots, const Weights<at::BFloat16>& w,
                          const Pool<at::BFloat16>& pool, bool silu_on) {
  const int64_t D = w.D, B = static_cast<int64_t>(slots.size());
  if (any_bf16_small(w.w, D * kPackedWidth) || (w.bias && any_bf16_small(w.bias, D)))
    return false;
  const int64_t n_cb = (D + kDecodeBlock - 1) / kDecodeBlock;
  const int64_t grain = std::max<int64_t>(1, kMinParallelWork / kDecodeBlock);
  at::parallel_for(0, B * n_cb, grain, [&](int64_t begin, int64_t end) {
    for (int64_t item = begin; item < end; ++item) {
      const int64_t r = item / n_cb, slot = slots[r];
      const int64_t c0 = (item % n_cb) * kDecodeBlock, c1 = std::min(c0 + kDecodeBlock, D);
      if (slot < 0) {
        std::fill(out + r * D + c0, out + r * D + c1, at::BFloat16(0));
        continue;
      }
      update_row_w4_sd_dpbf16(pool.at(slot, c0, 0), pool.s2, x + r * xs + c0, out + r * D + c0, c0,
                              c1 - c0, w.w, w.bias, silu_on);
    }
  });
  return true;
}
#endif

// One token per row: the window is the slot's first W−1 columns plus x; then those columns shift
// by one and take x, moved as raw elements (exact, no rounding). A work item is a block of
// channels for every row: its taps are converted once into an fp32 buffer that stays in L1, and
// each row then streams contiguous runs of its state, x and out.
template <typename T, int kW>
void update_kernel(const T* x, int64_t xs, T* out, const std::vector<int64_t>& slots,
                   const Weights<T>& w, const Pool<T>& pool, bool silu_on) {
  const int64_t D = w.D, W = kW > 0 ? kW : w.W, B = static_cast<int64_t>(slots.size());
  const int64_t n_cb = (D + kDecodeBlock - 1) / kDecodeBlock;
  constexpr int64_t kLanes = kDecodeBlock / kVec;
  // A thread's share should be worth waking it: at least kMinParallelWork channel-rows.
  const int64_t grain = std::max<int64_t>(1, kMinParallelWork / (std::max<int64_t>(B, 1) * kDecodeBlock));
  at::parallel_for(0, n_cb, grain, [&](int64_t begin, int64_t end) {
    constexpr int64_t kN = kW > 0 ? kW : kMaxWidth;  // Vectorized zero-fills on construction
    std::vector<Vec> taps(kLanes * kN), bias(kLanes);
    Vec h0[kN], h1[kN];
    for (int64_t cb = begin; cb < end; ++cb) {
      const int64_t c0 = cb * kDecodeBlock, c1 = std::min(c0 + kDecodeBlock, D);
      for (int64_t c = c0; c < c1; c += kVec) {
        const int64_t v = (c - c0) / kVec, m = std::min(kVec, c1 - c);
        w.load(c, m, &taps[v * kN]);
        bias[v] = w.load_bias(c, m);
      }
      for (int64_t r = 0; r < B; ++r) {
        const int64_t slot = slots[r];
        if (slot < 0) {  // pad row: a defined output, the pool untouched
          std::fill(out + r * D + c0, out + r * D + c1, T(0));
          continue;
        }
        if constexpr (kW == 4) {
          if (pool.s1 == 1) {  // SD: each history column is a contiguous run
            update_row_w4_sd(pool.at(slot, c0, 0), pool.s2, x + r * xs + c0, out + r * D + c0,
                             c1 - c0, taps.data(), bias.data(), silu_on);
            continue;
          }
        }
        for (int64_t c = c0; c < c1; c += 2 * kVec) {
          const int64_t v = (c - c0) / kVec, m = std::min(2 * kVec, c1 - c);
          for (int64_t j = 0; j < W - 1; ++j)
            load2_strided_f(pool.at(slot, c, j), pool.s1, m, h0[j], h1[j]);
          const T* xr = x + r * xs + c;
          load2_f(xr, m, h0[W - 1], h1[W - 1]);
          const Vec y0 = dot_taps(bias[v], &taps[v * kN], h0, W);
          const Vec y1 = m > kVec ? dot_taps(bias[v + 1], &taps[(v + 1) * kN], h1, W) : Vec(0.f);
          store2_f(out + r * D + c, activate<T>(y0, silu_on), activate<T>(y1, silu_on), m);
        }
        for (int64_t j = 0; j + 1 < W - 1; ++j)  // ascending: column j+1 is read before written
          copy_strided(pool.at(slot, c0, j), pool.at(slot, c0, j + 1), pool.s1, c1 - c0);
        copy_to_strided(pool.at(slot, c0, W - 2), pool.s1, x + r * xs + c0, c1 - c0);
      }
    }
  });
}

// Speculative: x [B, L, D]; history = columns a−1 .. a+W−3; the slot becomes
// old[a : a+state_len−L] followed by the L tokens.
template <typename T>
void spec_update_kernel(const T* x, int64_t xs_b, int64_t xs_t, T* out, int64_t L,
                        const std::vector<int64_t>& slots, const std::vector<int64_t>& accepted,
                        const Weights<T>& w, const Pool<T>& pool, bool silu_on) {
  const int64_t D = w.D, W = w.W, B = static_cast<int64_t>(slots.size()), S = pool.state_len;
  const int64_t n_cb = (D + kChannelBlock - 1) / kChannelBlock;
  at::parallel_for(0, B * n_cb, 1, [&](int64_t begin, int64_t end) {
    std::vector<Vec> old(S);
    Vec taps[kMaxWidth], h[kMaxWidth];  // once per thread: Vectorized zero-fills on construction
    for (int64_t item = begin; item < end; ++item) {
      const int64_t r = item / n_cb, slot = slots[r], a = accepted[r];
      const int64_t c0 = (item % n_cb) * kChannelBlock, nc = std::min(kChannelBlock, D - c0);
      const T* xr = x + r * xs_b;
      T* outr = out + r * L * D;
      for (int64_t c = c0; c < c0 + nc; c += kVec) {
        const int64_t m = std::min(kVec, c0 + nc - c);
        if (slot < 0) {
          for (int64_t t = 0; t < L; ++t) store_f(outr + t * D + c, Vec(0.f), m);
          continue;
        }
        w.load(c, m, taps);
        const Vec bias = w.load_bias(c, m);
        for (int64_t j = 0; j < S; ++j) old[j] = load_strided_f(pool.at(slot, c, j), pool.s1, m);
        for (int64_t j = 0; j < W - 1; ++j) h[j] = old[a - 1 + j];
        for (int64_t t = 0; t < L; ++t) {
          h[W - 1] = load_f(xr + t * xs_t + c, m);
          store_f(outr + t * D + c, activate<T>(dot_taps(bias, taps, h, W), silu_on), m);
          for (int64_t j = 0; j < W - 1; ++j) h[j] = h[j + 1];
        }
        for (int64_t j = 0; j < S - L; ++j) store_strided_f(pool.at(slot, c, j), pool.s1, old[a + j], m);
        for (int64_t t = 0; t < L; ++t)
          store_strided_f(pool.at(slot, c, S - L + t), pool.s1, load_f(xr + t * xs_t + c, m), m);
      }
    }
  });
}

Tensor causal_conv1d_update(const Tensor& x, const std::optional<Tensor>& conv_states_,
                            const Tensor& weight, const std::optional<Tensor>& bias,
                            bool silu_activation, const std::optional<Tensor>& num_accepted_tokens,
                            const std::optional<Tensor>& conv_state_indices, int64_t pad_slot_id,
                            bool is_weight_packed) {
  const Tensor& conv_states = required(conv_states_, "conv_states");
  check_cpu(x, "x");
  check_activation_dtype(x, "x");
  CHECK_ARG(x.dim() == 2 || x.dim() == 3, "x", "expected [B, D] or [B, L, D], got shape ",
            x.sizes());
  CHECK_ARG(x.numel() == 0 || x.size(-1) == 1 || x.stride(-1) == 1, "x",
            "channels must be contiguous (stride(-1) == 1), got strides ", x.strides());
  const int64_t B = x.size(0), D = x.size(-1);
  const Tensor bias_c = check_weights(weight, bias, D, x.scalar_type(), is_weight_packed);
  check_pool(conv_states, D, weight.size(1), x.scalar_type());
  auto slots = slot_plan(conv_state_indices, B, conv_states.size(0), pad_slot_id,
                         "conv_state_indices");
  // The speculative counts too are checked before the output (x's size) is allocated.
  std::vector<int64_t> accepted;
  if (x.dim() == 2) {
    CHECK_ARG(!num_accepted_tokens.has_value(), "num_accepted_tokens",
              "only goes with a 3-D [B, L, D] x (speculative decode)");
  } else {
    const int64_t L = x.size(1), state_len = conv_states.size(2), W = weight.size(1);
    CHECK_ARG(num_accepted_tokens.has_value(), "num_accepted_tokens",
              "is required with a 3-D [B, L, D] x");
    const Tensor& acc = *num_accepted_tokens;
    check_cpu(acc, "num_accepted_tokens");
    check_dtype(acc, at::kInt, "num_accepted_tokens");
    check_shape(acc, {B}, "num_accepted_tokens");
    CHECK_ARG(L >= 1, "x", "speculative decode needs L >= 1 tokens per row");
    CHECK_ARG(state_len >= L, "conv_states", "state_len ", state_len, " is shorter than L = ", L);
    const auto a = acc.accessor<int32_t, 1>();
    const int64_t hi = std::min(L, state_len - W + 2);
    accepted.resize(B);
    for (int64_t r = 0; r < B; ++r) {
      accepted[r] = a[r];
      if (slots[r] >= 0)
        CHECK_ARG(accepted[r] >= 1 && accepted[r] <= hi, "num_accepted_tokens", "row ", r, ": ",
                  accepted[r], " is outside [1, ", hi, "]");
    }
  }
  Tensor out = at::empty(x.sizes(), x.options());
#if defined(CPU_CAPABILITY_AVX512) && defined(__AVX512BF16__)
  if (x.dim() == 2 && x.scalar_type() == at::kBFloat16 && is_weight_packed &&
      D % (2 * kVec) == 0 && !num_accepted_tokens.has_value()) {
    const auto pool = make_pool<at::BFloat16>(conv_states, D, weight.size(1), x.scalar_type());
    const auto w = make_weights<at::BFloat16>(weight, bias_c, true);
    if (w.W == 4 && pool.s1 == 1 &&
        update_kernel_dpbf16(x.data_ptr<at::BFloat16>(), x.stride(0), out.data_ptr<at::BFloat16>(),
                             slots, w, pool, silu_activation))
      return out;
  }
#endif
  DISPATCH_ACTIVATION(x.scalar_type(), "causal_conv1d_update", [&] {
    const Pool<scalar_t> pool = make_pool<scalar_t>(conv_states, D, weight.size(1), x.scalar_type());
    const auto w = make_weights<scalar_t>(weight, bias_c, is_weight_packed);
    if (x.dim() == 2) {
      auto run = w.W == 4 ? update_kernel<scalar_t, 4> : update_kernel<scalar_t, 0>;
      run(x.data_ptr<scalar_t>(), x.stride(0), out.data_ptr<scalar_t>(), slots, w, pool,
          silu_activation);
      return;
    }
    const int64_t L = x.size(1);
    spec_update_kernel<scalar_t>(x.data_ptr<scalar_t>(), x.stride(0), x.stride(1),
                                 out.data_ptr<scalar_t>(), L, slots, accepted, w, pool,
                                 silu_activation);
  });
  return out;
}

// ---- pack ------------------------------------------------------------------------------------

Tensor causal_conv1d_weight_pack(const Tensor& weight) {
  check_weight(weight, "weight");
  check_packable(weight, "weight");
  const Tensor w = weight.contiguous();
  Tensor packed = at::empty_like(w);
  DISPATCH_ACTIVATION(w.scalar_type(), "causal_conv1d_weight_pack", [&] {
    const scalar_t* src = w.data_ptr<scalar_t>();
    scalar_t* dst = packed.data_ptr<scalar_t>();
    at::parallel_for(0, w.size(0), 4096, [&](int64_t begin, int64_t end) {
      for (int64_t c = begin; c < end; ++c)
        for (int64_t j = 0; j < kPackedWidth; ++j) dst[vnni_index(c, j)] = src[c * kPackedWidth + j];
    });
  });
  return packed;
}

}  // namespace

TORCH_LIBRARY_IMPL(gdn_kernels, CPU, m) {
  m.impl("causal_conv1d_weight_pack", &causal_conv1d_weight_pack);
  m.impl("causal_conv1d_fwd", &causal_conv1d_fwd);
  m.impl("causal_conv1d_update", &causal_conv1d_update);
}

}  // namespace gdn_kernels
