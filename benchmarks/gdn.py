"""Gated-delta-net kernels at Qwen3-Next shapes (HK=16, HV=32, K=V=128, bf16 activations, fp32
state): ours against plain PyTorch in the same precision (the reference run in fp32) and against
vLLM's CPU kernels when installed. Decode also reports the achieved state bandwidth (bytes read +
written per second) next to the machine's copy bandwidth; prefill the achieved GFLOP/s of the
chunked algorithm (prefill_flops) next to the machine's fp32 and bf16 matrix-product rates.

    python -m benchmarks.gdn                  # every section
    python -m benchmarks.gdn prefill          # some: decode, spec, prefill, linearity
"""

from __future__ import annotations

import sys

import torch

import cases
import reference as R
from harness import backends
from benchmarks.common import compare, contenders, matmul_rates, write_report

SHAPE = dict(HK=16, HV=32, K=128, V=128)
# The case descriptions' axes for SHAPE (HV = G·HK), in the production precisions.
HEADS = dict(HK=16, G=2, K=128, V=128, dtype="bf16", state_dtype="fp32")
MIXED = [2048, 1024, 1024, 128, 64, 32]   # a varlen prefill batch of uneven prompts
NAMES = ("A_log", "dt_bias", "q", "k", "v", "a", "b", "state", "state_indices")
CHUNK = 32  # our prefill's chunk (kChunk, kernels/csrc/gdn.cpp)
# Matrix products timed beside each prefill row (M, N, K of C[M, N] = A[M, K]·B[K, N]): the
# brgemm path's per-chunk shapes inv·[K|V], W·S and Q·S, Kᵀ·Δ; the blas path's [K̂; Q̂]·[S_1 | S_2]
# (both v heads of a k head at once); then 128³ and a large one (512³: a bf16 product on a CPU
# without AVX512-BF16 runs at ~1 GFLOP/s, so larger ones take seconds per call).
GV = SHAPE["HV"] // SHAPE["HK"] * SHAPE["V"]
MM_SHAPES = [(CHUNK, SHAPE["K"] + SHAPE["V"], CHUNK), (CHUNK, SHAPE["V"], SHAPE["K"]),
             (SHAPE["K"], SHAPE["V"], CHUNK), (2 * CHUNK, GV, SHAPE["K"]), (128, 128, 128),
             (512, 512, 512)]
PREFILL = ("query", "key", "value", "g", "beta", "initial_state", "output_final_state", "cu_seqlens",
           "head_first", "use_qk_l2norm_in_kernel", "initial_state_indices")


def decode_args(B: int) -> dict:
    """Decode kwargs for B rows, slot b for row b."""
    return cases.build("fused_sigmoid_gating_delta_rule_update", dict(B=B, **HEADS, seed=B))


def spec_args(B: int, S: int) -> dict:
    """Speculative-decode kwargs: B rows of S draft tokens resuming from position S // 2, each row
    with S slots of its own."""
    return cases.build("fused_sigmoid_gating_delta_rule_update_spec",
                       dict(B=B, S=S, accepted=[S // 2 + 1] * B, **HEADS, seed=B * S))


def prefill_args(lengths: list[int]) -> dict:
    """Varlen prefill kwargs, slot i for sequence i."""
    return cases.build("chunk_gated_delta_rule", dict(lengths=lengths, **HEADS, seed=sum(lengths)))


def prefill_flops(T: int, HK: int, HV: int, K: int, V: int, m: int = CHUNK) -> float:
    """FLOPs (2 per multiply-add) of the chunked prefill over T tokens in chunks of m, counting
    only its matrix products; the same count divides every implementation's time, whatever chunk
    or algorithm it runs. Per chunk:
      per k head  K̂·K̂ᵀ and Q̂·K̂ᵀ                     2 · 2m²K          (one [K̂; Q̂]·K̂ᵀ in ours)
      per v head  (I + L)⁻¹, unit lower triangular    2 · m³/6
                  inv·[K | V]   (W, U)                2 · m²(K + V)
                  W·S, Q·S                            2 · 2mKV
                  (Q·Kᵀ ⊙ Γ)·Δ                        2 · m²V
                  K̂ᵀ·Δ          (state update)        2 · mKV
    i.e. per token (T/m chunks; a partial last chunk is counted as T/m of a full one)
      FLOPs = T · [HK · 4mK + HV · (m²/3 + 2m(K + V) + 2mV + 6KV)]
    At HK=16, HV=32, K=V=128, m=32: 4.21 MFLOP per token, 75% of it in the products with the
    state (6KV)."""
    return T * (HK * 4 * m * K + HV * (m * m / 3 + 2 * m * (K + V) + 2 * m * V + 6 * K * V))


def print_rates(rows: list[dict]) -> None:
    """The prefill rows' GFLOP/s beside the matrix-product rates of the same rounds, compactly."""
    rates = [r for r in rows if "GFLOP" in r]
    if not rates:
        return
    cols = [c for c in rates[0] if c.endswith("_GFLOPs")]
    print("GFLOP/s: prefill_flops / time; mm_*: torch products of the same rounds (bmm of HV "
          "below 512³)")
    ratios = ["blas_speed_over_brgemm", "vllm_over_brgemm", "vllm_over_ours_bf16"]
    print(f"{'shape':>30} " + " ".join(f"{c.removesuffix('_GFLOPs'):>19}" for c in cols)
          + " " + " ".join(f"{c:>23}" for c in ratios))
    for r in rates:
        print(f"{r['shape'].removesuffix('-HV32-K128-V128'):>30} "
              + " ".join(f"{r.get(c, float('nan')):19.1f}" for c in cols)
              + " " + " ".join(f"{r.get(c, float('nan')):23.2f}" for c in ratios))


def main() -> None:
    sections = sys.argv[1:] or ["decode", "spec", "prefill", "linearity"]
    ours, vllm, _ = contenders()
    rows = []
    for B in (1, 8, 32, 64) if "decode" in sections else ():
        args = decode_args(B)
        pos = [args[n] for n in NAMES]
        cu = torch.arange(B + 1, dtype=torch.int32)
        fns = {"ours": lambda: ours.fused_sigmoid_gating_delta_rule_update(*pos, None, True),
               "torch": lambda: R.fused_sigmoid_gating_delta_rule_update(**args, precision=R.FP32)}
        if vllm is not None:
            fns["vllm"] = lambda: vllm.fused_sigmoid_gating_delta_rule_update_cpu(*pos, cu, True)
        # A copy of as many bytes as the state, timed in the same rounds: this VM's bandwidth
        # drifts (37-76 GB/s), so a figure measured once at start-up is no yardstick.
        src = torch.ones(B * SHAPE["HV"] * SHAPE["K"] * SHAPE["V"])
        dst = torch.empty_like(src)
        fns["copy"] = lambda: dst.copy_(src)
        t = compare(fns, rounds=5)
        state_bytes = 2 * B * SHAPE["HV"] * SHAPE["K"] * SHAPE["V"] * 4   # read + write, fp32
        rows.append(dict(op="fused_sigmoid_gating_delta_rule_update", shape=f"B{B}-HV32-K128-V128",
                         **{f"{k}_us": v * 1e6 for k, v in t.items()},
                         torch_over_ours=t["torch"] / t["ours"],
                         vllm_over_ours=t["vllm"] / t["ours"] if "vllm" in t else float("nan"),
                         ours_state_GBps=state_bytes / t["ours"] / 1e9,
                         ours_over_copy_bw=t["copy"] / t["ours"],        # same bytes, same rounds
                         copy_GBps=state_bytes / t["copy"] / 1e9))
    for B in (1, 8, 32) if "spec" in sections else ():
        for S in (2, 4):
            args = spec_args(B, S)
            fns = {"ours": lambda: ours.fused_sigmoid_gating_delta_rule_update_spec(**args),
                   "torch": lambda: R.fused_sigmoid_gating_delta_rule_update_spec(
                       **args, precision=R.FP32)}
            if vllm is not None:
                vargs = dict(args, initial_state_source=args["state"])
                del vargs["state"]
                fns["vllm"] = lambda: vllm.fused_sigmoid_gating_delta_rule_update_spec_cpu(**vargs)
            t = compare(fns, rounds=5)
            rows.append(dict(op="fused_sigmoid_gating_delta_rule_update_spec",
                             shape=f"B{B}-S{S}-HV32-K128-V128",
                             **{f"{k}_us": v * 1e6 for k, v in t.items()},
                             torch_over_ours=t["torch"] / t["ours"],
                             vllm_over_ours=t["vllm"] / t["ours"] if "vllm" in t else float("nan")))
    # The shapes (equal splits), then a mixed varlen batch as a server sees it: with
    # lengths this uneven, how work is shared between threads decides the time.
    splits = [[tokens // n_seq] * n_seq for tokens in (512, 2048, 8192) for n_seq in (1, 4)]
    prefills = splits + [MIXED] if {"prefill", "linearity"} & set(sections) else []
    positional = {}   # (tokens, n_seq) -> the op's positional arguments, kept for the linearity rows
    # brgemm_bf16 needs oneDNN's bf16 brgemm (AMX or AVX512-BF16): where it is missing, its column
    # is left out and the rows say why.
    no_bf16 = backends.make("ours").unsupported(
        "chunk_gated_delta_rule", cases.complete("chunk_gated_delta_rule", {}), "brgemm_bf16")
    if no_bf16:
        print(f"ours_brgemm_bf16 not timed: {no_bf16}")
    # The matrix-product rates, timed in the same rounds as each row (the VM drifts by ±20%).
    mm = matmul_rates(MM_SHAPES, batch=SHAPE["HV"])
    for lengths in prefills:
        tokens, n_seq = sum(lengths), len(lengths)
        args = prefill_args(lengths)
        pos = positional[tokens, n_seq] = [args[n] for n in PREFILL]
        if "prefill" not in sections:
            continue
        fns = {"ours_brgemm": lambda: ours.chunk_gated_delta_rule(*pos, 1e-5, "brgemm"),
               "ours_blas": lambda: ours.chunk_gated_delta_rule(*pos, 1e-5, "blas")}
        if not no_bf16:
            fns["ours_brgemm_bf16"] = lambda: ours.chunk_gated_delta_rule(*pos, 1e-5, "brgemm_bf16")
        if tokens <= 2048:  # the fp32 chunked reference: seconds per call beyond that
            fns["torch"] = lambda: R.chunk_gated_delta_rule_chunked(**args, precision=R.FP32)
        if vllm is not None:
            fns["vllm"] = lambda: vllm.chunk_gated_delta_rule_cpu(*pos, 1e-5)
        t = compare(fns | {name: fn for name, (fn, _) in mm.items()}, rounds=3)
        flops = prefill_flops(tokens, **SHAPE)
        mm_GFLOPs = {f"{name}_GFLOPs": f / t.pop(name) / 1e9 for name, (_, f) in mm.items()}
        best = min(t["ours_brgemm"], t["ours_blas"])
        shape = f"T{tokens}-N{n_seq}" if lengths in splits else "varlen-" + "-".join(map(str, lengths))
        rows.append(dict(op="chunk_gated_delta_rule", shape=f"{shape}-HV32-K128-V128",
                         **{f"{k}_us": v * 1e6 for k, v in t.items()},
                         torch_over_ours=t["torch"] / best if "torch" in t else float("nan"),
                         vllm_over_ours=t["vllm"] / best if "vllm" in t else float("nan"),
                         vllm_over_ours_bf16=(t["vllm"] / t["ours_brgemm_bf16"]
                                              if "vllm" in t and "ours_brgemm_bf16" in t
                                              else float("nan")),
                         # the issue-18 bars, per path: speed relative to brgemm and to vLLM
                         blas_speed_over_brgemm=t["ours_brgemm"] / t["ours_blas"],
                         vllm_over_brgemm=t["vllm"] / t["ours_brgemm"] if "vllm" in t else float("nan"),
                         ours_brgemm_bf16_unsupported=no_bf16 or "",
                         ours_tokens_per_s=tokens / best,
                         GFLOP=flops / 1e9,
                         **{f"{k}_GFLOPs": flops / v / 1e9 for k, v in t.items()},
                         **mm_GFLOPs))
    # Linearity: 8192 tokens against 2048, timed in the same rounds (separate measurements drift
    # with the VM by more than the effect asked about).
    for n_seq in (1, 4) if "linearity" in sections else ():
        fns = {f"T{tokens}": lambda pos=positional[tokens, n_seq]: ours.chunk_gated_delta_rule(
                   *pos, 1e-5, "brgemm") for tokens in (2048, 8192)}
        t = compare(fns, rounds=5)
        rows.append(dict(op="chunk_gated_delta_rule", shape=f"T8192-vs-T2048-N{n_seq}-brgemm",
                         tokens_per_s_8192_over_2048=(8192 / t["T8192"]) / (2048 / t["T2048"])))
    write_report(rows, "gdn")
    print_rates(rows)


if __name__ == "__main__":
    main()
