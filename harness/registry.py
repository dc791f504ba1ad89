"""One registry of ops: for each, its reference, its case strategy and tensor builder, the names
and tolerance kinds of its results, what its in-place pools may change, the hazard cases pinned
as examples, and its error inputs (PyTorch OpInfo's shape, Hypothesis's strategies).

Adding an op: a reference in reference/, a strategy and builder in cases/, one OpSpec here, and
the call in each backend adapter (harness/backends.py).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from hypothesis.strategies import SearchStrategy

import kernels
import reference as R
from cases import conv as C
from cases import gdn as G


@dataclass(frozen=True)
class ErrorInput:
    """A valid case made invalid in one way; the backend must raise naming `arg`."""
    name: str
    case: dict
    spoil: Callable[[dict], None]      # edits the built kwargs in place
    arg: str


@dataclass(frozen=True)
class OpSpec:
    name: str
    reference: Callable
    cases: SearchStrategy               # draws case descriptions (plain dicts)
    build: Callable[[dict], dict]       # case -> kwargs in the contract's argument names
    results: tuple[str, ...]            # the reference's results, in order; a name that is also
                                        # an argument is a pool the op updates in place
    writable: Callable[[dict, dict], dict[str, torch.Tensor]]  # (case, kwargs) -> pool -> mask
    exact: frozenset[str] = frozenset()  # results that must equal the baseline bit for bit
    id_keys: tuple[str, ...] = ()       # case keys shown in the readable case id
    examples: tuple[tuple[str, dict], ...] = ()   # (hazard, case) pinned as @example
    errors: tuple[ErrorInput, ...] = ()
    gemm: bool = False                  # has matrix products: backends may offer GEMM paths
    # (case, kwargs) -> result -> per-element n·Σ|terms| of its fp32 sums (see harness/policy.py)
    accumulation: Callable[[dict, dict], dict[str, torch.Tensor]] | None = None
    # A reduced-precision variant (a GEMM path) is judged against a baseline of its own: the same
    # math in fp32 with the variant's roundings, so its tolerance says "as accurate as that
    # algorithm can be", not "as accurate as fp32".
    variant_baselines: dict[str, Callable] = field(default_factory=dict)

    def run_reference(self, kwargs: dict, precision, variant: str = "") -> dict[str, torch.Tensor | None]:
        reference = self.variant_baselines.get(variant, self.reference) if precision is R.FP32 \
            else self.reference
        got = reference(**kwargs, precision=precision)
        got = got if isinstance(got, tuple) else (got,)
        return dict(zip(self.results, got))


# --- what an in-place op may change ------------------------------------------------------------

def _live_slots(indices: torch.Tensor | None, rows: int) -> list[int]:
    if indices is None:
        return list(range(rows))
    return [s for s in indices.tolist() if s != R.PAD_SLOT_ID]


def _slot_mask(pool: torch.Tensor, slots: list[int], columns: int | None = None) -> torch.Tensor:
    mask = torch.zeros(pool.shape, dtype=torch.bool)
    for s in slots:
        if columns is None:
            mask[s] = True
        else:
            mask[s, :, :columns] = True
    return mask


def _nothing(case, kw):
    return {}


def _decode_writable(case, kw):
    return {"state": _slot_mask(kw["state"], _live_slots(kw["state_indices"], case["B"]))}


def _prefill_writable(case, kw):
    slots = _live_slots(kw["initial_state_indices"], len(case["lengths"]))
    return {"initial_state": _slot_mask(kw["initial_state"], slots)}


def _fwd_writable(case, kw):
    if kw["conv_states"] is None:
        return {}
    slots = _live_slots(kw["cache_indices"], len(case["lengths"]))
    return {"conv_states": _slot_mask(kw["conv_states"], slots, columns=case["W"] - 1)}


def _update_writable(case, kw):
    slots = _live_slots(kw["conv_state_indices"], case["B"])
    columns = None if case["L"] else case["W"] - 1      # speculative: the whole slot shifts
    return {"conv_states": _slot_mask(kw["conv_states"], slots, columns)}


# --- accumulations (the tolerance's γ_n term under cancellation) ---------------------------------

def _conv_accumulation(reference):
    """Each conv output sums W taps and the bias: n = W + 1 terms, whose absolute values the
    float64 reference sums when run on the inputs' absolute values without SiLU."""
    def accumulation(case, kw):
        ab = {k: v.abs() if isinstance(v, torch.Tensor) and v.is_floating_point() else v
              for k, v in kw.items()}
        out = reference(**{**ab, "silu_activation": False}, precision=R.ORACLE)[0]
        return {"out": (case["W"] + 1) * out.abs()}
    return accumulation


# --- pinned hazard cases (SPEC.md "Known hazards") ----------------------------------------------

_DEC = dict(B=3, HK=2, G=2, K=32, V=64, dtype="bf16", state_dtype="fp32", slots=[2, 0, 4], n_slots=5,
            slot_gap=3, l2norm=True, cu_seqlens=False, softplus_beta=1.0, softplus_threshold=20.0,
            qk_strides="dense", regime="unit", seed=1)
_PRE = dict(lengths=[65, 0, 1, 63], HK=2, G=2, K=32, V=64, dtype="bf16", state_dtype="fp32",
            slots=[3, 1, -1, 0], n_slots=5, slot_gap=3, l2norm=True, decay="normal",
            qk_strides="dense", regime="unit", seed=1)
_FWD = dict(D=64, W=4, dtype="bf16", bias=True, silu=True, packed=False, varlen=True,
            lengths=[5, 0, 2, 70], states=True, layout="SD", state_extra=2, slot_gap=3,
            indices_given=True, slots=[3, -1, 0, 1], n_slots=5,
            has_initial_state=[True, True, False, True], regime="unit", seed=1)
_UPD = dict(D=64, W=4, dtype="bf16", bias=True, silu=True, packed=False, B=3, L=0, layout="SD",
            state_extra=2, slot_gap=3, indices_given=True, slots=[2, -1, 0], n_slots=4,
            x_row_pad=0, regime="unit", seed=1)


def _with(base: dict, **changes) -> dict:
    return {**base, **changes}


# Error inputs start from cases every backend supports (K == V == 64, bf16, width 4, no pads in
# the speculative update), so that the one spoiled argument is the only thing wrong.
_DEC_E = _with(_DEC, K=64, V=64)
_PRE_E = _with(_PRE, K=64, V=64)
_UPD_SPEC_E = _with(_UPD, L=3, accepted=[1, 2, 3], slots=[2, 1, 0])


GDN_EXAMPLES = {
    "decode": (
        ("H3 beta read per row, not row 0's", _DEC),
        ("H4 K != V state orientation", _with(_DEC, K=64, V=32)),
        ("H6+H7 permuted slots with pads, read and written back to the same slot",
         _with(_DEC, B=4, slots=[3, -1, 0, 1], n_slots=4)),
        ("H2 strided slots", _with(_DEC, slot_gap=64)),
        ("H10 q, k, v with strides of their own", _with(_DEC, qk_strides="distinct")),
        ("H11 V with a vector tail", _with(_DEC, K=40, V=40, G=3)),
    ),
    "prefill": (
        ("H4 K != V state orientation", _PRE),
        ("H9 pad and empty sequences: outputs defined", _with(_PRE, lengths=[0, 3, 1, 0])),
        ("H2 strided slots", _with(_PRE, slot_gap=64)),
        ("H10 q, k, v with strides of their own", _with(_PRE, qk_strides="distinct")),
        ("H11 V with a vector tail", _with(_PRE, K=40, V=40, G=1)),
    ),
}

CONV_EXAMPLES = {
    "fwd": (
        ("H1 every optional absent", dict(D=64, W=4, dtype="bf16", bias=False, silu=False,
                                          packed=False, varlen=True, lengths=[5, 0, 70],
                                          states=False, regime="unit", seed=1)),
        ("H2 strided slots, SD", _FWD),
        ("H2+H8 strided slots, DS", _with(_FWD, layout="DS")),
        ("H6 permuted slots", _with(_FWD, slots=[1, 2, 3, 0], has_initial_state=None)),
        ("H11 D with a vector tail", _with(_FWD, D=44)),
        ("H9 batch mode, no history", _with(_FWD, varlen=False, lengths=[7, 7], slots=[1, -1],
                                            has_initial_state=[True, False], state_extra=0,
                                            token_major=True)),
        ("packed weights", _with(_FWD, packed=True)),
    ),
    "update": (
        ("H2 strided slots, SD", _UPD),
        ("H2+H8 strided slots, DS", _with(_UPD, layout="DS")),
        ("H7+H9 pads: slot untouched, output defined", _with(_UPD, slots=[-1, 1, -1])),
        ("H11 D with a vector tail", _with(_UPD, D=44, indices_given=False, slots=[0, 1, 2])),
        ("speculative decode", _with(_UPD, L=3, state_extra=2, accepted=[1, 2, 3])),
        ("packed weights, few rows", _with(_UPD, packed=True, B=1, slots=[1])),
        ("cancellation: |y| ≪ Σ|terms| (the tolerance's γ_n term)",
         dict(B=1, D=1, L=0, W=5, bias=True, dtype="fp32", indices_given=False, layout="SD",
              n_slots=1, packed=False, regime="unit", seed=94294, silu=False, slot_gap=0, slots=[0],
              state_extra=0, x_row_pad=0)),
    ),
}


def _set(name, value):
    def spoil(kw):
        kw[name] = value(kw) if callable(value) else value
    return spoil


ERRORS = {
    "fused_gdn_gating": (
        ErrorInput("a is 3-D", dict(T=4, HV=8, dtype="bf16", softplus_beta=1.0,
                                    softplus_threshold=20.0, regime="unit", seed=0),
                   _set("a", lambda kw: kw["a"][None]), "a"),
        ErrorInput("b of another shape", dict(T=4, HV=8, dtype="bf16", softplus_beta=1.0,
                                              softplus_threshold=20.0, regime="unit", seed=0),
                   _set("b", lambda kw: kw["b"][:, :4]), "b"),
        ErrorInput("A_log of the wrong length", dict(T=4, HV=8, dtype="bf16", softplus_beta=1.0,
                                                     softplus_threshold=20.0, regime="unit", seed=0),
                   _set("A_log", lambda kw: kw["A_log"][:3]), "A_log"),
        ErrorInput("dt_bias of the wrong length", dict(T=4, HV=8, dtype="bf16", softplus_beta=1.0,
                                                       softplus_threshold=20.0, regime="unit", seed=0),
                   _set("dt_bias", lambda kw: kw["dt_bias"][:3]), "dt_bias"),
    ),
    "fused_sigmoid_gating_delta_rule_update": (
        ErrorInput("H7 slot index past the pool", _DEC_E,
                   _set("state_indices", torch.tensor([2, 5, 0], dtype=torch.int32)), "state_indices"),
        ErrorInput("H7 negative slot index that is not the pad id", _DEC_E,
                   _set("state_indices", torch.tensor([2, -2, 0], dtype=torch.int32)), "state_indices"),
        ErrorInput("H4 pool with K and V swapped", _DEC,
                   _set("state", lambda kw: kw["state"].transpose(-1, -2)), "state"),
        ErrorInput("k of another shape than q", _DEC_E, _set("k", lambda kw: kw["k"][..., :16]), "k"),
        ErrorInput("b of another shape", _DEC_E, _set("b", lambda kw: kw["b"][:2]), "b"),
        ErrorInput("two tokens in a decode row", _DEC_E,
                   _set("cu_seqlens", torch.tensor([0, 2, 2, 3], dtype=torch.int32)), "cu_seqlens"),
    ),
    "chunk_gated_delta_rule": (
        ErrorInput("H7 slot index past the pool", _PRE_E,
                   _set("initial_state_indices", torch.tensor([3, 1, 9, 0], dtype=torch.int32)),
                   "initial_state_indices"),
        ErrorInput("H7 negative slot index that is not the pad id", _PRE_E,
                   _set("initial_state_indices", torch.tensor([3, 1, -2, 0], dtype=torch.int32)),
                   "initial_state_indices"),
        ErrorInput("H4 pool with K and V swapped", _PRE,
                   _set("initial_state", lambda kw: kw["initial_state"].transpose(-1, -2)),
                   "initial_state"),
        ErrorInput("cu_seqlens not ending at the token count", _PRE_E,
                   _set("cu_seqlens", torch.tensor([0, 65, 65, 66, 100], dtype=torch.int32)),
                   "cu_seqlens"),
        ErrorInput("g of another shape", _PRE_E, _set("g", lambda kw: kw["g"][..., :2]), "g"),
        ErrorInput("head_first=True", _PRE_E, _set("head_first", True), "head_first"),
    ),
    "causal_conv1d_weight_pack": (
        ErrorInput("H5 3-D [D, 1, W] weight", dict(D=64, W=4, dtype="bf16", seed=0),
                   _set("weight", lambda kw: kw["weight"][:, None]), "weight"),
        ErrorInput("D not a multiple of 32", dict(D=64, W=4, dtype="bf16", seed=0),
                   _set("weight", lambda kw: kw["weight"][:48].contiguous()), "weight"),
        ErrorInput("width 3", dict(D=64, W=4, dtype="bf16", seed=0),
                   _set("weight", lambda kw: kw["weight"][:, :3].contiguous()), "weight"),
    ),
    "causal_conv1d_fwd": (
        ErrorInput("H5 3-D [D, 1, W] weight", _FWD, _set("weight", lambda kw: kw["weight"][:, None]),
                   "weight"),
        ErrorInput("H7 slot index past the pool", _FWD,
                   _set("cache_indices", torch.tensor([3, -1, 7, 1], dtype=torch.int32)),
                   "cache_indices"),
        ErrorInput("H7 negative slot index that is not the pad id", _FWD,
                   _set("cache_indices", torch.tensor([3, -2, 0, 1], dtype=torch.int32)),
                   "cache_indices"),
        ErrorInput("cache_indices without conv_states", _FWD, _set("conv_states", None),
                   "cache_indices"),
        ErrorInput("state_len shorter than W-1", _FWD,
                   _set("conv_states", lambda kw: kw["conv_states"][..., :2]), "conv_states"),
        ErrorInput("bias of the wrong length", _FWD, _set("bias", lambda kw: kw["bias"][:32]), "bias"),
        ErrorInput("query_start_loc not ending at the token count", _FWD,
                   _set("query_start_loc", torch.tensor([0, 5, 5, 7, 70], dtype=torch.int32)),
                   "query_start_loc"),
    ),
    "causal_conv1d_update": (
        ErrorInput("H5 3-D [D, 1, W] weight", _UPD, _set("weight", lambda kw: kw["weight"][:, None]),
                   "weight"),
        ErrorInput("H7 slot index past the pool", _UPD,
                   _set("conv_state_indices", torch.tensor([2, -1, 4], dtype=torch.int32)),
                   "conv_state_indices"),
        ErrorInput("H7 negative slot index that is not the pad id", _UPD,
                   _set("conv_state_indices", torch.tensor([2, -2, 0], dtype=torch.int32)),
                   "conv_state_indices"),
        ErrorInput("conv_states with other channels", _UPD,
                   _set("conv_states", lambda kw: kw["conv_states"][:, :32]), "conv_states"),
        ErrorInput("num_accepted_tokens with a 2-D x", _UPD,
                   _set("num_accepted_tokens", torch.ones(3, dtype=torch.int32)),
                   "num_accepted_tokens"),
        ErrorInput("speculative row accepting 0 tokens", _UPD_SPEC_E,
                   _set("num_accepted_tokens", torch.tensor([1, 2, 0], dtype=torch.int32)),
                   "num_accepted_tokens"),
    ),
}


def _pack_reference(weight, *, precision):
    return R.causal_conv1d_weight_pack(weight)     # a permutation: the same in every precision


def _spec(name, **kw) -> OpSpec:
    ref = _pack_reference if name == "causal_conv1d_weight_pack" else getattr(R, name)
    return OpSpec(name=name, reference=ref, errors=ERRORS[name], **kw)


_GDN_IDS = ("HK", "G", "K", "V", "dtype", "state_dtype", "l2norm", "slot_gap", "regime")
_CONV_IDS = ("D", "W", "dtype", "bias", "silu", "packed", "layout", "slot_gap", "regime")

REGISTRY: dict[str, OpSpec] = {s.name: s for s in (
    _spec("fused_gdn_gating", cases=G.gating_cases(), build=G.build_gating, results=("g", "beta"),
          writable=_nothing, id_keys=("T", "HV", "dtype", "softplus_beta", "softplus_threshold",
                                      "regime")),
    _spec("fused_sigmoid_gating_delta_rule_update", cases=G.decode_cases(), build=G.build_decode,
          results=("out", "state"), writable=_decode_writable, id_keys=("B", *_GDN_IDS, "qk_strides"),
          examples=GDN_EXAMPLES["decode"]),
    _spec("chunk_gated_delta_rule", cases=G.prefill_cases(), build=G.build_prefill,
          results=("out", "initial_state"), writable=_prefill_writable,
          id_keys=("lengths", *_GDN_IDS, "decay", "qk_strides"), examples=GDN_EXAMPLES["prefill"],
          gemm=True,
          # bf16 GEMM operands (fp32 accumulation), rounded where the kernel rounds them, in the
          # kernel's chunks
          variant_baselines={"brgemm_bf16": functools.partial(R.chunk_gated_delta_rule_chunked,
                                                               operands=torch.bfloat16,
                                                               chunk_size=kernels.CHUNK_SIZE)}),
    _spec("causal_conv1d_weight_pack", cases=C.pack_cases(), build=C.build_pack,
          results=("packed",), writable=_nothing, exact=frozenset({"packed"}),
          id_keys=("D", "W", "dtype")),
    _spec("causal_conv1d_fwd", cases=C.fwd_cases(), build=C.build_fwd, results=("out", "conv_states"),
          writable=_fwd_writable, exact=frozenset({"conv_states"}),
          accumulation=_conv_accumulation(R.causal_conv1d_fwd),
          id_keys=("lengths", "varlen", *_CONV_IDS, "states"), examples=CONV_EXAMPLES["fwd"]),
    _spec("causal_conv1d_update", cases=C.update_cases(), build=C.build_update,
          results=("out", "conv_states"), writable=_update_writable, exact=frozenset({"conv_states"}),
          accumulation=_conv_accumulation(R.causal_conv1d_update),
          id_keys=("B", "L", *_CONV_IDS), examples=CONV_EXAMPLES["update"]),
)}
