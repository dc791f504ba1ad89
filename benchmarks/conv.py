"""Causal-conv1d kernels at Qwen3-Next shapes (D=8192, W=4, bf16, packed weights, SD states):
ours against the same math in plain PyTorch (bf16) and against vLLM's CPU kernels when installed.
Prefill is also compared with its memory roofline: a copy of as many bytes as x read plus out
written, timed in the same rounds (the VM's copy bandwidth drifts 33-76 GB/s).

    python -m benchmarks.conv
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

import cases
from benchmarks.common import compare, contenders, write_report

D, W = 8192, 4
# The case descriptions' common axes: the shipped conv (bf16, width 4, with bias and SiLU), weights
# unpacked as built (the benchmark packs them with our op: the torch contender needs them
# unpacked), a W−1-column SD state pool with slot i for sequence (or row) i.
CONV = dict(D=D, W=W, dtype="bf16", bias=True, silu=True, packed=False, layout="SD",
            state_extra=0, slot_gap=0, indices_given=True, regime="unit")


def fwd_args(lengths: list[int]) -> dict:
    """Varlen prefill kwargs: x a [D, T] view of token-major [T, D], every sequence with history."""
    return cases.build("causal_conv1d_fwd", dict(
        **CONV, varlen=True, lengths=lengths, states=True,
        has_initial_state=[True] * len(lengths), seed=sum(lengths) + len(lengths)))


def update_args(B: int) -> dict:
    """Decode kwargs: x [B, D], one token per row."""
    return cases.build("causal_conv1d_update", dict(**CONV, B=B, L=0, seed=B))


def torch_fwd(x, w, bias, states, qsl, idx, init):
    """Plain PyTorch, same precision: per sequence F.conv1d over [history, x_seq], then SiLU."""
    out = torch.empty_like(x)
    cu = qsl.tolist()
    for i, slot in enumerate(idx.tolist()):
        hist = states[slot, :, :W - 1] if bool(init[i]) else x.new_zeros(D, W - 1)
        xp = torch.cat([hist, x[:, cu[i]:cu[i + 1]]], -1)
        out[:, cu[i]:cu[i + 1]] = F.silu(F.conv1d(xp[None], w[:, None], bias, groups=D)[0])
        states[slot, :, :W - 1] = xp[:, -(W - 1):]
    return out


def torch_update(x, states, w, bias, idx):
    xp = torch.cat([states[idx, :, :W - 1], x[..., None]], -1)   # [B, D, W]
    y = F.silu((xp * w).sum(-1) + bias)
    states[idx, :, :W - 1] = xp[..., 1:]
    return y


def main() -> None:
    ours, vllm, _ = contenders()
    rows = []

    def row(op, shape, fns, **extra):
        t = compare(fns)
        r = dict(op=op, shape=shape, **{f"{k}_us": v * 1e6 for k, v in t.items()})
        r.setdefault("vllm_us", float("nan"))
        r["torch_over_ours"] = t["torch"] / t["ours"]
        r["vllm_over_ours"] = t["vllm"] / t["ours"] if "vllm" in t else float("nan")
        for k, v in extra.items():
            r[k] = v(t) if callable(v) else v
        rows.append(r)

    for tokens in (512, 4096):
        for n_seq in (1, 4):
            a = fwd_args([tokens // n_seq] * n_seq)
            x, w, bias, states = a["x"], a["weight"], a["bias"], a["conv_states"]
            qsl, idx, init = a["query_start_loc"], a["cache_indices"], a["has_initial_state"]
            packed = ours.causal_conv1d_weight_pack(w)
            fns = {"ours": lambda: ours.causal_conv1d_fwd(x, packed, bias, states, qsl, idx, init,
                                                          True, -1, True),
                   "torch": lambda: torch_fwd(x, w, bias, states, qsl, idx, init)}
            if vllm is not None and hasattr(vllm, "causal_conv1d_fwd_cpu"):
                fns["vllm"] = lambda: vllm.causal_conv1d_fwd_cpu(x, packed, bias, states, qsl, idx,
                                                                 init, True, -1, True)
            # The roofline: x's bytes read, out's written. src is filled: an untouched buffer
            # would read the shared zero page, far faster than memory.
            src = x.clone()
            dst = torch.empty_like(x)
            fns["copy"] = lambda: dst.copy_(src)
            row("causal_conv1d_fwd", f"T{tokens}-N{n_seq}-D{D}", fns,
                ours_over_roofline=lambda t: t["ours"] / t["copy"],
                ours_tokens_per_s=lambda t: tokens / t["ours"])

    for B in (1, 8, 64):
        a = update_args(B)
        x, states, w, bias, idx = (a["x"], a["conv_states"], a["weight"], a["bias"],
                                   a["conv_state_indices"])
        packed = ours.causal_conv1d_weight_pack(w)
        fns = {"ours": lambda: ours.causal_conv1d_update(x, states, packed, bias, True, None, idx,
                                                         -1, True),
               "torch": lambda: torch_update(x, states, w, bias, idx)}
        if vllm is not None and hasattr(vllm, "causal_conv1d_update_cpu"):
            fns["vllm"] = lambda: vllm.causal_conv1d_update_cpu(x, states, packed, bias, True, None,
                                                                idx, -1, True)
        row("causal_conv1d_update", f"B{B}-D{D}", fns)
    write_report(rows, "conv")


if __name__ == "__main__":
    main()
