"""Timing of the references at Qwen3-Next shapes, and the chunked form's agreement with the
recurrence there. Writes reports/bench-reference-<time>.csv and prints the table.

    python -m benchmarks.reference [--tokens 2048] [--rows 64]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd
import torch

import cases
import reference as R

# Qwen3-Next's heads (HK=16, HV=32 = G·HK, K=V=128) as case axes: bf16 activations, fp32 state.
QWEN3_NEXT = dict(HK=16, G=2, K=128, V=128, dtype="bf16", state_dtype="fp32")


def timed(fn, repeat=3):
    """Best of `repeat` wall-clock runs, and the last result."""
    best, result = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def rel_max(a, b):
    return ((a.double() - b.double()).abs().max() / b.double().abs().max()).item()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tokens", type=int, default=2048)
    p.add_argument("--rows", type=int, default=64)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    rows = []
    for n_seq in (1, 4):
        lengths = [args.tokens // n_seq] * n_seq
        inp = cases.build("chunk_gated_delta_rule", dict(lengths=lengths, **QWEN3_NEXT, seed=0))
        results = {}
        for form, fn in (("recurrent", R.chunk_gated_delta_rule),
                         ("chunked", R.chunk_gated_delta_rule_chunked)):
            for prec in (R.ORACLE, R.FP32):
                sec, results[form, prec.name] = timed(lambda: fn(**inp, precision=prec), args.repeat)
                rows.append(dict(op="chunk_gated_delta_rule", form=form, precision=prec.name,
                                 shape=f"T{args.tokens}-N{n_seq}-HV32-K128-V128", seconds=sec))
        (o_r, s_r), (o_c, s_c) = results["recurrent", "oracle"], results["chunked", "oracle"]
        rows.append(dict(op="chunk_gated_delta_rule", form="chunked vs recurrent",
                         precision="oracle", shape=f"T{args.tokens}-N{n_seq}-HV32-K128-V128",
                         out_rel_max_diff=rel_max(o_c, o_r), state_rel_max_diff=rel_max(s_c, s_r)))
    inp = cases.build("fused_sigmoid_gating_delta_rule_update",
                      dict(B=args.rows, **QWEN3_NEXT, seed=1))
    for prec in (R.ORACLE, R.FP32):
        sec, _ = timed(lambda: R.fused_sigmoid_gating_delta_rule_update(**inp, precision=prec),
                       args.repeat)
        rows.append(dict(op="fused_sigmoid_gating_delta_rule_update", form="step",
                         precision=prec.name, shape=f"B{args.rows}-HV32-K128-V128", seconds=sec))
    df = pd.DataFrame(rows)
    out = Path("reports") / time.strftime("bench-reference-%Y%m%d-%H%M%S.csv")
    out.parent.mkdir(exist_ok=True)
    df.to_csv(out, index=False)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(df.to_string(index=False, float_format=lambda x: f"{x:.3g}"))
    print(f"written: {out}")


if __name__ == "__main__":
    main()
