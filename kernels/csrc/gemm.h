// One small GEMM dispatch layer with three paths, chosen at run time so one process tests them all:
//   brgemm — at::native::cpublas::brgemm (oneDNN ukernel: AMX tiles on Sapphire Rapids and later,
//            AVX-512 elsewhere), fp32 × fp32 → fp32, no VNNI packing needed in fp32;
//   blas   — the BLAS library's sgemm through the reference (Fortran) interface, sgemm_, which
//            MKL, OpenBLAS, BLIS and Arm Performance Libraries all export and torch's CPU builds
//            carry: the entry an Arm build would use. It is declared weak, so a torch build that
//            does not export it loads anyway and reaches the same sgemm through at::mm_out on
//            views of the buffers (ATen's own route, one dispatcher call per product: ~17% of a
//            chunk's time at 11 products per chunk, measured). KERNELS_BLAS=aten in the
//            environment forces that route (so that it stays tested where sgemm_ is exported).
//   brgemm_bf16 — brgemm with bf16 operands (B packed in VNNI pairs) and fp32 accumulation: the
//            caller rounds its operands (see gdn.cpp); everything else stays fp32.
// Every call is row-major: C[M, N] (+)= A[M, K] · B[K, N].
#pragma once

#include <ATen/native/CPUBlas.h>

#include <cstdlib>
#include <string>

#include "common.h"

namespace gdn_kernels {

enum class GemmPath { kBrgemm, kBlas, kBrgemmBf16 };

inline GemmPath parse_gemm_path(const std::string& s) {
  if (s == "brgemm") return GemmPath::kBrgemm;
  if (s == "blas") return GemmPath::kBlas;
  if (s == "brgemm_bf16") return GemmPath::kBrgemmBf16;
  TORCH_CHECK(false, "gemm_path: expected \"brgemm\", \"blas\" or \"brgemm_bf16\", got \"", s, "\"");
}

// A row-major [rows, cols] matrix with leading dimension ld.
struct Mat {
  const float* p;
  int64_t ld;
};

}  // namespace gdn_kernels

// The reference BLAS interface (column-major, LP64 integers, every argument by pointer).
extern "C" void sgemm_(const char* transa, const char* transb, const int* m, const int* n,
                       const int* k, const float* alpha, const float* a, const int* lda,
                       const float* b, const int* ldb, const float* beta, float* c, const int* ldc)
    __attribute__((weak));

namespace gdn_kernels {

// Whether products go to sgemm_ (else through ATen), decided once per process.
inline bool use_sgemm() {
  static const bool use = [] {
    const char* forced = std::getenv("KERNELS_BLAS");
    return sgemm_ != nullptr && !(forced && std::string(forced) == "aten");
  }();
  return use;
}

// An empty product: C [M, N] is left (accumulate) or zeroed when there is nothing to sum. True if
// there was nothing to compute.
inline bool empty_product(int64_t M, int64_t N, int64_t K, float* C, int64_t ldc, bool accumulate) {
  if (K == 0 && !accumulate)
    for (int64_t i = 0; i < M; ++i) std::fill(C + i * ldc, C + i * ldc + N, 0.f);
  return M == 0 || N == 0 || K == 0;
}

// Row-major C [M, N] (ldc) (+)= A [M, K] (lda) · B [K, N] (ldb) through the BLAS library. In
// column-major terms that is Cᵀ = Bᵀ·Aᵀ, i.e. sgemm_("N", "N", N, M, K, B, A, C). With
// accumulate, β = 1: C is read and the product added in the same pass.
inline void blas_gemm(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
                      int64_t ldb, float* C, int64_t ldc, bool accumulate) {
  if (empty_product(M, N, K, C, ldc, accumulate)) return;
  if (use_sgemm()) {
    const int m = static_cast<int>(N), n = static_cast<int>(M), k = static_cast<int>(K);
    const int la = static_cast<int>(ldb), lb = static_cast<int>(lda), lc = static_cast<int>(ldc);
    const float one = 1.f, beta = accumulate ? 1.f : 0.f;
    sgemm_("N", "N", &m, &n, &k, &one, B, &la, A, &lb, &beta, C, &lc);
    return;
  }
  auto view = [](const float* X, int64_t rows, int64_t cols, int64_t ld) {
    return at::from_blob(const_cast<float*>(X), {rows, cols}, {ld, 1}, at::kFloat);
  };
  Tensor c = at::from_blob(C, {M, N}, {ldc, 1}, at::kFloat);
  if (accumulate)  // a product, then an add: addmm_out in place onto C was up to 4× less
    c.add_(at::mm(view(A, M, K, lda), view(B, K, N, ldb)));  // accurate for one-row products
  else
    at::mm_out(c, view(A, M, K, lda), view(B, K, N, ldb));
}

// C (ldc) (+)= A · B.
inline void gemm(GemmPath path, int64_t M, int64_t N, int64_t K, Mat A, Mat B, float* C,
                 int64_t ldc, bool accumulate) {
  if (path == GemmPath::kBlas) return blas_gemm(M, N, K, A.p, A.ld, B.p, B.ld, C, ldc, accumulate);
  if (empty_product(M, N, K, C, ldc, accumulate)) return;
  at::native::cpublas::brgemm(M, N, K, A.ld, B.ld, ldc, accumulate, A.p, B.p, C, false);
}

using bf16 = at::BFloat16;

// C (ldc) (+)= A · B with A [M, K] bf16 row-major and B in VNNI pairs: element (k, n) at
// B[(k / 2) · 2·ldb + 2·n + k % 2]. K must be even (callers pad with a zero row/column).
inline void gemm_bf16(int64_t M, int64_t N, int64_t K, const bf16* A, int64_t lda, const bf16* B,
                      int64_t ldb, float* C, int64_t ldc, bool accumulate) {
  if (M == 0 || N == 0) return;
  at::native::cpublas::brgemm(M, N, K, lda, ldb, ldc, accumulate, A, B, C, true);
}

// Whether this CPU and torch build run oneDNN's bf16 brgemm with VNNI-packed B (ATen refuses it
// unless its ukernel is enabled and the CPU has AMX or AVX512-BF16). Probed once with a 1x2x2
// product, on the calling thread, so that the op can raise an error naming gemm_path instead of
// failing inside its parallel region.
inline bool bf16_brgemm_available() {
  static const bool available = [] {
    try {
      const bf16 a[2] = {bf16(1.0f), bf16(1.0f)}, b[4] = {bf16(1.0f), bf16(1.0f), bf16(1.0f), bf16(1.0f)};
      float c[2] = {0.0f, 0.0f};
      at::native::cpublas::brgemm(1, 2, 2, 2, 2, 2, false, a, b, c, true);
      at::native::cpublas::brgemm_release(true);
      return c[0] == 2.0f && c[1] == 2.0f;
    } catch (const std::exception&) {
      return false;
    }
  }();
  return available;
}

inline void gemm_release(GemmPath path) {
  if (path == GemmPath::kBrgemm) at::native::cpublas::brgemm_release(false);
  if (path == GemmPath::kBrgemmBf16) at::native::cpublas::brgemm_release(true);
}

}  // namespace gdn_kernels
