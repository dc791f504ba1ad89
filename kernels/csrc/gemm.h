// One small GEMM dispatch layer with three paths, chosen at run time so one process tests them all:
//   brgemm — at::native::cpublas::brgemm (oneDNN ukernel: AMX tiles on Sapphire Rapids and later,
//            AVX-512 elsewhere), fp32 × fp32 → fp32, no VNNI packing needed in fp32;
//   blas   — at::native::cpublas::gemm, i.e. the BLAS sgemm (MKL/OpenBLAS) ATen links. Its fp32
//            entry is not exported to extensions, so the path reaches it the way ATen itself does:
//            at::mm_out / at::mm on views of the buffers (which call cpublas::gemm).
//   brgemm_bf16 — brgemm with bf16 operands (B packed in VNNI pairs) and fp32 accumulation: the
//            caller rounds its operands (see gdn.cpp); everything else stays fp32.
// Every call is row-major: C[M, N] (+)= A[M, K] · B[K, N].
#pragma once

#include <ATen/native/CPUBlas.h>

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

// C (ldc) (+)= A · B.
inline void gemm(GemmPath path, int64_t M, int64_t N, int64_t K, Mat A, Mat B, float* C,
                 int64_t ldc, bool accumulate) {
  if (M == 0 || N == 0) return;
  if (K == 0) {
    if (!accumulate)
      for (int64_t i = 0; i < M; ++i) std::fill(C + i * ldc, C + i * ldc + N, 0.f);
    return;
  }
  if (path == GemmPath::kBlas) {
    auto view = [](const Mat& X, int64_t rows, int64_t cols) {
      return at::from_blob(const_cast<float*>(X.p), {rows, cols}, {X.ld, 1}, at::kFloat);
    };
    Tensor c = at::from_blob(C, {M, N}, {ldc, 1}, at::kFloat);
    if (accumulate)  // a product, then an add: addmm_out in place onto C was up to 4× less
      c.add_(at::mm(view(A, M, K), view(B, K, N)));  // accurate for one-row products
    else
      at::mm_out(c, view(A, M, K), view(B, K, N));
    return;
  }
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
