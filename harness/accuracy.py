"""Accuracy curves: how a kernel's error grows with the length of a prefill and with the number of
chained decode steps, per state dtype and GEMM path, beside the references' own curves. These are
the figures for a pull request that touches a kernel's numerics.

    python -m harness accuracy [--backend NAME ...] [--max-tokens 32768] [--max-steps 4096]

- Prefill (chunk_gated_delta_rule): one varlen call holding sequences of 64, 128, ..., max-tokens
  tokens, each from its own slot; per sequence, the relative error (Frobenius) of its final state
  and the relative RMS error of its outputs, against the float64 token recurrence (the oracle).
  Series: each backend's GEMM paths; the fp32 token recurrence (the tolerance policy's baseline);
  the chunked form of the reference (reference/gdn_chunked.py) in fp32 and in float64 (the latter
  shows the two exact forms agree to float64 rounding).
- Decode (fused_sigmoid_gating_delta_rule_update): B rows stepped max-steps times, each step
  feeding the pool the op wrote back (so a bf16 or fp16 state is rounded every step, as in
  serving); the state's relative error after 1, 2, 4, ... steps. Series: each backend, and the
  fp32 reference chained the same way (it rounds the state to its dtype every step too).

Shapes: HK 1, HV 2, K = V = 64, bf16 activations (inside every backend's limits), l2norm on, decay
as models draw it. Output: a CSV of every point, and an HTML page with the curves (log-log) and the
slope of each curve on log-log axes (least squares over its points).
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

import cases
import reference as R
from harness import backends
from harness.html import document, esc, figure, png, table

PREFILL, DECODE = "chunk_gated_delta_rule", "fused_sigmoid_gating_delta_rule_update"
HEADS = dict(HK=1, G=2, K=64, V=64, dtype="bf16", l2norm=True, slot_gap=0, seed=11)
STATE_DTYPES = ("fp32", "bf16", "fp16")
# The prefill in two decay regimes: "normal" (gates as models draw them: the state forgets within
# tens of tokens, so its error is the last tokens' and cannot grow with length) and "zero" (no
# forgetting: every token stays in the state, and so does every token's rounding).
DECAYS = ("normal", "zero")


def _rel(got: torch.Tensor, want: torch.Tensor) -> float:
    """‖got − want‖ / ‖want‖ in float64 (non-finite values propagate: a NaN curve shows)."""
    want = want.double()
    return float((got.double() - want).norm() / want.norm().clamp_min(1e-300))


# --- prefill -------------------------------------------------------------------------------------

def prefill_curves(targets, state_dtype: str, max_tokens: int, decay: str) -> list[dict]:
    lengths = [64 << i for i in range(int(math.log2(max_tokens // 64)) + 1)]
    case = dict(lengths=lengths, slots=list(range(len(lengths))), state_dtype=state_dtype,
                decay=decay, **HEADS)
    kw = cases.build(PREFILL, case)
    oracle_out, oracle_state = R.chunk_gated_delta_rule(**kw)
    cu = kw["cu_seqlens"].tolist()

    def points(series, path, out, state, note=""):
        rows = []
        for i, n in enumerate(lengths):
            half = slice(cu[i] + n // 2, cu[i + 1])
            rows.append(dict(op=PREFILL, decay=decay, series=series, gemm_path=path,
                             state_dtype=state_dtype, x=n, state_rel_err=_rel(state[i], oracle_state[i]),
                             out_rel_err=_rel(out[0, half], oracle_out[0, half]), note=note))
        return rows

    rows = []
    for name, fn in (("reference fp32 recurrence", lambda: R.chunk_gated_delta_rule(**kw, precision=R.FP32)),
                     ("reference fp32 chunked", lambda: R.chunk_gated_delta_rule_chunked(**kw, precision=R.FP32)),
                     ("reference float64 chunked", lambda: R.chunk_gated_delta_rule_chunked(**kw))):
        out, state = fn()
        rows += points(name, "", out, state)
    full = cases.complete(PREFILL, case)
    for backend in targets:
        for path in backend.variants(PREFILL, gemm=True):
            why = backend.unsupported(PREFILL, full, path)
            if why:
                rows.append(dict(op=PREFILL, decay=decay, series=backend.name, gemm_path=path,
                                 state_dtype=state_dtype, note=why))
                continue
            run = {k: (v.clone() if isinstance(v, torch.Tensor) else v) for k, v in kw.items()}
            got = backend.call(PREFILL, run, path)
            rows += points(backend.name, path, got["out"], run["initial_state"])
    return rows


# --- decode --------------------------------------------------------------------------------------

def decode_curves(targets, state_dtype: str, max_steps: int, rows_per_step: int = 4) -> list[dict]:
    """Every series starts from the same pool and takes the same tokens; each keeps its own pool."""
    steps = [(f"step{i}", dict(B=rows_per_step, state_dtype=state_dtype, **{**HEADS, "seed": i}))
             for i in range(max_steps)]
    first = cases.build(DECODE, steps[0][1])
    pools = {"oracle": first["state"].double(), "reference fp32": first["state"].clone()}
    live = []
    for backend in targets:
        why = backend.unsupported(DECODE, cases.complete(DECODE, steps[0][1]), "")
        if why:
            live.append((backend, why))
        else:
            live.append((backend, None))
            pools[backend.name] = first["state"].clone()
    marks = {1 << i for i in range(int(math.log2(max_steps)) + 1)}
    rows = []
    for n, (_, case) in enumerate(steps, 1):
        kw = cases.build(DECODE, case)      # new tokens each step (seeded by the step)
        _, pools["oracle"] = R.fused_sigmoid_gating_delta_rule_update(**dict(kw, state=pools["oracle"]))
        _, pools["reference fp32"] = R.fused_sigmoid_gating_delta_rule_update(
            **dict(kw, state=pools["reference fp32"]), precision=R.FP32)
        for backend, why in live:
            if why is None:
                backend.call(DECODE, dict(kw, state=pools[backend.name]), "")
        if n in marks:
            for series, pool in pools.items():
                if series != "oracle":
                    rows.append(dict(op=DECODE, series=series, gemm_path="", state_dtype=state_dtype,
                                     x=n, state_rel_err=_rel(pool, pools["oracle"]), note=""))
    rows += [dict(op=DECODE, series=b.name, gemm_path="", state_dtype=state_dtype, note=why)
             for b, why in live if why]
    return rows


# --- slopes and the page -------------------------------------------------------------------------

def slopes(df: pd.DataFrame) -> pd.DataFrame:
    """Per curve, the least-squares slope of log(error) against log(x): 0 is flat, 0.5 grows like a
    random walk, 1 linearly."""
    out = []
    keys = ["op", "decay", "state_dtype", "series", "gemm_path"]
    for key, part in df.dropna(subset=["x"]).fillna({"decay": ""}).groupby(keys):
        part = part[part["state_rel_err"] > 0]
        slope = (np.polyfit(np.log(part["x"]), np.log(part["state_rel_err"]), 1)[0]
                 if len(part) >= 2 and np.isfinite(part["state_rel_err"]).all() else float("nan"))
        out.append(dict(zip(keys, key),
                        slope=slope, first=part["state_rel_err"].iloc[0] if len(part) else float("nan"),
                        last=part["state_rel_err"].iloc[-1] if len(part) else float("nan")))
    return pd.DataFrame(out)


def curve_plot(df: pd.DataFrame, op: str, state_dtype: str, xlabel: str, decay: str = "") -> str:
    part = df[(df["op"] == op) & (df["state_dtype"] == state_dtype)].dropna(subset=["x"])
    if decay:
        part = part[part["decay"] == decay]
    if part.empty:
        return ""
    fig, ax = figure(5.6, 3.8)
    for (series, path), curve in part.groupby(["series", "gemm_path"]):
        style = "--" if series.startswith("reference") else "-"
        ax.plot(curve["x"], curve["state_rel_err"].clip(lower=1e-18), style, marker="o",
                markersize=3, label=f"{series} {path}".strip())
    ax.set(xscale="log", yscale="log", xlabel=xlabel, ylabel="state: relative error",
           title=f"{'prefill' if op == PREFILL else 'decode'}: {state_dtype} state"
                 + (f", decay {decay}" if decay else ""))
    ax.legend(fontsize=6)
    return png(fig)


def page(df: pd.DataFrame, slope_table: pd.DataFrame, title: str) -> str:
    parts = [f"<h1>{esc(title)}</h1>", f"<p>{esc(__doc__.split(chr(10) + chr(10))[0])}</p>",
             "<h2>Prefill: final state error against sequence length</h2>"]
    parts += [curve_plot(df, PREFILL, s, "tokens", decay) for decay in DECAYS for s in STATE_DTYPES]
    parts.append("<h2>Decode: state error against chained steps</h2>")
    parts += [curve_plot(df, DECODE, s, "decode steps") for s in STATE_DTYPES]
    notes = df[df["x"].isna()][["op", "decay", "series", "gemm_path", "state_dtype", "note"]]
    if len(notes):
        parts.append("<h2>Not run</h2>" + table(notes, id="not-run"))
    parts.append("<h2>Slopes on log-log axes</h2>" + table(slope_table, id="slopes"))
    return document(title, parts)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m harness accuracy", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backend", action="append", default=None,
                   help="backends to plot (default: ours and the vLLM build this CPU would load)")
    p.add_argument("--max-tokens", type=int, default=32768)
    p.add_argument("--max-steps", type=int, default=4096)
    p.add_argument("--out", default=time.strftime("reports/accuracy-%Y%m%d-%H%M%S"),
                   help="path without suffix: .csv and .html are written")
    args = p.parse_args(argv)
    names = args.backend or ["ours", backends.vllm_build_for_this_cpu()]
    targets = []
    for name in names:
        b = backends.make(name)
        why = b.available()
        if why:
            print(f"{name}: not plotted: {why}")
        else:
            targets.append(b)
    rows = []
    for state_dtype in STATE_DTYPES:
        t0 = time.perf_counter()
        for decay in DECAYS:
            rows += prefill_curves(targets, state_dtype, args.max_tokens, decay)
        rows += decode_curves(targets, state_dtype, args.max_steps)
        print(f"{state_dtype} state: {time.perf_counter() - t0:.0f} s", flush=True)
    df = pd.DataFrame(rows)
    table = slopes(df)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(out.with_suffix(".csv"), index=False)
    out.with_suffix(".html").write_text(page(df, table, f"accuracy curves: {out.name}"))
    with pd.option_context("display.width", 200):
        print(table.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    print(f"written: {out.with_suffix('.csv')} and {out.with_suffix('.html')}")
    return 0
