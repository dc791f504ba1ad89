"""One registry of ops (PyTorch OpInfo's shape): for each, its reference, the Hypothesis strategy of
its case descriptions (the builder is cases.build), its tensor inputs, the names and tolerance kinds
of its results, what its in-place pools may change, the pinned cases, and its error inputs
(harness/errors.py). Backends are not named here: each adapter (harness/backends.py) declares the ops
it implements.

Adding an op: see the checklist in README.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from hypothesis.strategies import SearchStrategy

import cases
import reference as R
from cases import conv as C
from cases import gdn as G
from cases.pinned import DECODE, FWD, PREFILL, SPEC, UPDATE, with_
from harness.errors import ERRORS, ErrorInput
from reference.checks import sequence_bounds, spec_slot_plan
from reference.gdn_chunked import conditioning


@dataclass(frozen=True)
class OpSpec:
    name: str
    reference: Callable
    cases: SearchStrategy               # draws case descriptions (plain dicts)
    inputs: tuple[str, ...]             # the tensor arguments (each may be re-laid: cases/views.py)
    results: tuple[str, ...]            # the reference's results, in order; a name that is also
                                        # an argument is a pool the op updates in place
    writable: Callable[[dict, dict], dict[str, torch.Tensor]]  # (case, kwargs) -> pool -> mask
    exact: frozenset[str] = frozenset()  # results that must equal the baseline bit for bit
    id_keys: tuple[str, ...] = ()       # case keys shown in the readable case id
    examples: tuple[tuple[str, dict], ...] = ()   # (what it pins, case): @example and unit tests
    errors: tuple[ErrorInput, ...] = ()
    gemm: bool = False                  # has matrix products: backends may offer GEMM paths
    # (case, kwargs) -> result -> per-element n·Σ|terms| of its fp32 sums (see harness/policy.py)
    accumulation: Callable[[dict, dict], dict[str, torch.Tensor]] | None = None
    # (case, kwargs, row) -> (the kwargs of that row alone, [(result, index in the batch's result,
    # index in the row's result)]): batch invariance (harness/repeat.py); None: no batch
    alone: Callable[[dict, dict, int], tuple[dict, list]] | None = None
    rows: Callable[[dict], int] = lambda case: 0     # rows (or sequences) of a case
    # (case, kwargs) -> figures of how hard the case is numerically, recorded on its row
    # (reference/gdn_chunked.py: conditioning)
    conditioning: Callable[[dict, dict], dict] | None = None
    # the pool a chain of calls carries (a case with `steps` > 1: harness/runner.py _run_chain)
    chain: str | None = None

    def build(self, case: dict) -> dict:
        """The op's arguments for a case description (cases.build)."""
        return cases.build(self.name, case)

    def complete(self, case: dict) -> dict:
        return cases.complete(self.name, case)

    def run_reference(self, kwargs: dict, precision,
                      reference: Callable | None = None) -> dict[str, torch.Tensor | None]:
        """The reference's results by name; `reference` replaces it (a backend variant's own
        baseline: harness/backends.py)."""
        got = (reference or self.reference)(**kwargs, precision=precision)
        got = got if isinstance(got, tuple) else (got,)
        return dict(zip(self.results, got))


# --- what an in-place op may change ------------------------------------------------------------

def _live_slots(indices: torch.Tensor | None, rows: int, pad: int = R.PAD_SLOT_ID) -> list[int]:
    if indices is None:
        return list(range(rows))
    return [s for s in indices.tolist() if s != pad]


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


def _spec_stores(kw) -> list[int]:
    """The slots a speculative-decode call stores states into: those the reference's slot plan
    (SPEC §7) gives its live rows' token positions."""
    lengths = [n for _, n in sequence_bounds(kw["cu_seqlens"], kw["q"].shape[0], "cu_seqlens")]
    plan = spec_slot_plan(kw["spec_state_indices"], kw["num_accepted_tokens"], lengths,
                          kw["state"].shape[0], R.PAD_SLOT_ID)
    return [s for _, stores in plan for s in stores if s is not None]


def _spec_writable(case, kw):
    return {"state": _slot_mask(kw["state"], _spec_stores(kw))}


def _prefill_writable(case, kw):
    if not case["output_final_state"]:     # SPEC §3: the pool is left unchanged
        return {}
    slots = _live_slots(kw["initial_state_indices"], len(case["lengths"]))
    return {"initial_state": _slot_mask(kw["initial_state"], slots)}


def _fwd_writable(case, kw):
    if kw["conv_states"] is None:
        return {}
    slots = _live_slots(kw["cache_indices"], len(case["lengths"]), kw["pad_slot_id"])
    return {"conv_states": _slot_mask(kw["conv_states"], slots, columns=case["W"] - 1)}


def _update_writable(case, kw):
    slots = _live_slots(kw["conv_state_indices"], case["B"], kw["pad_slot_id"])
    columns = None if case["L"] else case["W"] - 1      # speculative: the whole slot shifts
    return {"conv_states": _slot_mask(kw["conv_states"], slots, columns)}


# --- one row of a batch, alone (batch invariance: harness/repeat.py) ---------------------------------
# The same pool (a replica), so the row's slot starts from the same state; its outputs and its slot
# must equal the batch's bit for bit.

def _i32(*values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.int32)


def _slot(indices: torch.Tensor | None, r: int) -> int:
    return r if indices is None else int(indices[r])


def _gating_alone(case, kw, r):
    return dict(kw, a=kw["a"][r:r + 1], b=kw["b"][r:r + 1]), \
        [("g", (0, r), (0, 0)), ("beta", (0, r), (0, 0))]


def _decode_alone(case, kw, r):
    one = dict(kw, q=kw["q"][:, r:r + 1], k=kw["k"][:, r:r + 1], v=kw["v"][:, r:r + 1],
               a=kw["a"][r:r + 1], b=kw["b"][r:r + 1], state_indices=kw["state_indices"][r:r + 1],
               cu_seqlens=None if kw["cu_seqlens"] is None else _i32(0, 1))
    picks = [("out", (r,), (0,))]
    s = _slot(kw["state_indices"], r)
    return one, picks + ([("state", (s,), (s,))] if s >= 0 else [])


def _spec_alone(case, kw, r):
    cu = kw["cu_seqlens"].tolist()
    t0, t1 = cu[r], cu[r + 1]
    tokens = {n: kw[n][t0:t1] for n in ("q", "k", "v", "a", "b")}
    one = dict(kw, **tokens, cu_seqlens=_i32(0, t1 - t0),
               spec_state_indices=kw["spec_state_indices"][r:r + 1],
               num_accepted_tokens=kw["num_accepted_tokens"][r:r + 1])
    picks = [("out", (slice(t0, t1),), (slice(0, t1 - t0),))]
    return one, picks + [("state", (s,), (s,)) for s in _spec_stores(one)]


def _prefill_alone(case, kw, r):
    cu = kw["cu_seqlens"].tolist()
    t0, t1 = cu[r], cu[r + 1]
    tokens = {n: kw[n][:, t0:t1] for n in ("query", "key", "value", "g", "beta")}
    one = dict(kw, **tokens, cu_seqlens=_i32(0, t1 - t0),
               initial_state_indices=kw["initial_state_indices"][r:r + 1])
    s = int(kw["initial_state_indices"][r])
    picks = [("out", (slice(None), slice(t0, t1)), (slice(None), slice(0, t1 - t0)))]
    return one, picks + ([("initial_state", (s,), (s,))] if s >= 0 else [])


def _fwd_alone(case, kw, r):
    one, picks = dict(kw), []
    if kw["query_start_loc"] is not None:
        cu = kw["query_start_loc"].tolist()
        t0, t1 = cu[r], cu[r + 1]
        one.update(x=kw["x"][:, t0:t1], query_start_loc=_i32(0, t1 - t0))
        picks.append(("out", (slice(None), slice(t0, t1)), (slice(None), slice(0, t1 - t0))))
    else:
        one["x"] = kw["x"][r:r + 1]
        picks.append(("out", (r,), (0,)))
    if kw["conv_states"] is not None:
        s = _slot(kw["cache_indices"], r)
        one["cache_indices"] = _i32(s)
        if kw["has_initial_state"] is not None:
            one["has_initial_state"] = kw["has_initial_state"][r:r + 1]
        if s != kw["pad_slot_id"]:
            picks.append(("conv_states", (s,), (s,)))
    return one, picks


def _update_alone(case, kw, r):
    s = _slot(kw["conv_state_indices"], r)
    one = dict(kw, x=kw["x"][r:r + 1], conv_state_indices=_i32(s),
               num_accepted_tokens=(None if kw["num_accepted_tokens"] is None
                                    else kw["num_accepted_tokens"][r:r + 1]))
    picks = [("out", (r,), (0,))]
    return one, picks + ([("conv_states", (s,), (s,))] if s != kw["pad_slot_id"] else [])


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


# --- pinned cases: the SPEC hazards, and every regime and shape the unit tests pin ----------------
# Each runs as a Hypothesis @example in the property suite (so `nox -s correctness` alone sees all
# of them) and as a kernel unit test (tests/kernels), judged by the same comparator.

_DEC5 = with_(DECODE, B=5, slots=[6, -1, 0, 3, 2], n_slots=8, slot_gap=11)
_MIX = with_(PREFILL, lengths=[65, 0, 1, 200, 63, 64], slots=[5, 2, -1, 7, 0, 3], n_slots=9,
             slot_gap=7)
_PRE3 = with_(PREFILL, lengths=[70, 5, 130], slots=[2, 0, 3], n_slots=4, HK=2, G=2, K=32, V=48)
_FWD7 = with_(FWD, lengths=[3, 0, 1, 5, 2, 4, 130], slots=[8, 0, 3, -1, 5, 1, 6], n_slots=9,
              has_initial_state=[True, True, False, True, True, False, True], state_extra=2,
              slot_gap=7, silu=True)
_UPD5 = with_(UPDATE, B=5, slots=[7, -1, 0, 3, 5], n_slots=8, state_extra=3, slot_gap=5, silu=True)
_SWEEP = dict(D=2048, W=4, dtype="bf16", bias=False, silu=True, packed=False, varlen=False,
              lengths=[1, 1, 1], token_major=True, states=False, regime="sweep", seed=0)
_UNDERFLOW = with_(FWD, D=64, packed=True, lengths=[5, 70], slots=[0, 1], n_slots=2, state_extra=0,
                   slot_gap=0, has_initial_state=[True, True], silu=True)
_UPD_FEW = with_(UPDATE, D=2112, packed=True, B=3, slots=[5, -1, 0], n_slots=6, slot_gap=9,
                 state_extra=0, silu=True)

EXAMPLES = {
    "fused_gdn_gating": (
        ("bf16, default softplus", dict(T=200, HV=48, dtype="bf16", regime="large")),
        ("fp16, softplus (2, 5)", dict(T=200, HV=48, dtype="fp16", softplus_beta=2.0,
                                       softplus_threshold=5.0, regime="large")),
        ("fp32, softplus (0.5, 1)", dict(T=200, HV=48, dtype="fp32", softplus_beta=0.5,
                                         softplus_threshold=1.0, regime="large")),
        ("a and b strided", dict(T=50, HV=16, dtype="fp32", views={"a": "padded", "b": "strided"})),
        ("a NaN in a: only its token and head", dict(T=50, HV=16, dtype="bf16",
                                                                  poison=["a", 333, "nan"])),
        ("+inf in b", dict(T=50, HV=16, dtype="fp32", poison=["b", 10, "inf"])),
    ),
    "fused_sigmoid_gating_delta_rule_update": (
        ("H3 beta read per row, not row 0's", DECODE),
        ("H4 K != V state orientation", with_(DECODE, K=64, V=32)),
        ("H6+H7 permuted slots with pads, read and written back to the same slot",
         with_(DECODE, B=4, slots=[3, -1, 0, 1], n_slots=4)),
        ("H2 strided slots", with_(DECODE, slot_gap=64)),
        ("H10 q, k, v with strides of their own", with_(DECODE, qk_strides="distinct")),
        ("H11 V with a vector tail", with_(DECODE, K=40, V=40, G=3)),
        ("bf16 state, G1 K32 V64", with_(_DEC5, HK=2, G=1, K=32, V=64, state_dtype="bf16")),
        ("fp16 state, G2 K64 V32, no l2norm", with_(_DEC5, HK=1, G=2, K=64, V=32, dtype="fp16",
                                                    state_dtype="fp16", l2norm=False)),
        ("fp32, G4 K128 V128", with_(_DEC5, HK=2, G=4, K=128, V=128, dtype="fp32")),
        ("fp16 activations, fp32 state, G4 K32 V256", with_(_DEC5, HK=4, G=4, K=32, V=256,
                                                            dtype="fp16")),
        ("G3 K48 V40, no l2norm", with_(_DEC5, HK=1, G=3, K=48, V=40, l2norm=False)),
        ("softplus parameters honoured: gates across the threshold",
         with_(DECODE, softplus_beta=2.0, softplus_threshold=10.0, regime="large")),
        ("l2norm eps matters: |q|², |k|² ≈ eps", with_(DECODE, regime="small", K=16, V=16)),
        ("cu_seqlens given", with_(DECODE, cu_seqlens=True)),
        ("q, k, v laid out as views", with_(DECODE, views={"q": "padded", "k": "offset",
                                                             "v": "padded"})),
        ("gates laid out as views", with_(DECODE, views={"a": "padded", "b": "strided",
                                                          "A_log": "offset", "dt_bias": "padded",
                                                          "state_indices": "strided"})),
        ("ill-conditioned: nearly parallel keys, β‖k‖² near 2, g ≈ −1e-3",
         with_(_DEC5, regime="illcond", l2norm=False, dtype="fp32")),
        ("a NaN in one row's k: only that row is non-finite", with_(_DEC5, poison=["k", 500, "nan"])),
        ("+inf in one row's a: g = −inf wipes that row's state", with_(_DEC5, poison=["a", 100, "inf"])),
        ("long horizon: 200 chained steps on a bf16 pool (write-back rounding accumulates)",
         with_(DECODE, steps=200, state_dtype="bf16")),
        ("long horizon: 150 chained steps on an fp16 pool, fp16", with_(_DEC5, steps=150, dtype="fp16",
                                                                       state_dtype="fp16", K=16, V=32)),
    ),
    "fused_sigmoid_gating_delta_rule_update_spec": (
        ("§7 resume from position accepted-1, store after token t at position t", SPEC),
        ("§7 every accepted count of S 4, full rows", with_(SPEC, B=4, lengths=[4, 4, 4, 4],
                                                             accepted=[1, 2, 3, 4],
                                                             slots=[[7, 2, 13, 11], [4, 0, 9, 5],
                                                                    [12, 3, 8, 1], [6, 10, 14, 15]],
                                                             n_slots=16)),
        ("§7 rows shorter than S, and an empty row", with_(SPEC, B=4, lengths=[1, 0, 3, 2],
                                                           accepted=[2, 4, 1, 2],
                                                           slots=[[7, 2, 6, 11], [4, 0, 9, 5],
                                                                  [12, 3, 8, 1], [13, 10, -1, 15]],
                                                           n_slots=16)),
        ("§7 pad resume slot: a pad row (zeros, no state read or written)",
         with_(SPEC, slots=[[7, 2, -1, 11], [4, 0, -1, 5], [12, 3, 8, 1]])),
        ("§7 pads at write positions: those states not stored",
         with_(SPEC, slots=[[7, -1, -1, 11], [4, 0, 9, -1], [-1, 3, 8, 1]])),
        ("§7 one draft position (S 1): the decode step", with_(SPEC, S=1, lengths=[1, 1, 0],
                                                               accepted=[1, 1, 1],
                                                               slots=[[7], [4], [12]])),
        ("§7 eight draft positions", with_(SPEC, B=2, S=8, lengths=[8, 5], accepted=[8, 3],
                                           slots=[[7, 2, 13, 11, 0, 16, 3, 9],
                                                  [4, 17, 1, 5, 12, 8, 6, 10]], n_slots=19)),
        ("§7 resume slot also read past the row's tokens", with_(SPEC, lengths=[1, 2, 1],
                                                                 accepted=[4, 3, 2])),
        ("H4 K != V state orientation, G 1", with_(SPEC, HK=2, G=1, K=64, V=32)),
        ("H2 strided slots", with_(SPEC, slot_gap=64)),
        ("H10 q, k, v with strides of their own", with_(SPEC, qk_strides="distinct")),
        ("H11 V with a vector tail, G 3", with_(SPEC, HK=1, G=3, K=40, V=40)),
        ("bf16 state", with_(SPEC, state_dtype="bf16")),
        ("fp16, fp16 state, no l2norm", with_(SPEC, dtype="fp16", state_dtype="fp16",
                                              l2norm=False)),
        ("fp32, G4 K128 V128", with_(SPEC, HK=1, G=4, K=128, V=128, dtype="fp32")),
        ("softplus parameters honoured: gates across the threshold",
         with_(SPEC, softplus_beta=2.0, softplus_threshold=10.0, regime="large")),
        ("l2norm eps matters: |q|², |k|² ≈ eps", with_(SPEC, regime="small", K=16, V=16)),
        ("ill-conditioned: nearly parallel keys, β‖k‖² near 2, g ≈ −1e-3",
         with_(SPEC, regime="illcond", l2norm=False, dtype="fp32")),
        ("a NaN in one draft token's v: that token and the row's later ones non-finite",
         with_(SPEC, poison=["v", 300, "nan"])),
        ("q, k, v laid out as views", with_(SPEC, views={"q": "padded", "k": "offset",
                                                          "v": "padded"})),
        ("gates, indices and counts laid out as views",
         with_(SPEC, views={"a": "padded", "b": "strided", "A_log": "offset", "dt_bias": "padded",
                            "spec_state_indices": "padded", "num_accepted_tokens": "strided",
                            "cu_seqlens": "offset"})),
    ),
    "chunk_gated_delta_rule": (
        ("H4 K != V state orientation", PREFILL),
        ("H9 pad and empty sequences: outputs defined", with_(PREFILL, lengths=[0, 3, 1, 0])),
        ("H2 strided slots", with_(PREFILL, slot_gap=64)),
        ("H10 q, k, v with strides of their own", with_(PREFILL, qk_strides="distinct")),
        ("H11 V with a vector tail", with_(PREFILL, K=40, V=40, G=1)),
        ("varlen mix, G1 K32 V64", with_(_MIX, HK=2, G=1, K=32, V=64)),
        ("varlen mix, G2 K64 V32", with_(_MIX, HK=1, G=2, K=64, V=32)),
        ("varlen mix, G4 K128 V128", with_(_MIX, HK=2, G=4, K=128, V=128)),
        ("varlen mix, G4 K32 V256", with_(_MIX, HK=1, G=4, K=32, V=256)),
        ("one long sequence", with_(_PRE3, lengths=[200], slots=[1], dtype="fp32")),
        ("chunk edges 31-33 and 63-65", with_(_PRE3, lengths=[31, 32, 33, 63, 64, 65],
                                              slots=[0, 1, 2, 3, 4, 5], n_slots=6, dtype="fp32")),
        ("bf16 state, no decay, no l2norm", with_(_PRE3, state_dtype="bf16", decay="zero",
                                                  l2norm=False)),
        ("fp16, fp16 state, strong decay", with_(_PRE3, dtype="fp16", state_dtype="fp16",
                                                 decay="strong")),
        ("fp32, no l2norm", with_(_PRE3, dtype="fp32", l2norm=False)),
        ("fp16 state, strong decay, no l2norm", with_(_PRE3, dtype="fp16", state_dtype="fp16",
                                                      decay="strong", l2norm=False)),
        ("l2norm eps honoured: |q|², |k|² ≈ eps = 1e-3",
         with_(_PRE3, lengths=[70, 5], slots=[0, 1], K=8, V=16, regime="small", eps=1e-3)),
        ("l2norm eps honoured: |q|², |k|² ≈ eps = 1e-5",
         with_(_PRE3, lengths=[70, 5], slots=[0, 1], K=8, V=16, regime="small")),
        ("a -inf and a -1e7 gate inside chunks", with_(_PRE3, lengths=[70, 40], slots=[1, 0],
                                                       K=16, V=16, decay="extreme")),
        ("q, k, v laid out as views", with_(_PRE3, lengths=[70, 9], slots=[1, 0], K=32, V=16,
                                            views={"query": "padded", "value": "offset"})),
        ("g, beta and the offsets laid out as views",
         with_(_PRE3, lengths=[70, 9], slots=[1, 0], K=32, V=16,
               views={"g": "padded", "beta": "strided", "cu_seqlens": "strided",
                      "initial_state_indices": "padded"})),
        ("no final state: the pool is left unchanged (bf16 state)",
         with_(_PRE3, state_dtype="bf16", output_final_state=False)),
        ("no final state: the pool is left unchanged (fp32 state)",
         with_(_PRE3, output_final_state=False)),
        ("ill-conditioned chunks: nearly parallel keys of norm 1.38, β ≥ 0.99, g ≈ −1e-3",
         with_(_PRE3, lengths=[64, 128], slots=[0, 1], n_slots=2, HK=1, G=1, K=8, V=128,
               dtype="fp32", regime="illcond", l2norm=False)),
        ("ill-conditioned chunks, G2 K128 V128, bf16, bf16 state",
         with_(_PRE3, lengths=[100, 40], slots=[1, 0], HK=1, G=2, K=128, V=128,
               state_dtype="bf16", regime="illcond", l2norm=False)),
        ("ill-conditioned chunks under l2norm, fp32", with_(_PRE3, lengths=[130], slots=[2],
                                                            dtype="fp32", regime="illcond")),
        ("a NaN in token 40's key: tokens 32-39 of its chunk stay finite",
         with_(_PRE3, lengths=[80], slots=[1], HK=1, G=2, dtype="fp32", poison=["key", 500, "nan"])),
        ("+inf in a value inside a chunk, G2", with_(_PRE3, lengths=[20, 70], slots=[0, 1],
                                                     poison=["value", 700, "inf"])),
        ("-inf in a beta inside a chunk, no l2norm", with_(_PRE3, lengths=[45], slots=[0],
                                                           l2norm=False, dtype="fp32",
                                                           poison=["beta", 900, "-inf"])),
        ("a NaN gate at a chunk's first token", with_(_PRE3, lengths=[70], slots=[0], HK=1, G=1,
                                                      poison=["g", 458, "nan"])),
    ),
    "causal_conv1d_weight_pack": (
        ("many channel blocks, fp16", dict(D=8192, dtype="fp16")),
        ("fp32", dict(D=64, dtype="fp32")),
        ("a strided weight is read by value", dict(D=64, views={"weight": "strided"})),
    ),
    "causal_conv1d_fwd": (
        ("H1 every optional absent", dict(D=64, W=4, dtype="bf16", bias=False, silu=False,
                                          packed=False, varlen=True, lengths=[5, 0, 70],
                                          states=False, regime="unit", seed=1)),
        ("H2 strided slots, SD", FWD),
        ("H2+H8 strided slots, DS", with_(FWD, layout="DS")),
        ("H6 permuted slots", with_(FWD, slots=[1, 2, 3, 0], has_initial_state=None)),
        ("H11 D with a vector tail", with_(FWD, D=44)),
        ("H9 batch mode, no history", with_(FWD, varlen=False, lengths=[7, 7], slots=[1, -1],
                                            has_initial_state=[True, False], state_extra=0,
                                            token_major=True)),
        ("packed weights", with_(FWD, packed=True)),
        ("many channel blocks, pads, wide SD state", with_(_FWD7, D=8208)),
        ("fp16, DS, channel tail", with_(_FWD7, D=44, dtype="fp16", layout="DS")),
        ("fp32, DS", with_(_FWD7, dtype="fp32", layout="DS")),
        ("width 2", with_(FWD, W=2)),
        ("width 3, no SiLU", with_(FWD, W=3, silu=False)),
        ("width 5", with_(FWD, W=5, silu=True)),
        ("packed fp16", with_(FWD, packed=True, dtype="fp16")),
        ("packed fp32", with_(FWD, packed=True, dtype="fp32")),
        ("batch mode, x with tokens innermost", with_(FWD, varlen=False, lengths=[9, 9],
                                                      token_major=False, slots=[2, 0],
                                                      has_initial_state=[True, False])),
        ("a long sequence over many token tiles", with_(FWD, lengths=[1000], slots=[0], n_slots=1,
                                                        has_initial_state=[True], dtype="fp32",
                                                        D=64, silu=True)),
        ("states without indices or history flags", with_(FWD, indices_given=False, slots=[0, 1],
                                                          lengths=[3, 5], has_initial_state=None)),
        ("pad id -3", with_(_FWD7, pad_slot_id=-3)),
        ("x, bias and the index tensors laid out as views",
         with_(FWD, views={"x": "strided", "bias": "offset", "cache_indices": "strided",
                           "has_initial_state": "padded", "query_start_loc": "padded"})),
        ("SiLU over the whole bf16 range", _SWEEP),
        ("SiLU over the whole bf16 range, packed weights", with_(_SWEEP, packed=True)),
        ("SiLU over the whole fp16 range", with_(_SWEEP, dtype="fp16")),
        ("SiLU over the whole fp32 range", with_(_SWEEP, dtype="fp32")),
        ("subnormal data, packed bf16", with_(_UNDERFLOW, regime="tiny")),
        ("subnormal taps, packed bf16", with_(_UNDERFLOW, regime="tiny_taps")),
        ("products below the normal range, packed bf16", with_(_UNDERFLOW, regime="tiny_products")),
        ("products below the normal range, packed bf16, no SiLU",
         with_(_UNDERFLOW, regime="tiny_products", silu=False)),
        ("subnormal data without a bias, packed bf16 (the fast path's own fallback)",
         with_(_UNDERFLOW, regime="tiny", bias=False)),
        ("a NaN in x: only later outputs of its sequence",
         with_(FWD, poison=["x", 620, "nan"])),
    ),
    "causal_conv1d_update": (
        ("H2 strided slots, SD", UPDATE),
        ("H2+H8 strided slots, DS", with_(UPDATE, layout="DS")),
        ("H7+H9 pads: slot untouched, output defined", with_(UPDATE, slots=[-1, 1, -1])),
        ("H11 D with a vector tail", with_(UPDATE, D=44, indices_given=False, slots=[0, 1, 2])),
        ("speculative decode", with_(UPDATE, L=3, state_extra=2, accepted=[1, 2, 3])),
        ("packed weights, few rows", with_(UPDATE, packed=True, B=1, slots=[1])),
        ("cancellation: |y| ≪ Σ|terms| (the tolerance's γ_n term)",
         dict(B=1, D=1, L=0, W=5, bias=True, dtype="fp32", indices_given=False, layout="SD",
              n_slots=1, packed=False, regime="unit", seed=94294, silu=False, slot_gap=0, slots=[0],
              state_extra=0, x_row_pad=0)),
        ("many channel blocks, pads, wide SD state", with_(_UPD5, D=8208)),
        ("fp16, DS, channel tail", with_(_UPD5, D=44, dtype="fp16", layout="DS")),
        ("fp32, SD", with_(_UPD5, dtype="fp32")),
        ("speculative, DS, with a pad", with_(UPDATE, D=40, B=4, L=3, accepted=[1, 2, 3, 2],
                                              slots=[5, 0, -1, 2], n_slots=6, state_extra=2,
                                              layout="DS", slot_gap=3, silu=True)),
        ("speculative, fp16", with_(UPDATE, D=40, B=4, L=3, accepted=[1, 2, 3, 2],
                                    slots=[5, 0, 4, 2], n_slots=6, state_extra=2, dtype="fp16")),
        ("speculative, fp32, DS", with_(UPDATE, D=40, B=4, L=3, accepted=[3, 1, 2, 2],
                                        slots=[5, 0, 1, 2], n_slots=6, state_extra=2,
                                        dtype="fp32", layout="DS")),
        ("width 2, identity indices", with_(UPDATE, W=2, B=3, indices_given=False, slots=[0, 1, 2])),
        ("subnormal data without a bias, packed bf16", with_(_UPD_FEW, regime="tiny", bias=False)),
        ("-inf in one row's x: only that row", with_(UPDATE, poison=["x", 400, "-inf"])),
        ("width 3", with_(UPDATE, W=3, B=3, indices_given=False, slots=[0, 1, 2])),
        ("width 5", with_(UPDATE, W=5, B=3, indices_given=False, slots=[0, 1, 2])),
        ("packed, no bias", with_(UPDATE, packed=True, bias=False, silu=True)),
        ("x rows sliced from a wider buffer", with_(UPDATE, D=40, dtype="fp32", x_row_pad=60)),
        ("one channel, x strided", with_(UPDATE, D=1, dtype="fp32", views={"x": "strided"})),
        ("pad id 1000", with_(_UPD5, pad_slot_id=1000)),
        ("indices, bias and accepted counts laid out as views",
         with_(UPDATE, D=40, B=4, L=3, accepted=[1, 2, 3, 2], slots=[5, 0, 4, 2], n_slots=6,
               state_extra=2, views={"conv_state_indices": "strided", "bias": "padded",
                                     "num_accepted_tokens": "offset"})),
        ("packed bf16, few rows, 66 channel blocks", _UPD_FEW),
        ("packed bf16, one row", with_(_UPD_FEW, B=1, slots=[5])),
        ("packed bf16, four rows, no SiLU", with_(_UPD_FEW, B=4, slots=[5, -1, 0, 2], silu=False)),
        ("subnormal taps, packed bf16, one row", with_(_UPD_FEW, D=64, B=1, slots=[0],
                                                       regime="tiny_taps")),
        ("products below the normal range, packed bf16, 8 rows",
         with_(_UPD_FEW, D=64, B=8, slots=list(range(8)), n_slots=8, regime="tiny_products")),
        ("subnormal data, packed bf16, 8 rows, no SiLU",
         with_(_UPD_FEW, D=64, B=8, slots=list(range(8)), n_slots=8, regime="tiny", silu=False)),
    ),
}


def _step_conditioning(case, kw):
    return conditioning(kw["k"], torch.sigmoid(kw["b"].double()),
                        use_l2norm=kw["use_qk_l2norm_in_kernel"])


def _prefill_conditioning(case, kw):
    return conditioning(kw["key"], kw["beta"], kw["g"], kw["cu_seqlens"],
                        kw["use_qk_l2norm_in_kernel"], kw["eps"])


def _pack_reference(weight, *, precision):
    return R.causal_conv1d_weight_pack(weight)     # a permutation: the same in every precision


def _spec(name, **kw) -> OpSpec:
    ref = _pack_reference if name == "causal_conv1d_weight_pack" else getattr(R, name)
    return OpSpec(name=name, reference=ref, errors=ERRORS[name], examples=EXAMPLES[name], **kw)


_GDN_IDS = ("HK", "G", "K", "V", "dtype", "state_dtype", "l2norm", "slot_gap", "regime")
_CONV_IDS = ("D", "W", "dtype", "bias", "silu", "packed", "layout", "slot_gap", "regime")

REGISTRY: dict[str, OpSpec] = {s.name: s for s in (
    _spec("fused_gdn_gating", cases=G.gating_cases(), inputs=G.GATING_INPUTS,
          results=("g", "beta"), writable=_nothing, alone=_gating_alone, rows=lambda c: c["T"],
          id_keys=("T", "HV", "dtype", "softplus_beta", "softplus_threshold", "regime", "poison")),
    _spec("fused_sigmoid_gating_delta_rule_update", cases=G.decode_cases(),
          inputs=G.DECODE_INPUTS,
          results=("out", "state"), writable=_decode_writable, alone=_decode_alone,
          rows=lambda c: c["B"], conditioning=_step_conditioning, chain="state",
          id_keys=("B", *_GDN_IDS, "qk_strides", "poison")),
    _spec("fused_sigmoid_gating_delta_rule_update_spec", cases=G.spec_cases(),
          inputs=G.SPEC_INPUTS,
          results=("out", "state"), writable=_spec_writable, alone=_spec_alone,
          rows=lambda c: c["B"], conditioning=_step_conditioning,
          id_keys=("B", "S", "lengths", "accepted", *_GDN_IDS, "qk_strides", "poison")),
    _spec("chunk_gated_delta_rule", cases=G.prefill_cases(),
          inputs=G.PREFILL_INPUTS,
          results=("out", "initial_state"), writable=_prefill_writable, alone=_prefill_alone,
          rows=lambda c: len(c["lengths"]), conditioning=_prefill_conditioning,
          id_keys=("lengths", *_GDN_IDS, "decay", "eps", "qk_strides", "poison"), gemm=True),
    _spec("causal_conv1d_weight_pack", cases=C.pack_cases(), inputs=C.PACK_INPUTS,
          results=("packed",), writable=_nothing, exact=frozenset({"packed"}),
          id_keys=("D", "W", "dtype")),
    _spec("causal_conv1d_fwd", cases=C.fwd_cases(),
          inputs=C.FWD_INPUTS,
          results=("out", "conv_states"), writable=_fwd_writable, exact=frozenset({"conv_states"}),
          alone=_fwd_alone, rows=lambda c: len(c["lengths"]),
          accumulation=_conv_accumulation(R.causal_conv1d_fwd),
          id_keys=("lengths", "varlen", *_CONV_IDS, "states", "poison")),
    _spec("causal_conv1d_update", cases=C.update_cases(),
          inputs=C.UPDATE_INPUTS,
          results=("out", "conv_states"), writable=_update_writable, exact=frozenset({"conv_states"}),
          alone=_update_alone, rows=lambda c: c["B"],
          accumulation=_conv_accumulation(R.causal_conv1d_update),
          id_keys=("B", "L", *_CONV_IDS, "poison")),
)}
