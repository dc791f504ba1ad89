"""Quality of the case strategies, in the spirit of Hypothesis's own tests/quality: each hazard
region the property suite relies on must actually be drawn by the op's strategy
(harness.registry.REGISTRY[op].cases), and every drawn case must build and be accepted by the
float64 reference.

A region test asks `hypothesis.find` for a drawn case in the region, within a fixed number of
derandomized draws (no database, generation only: the first hit is enough, so nothing is shrunk).
NoSuchExample means the strategy does not reach the region (or reaches it too rarely to be relied
on): that is a defect of the strategy, to be fixed in cases/, never by weakening the test here.
Predicates look at the *completed* description (cases.complete: what the builder sees), and the
optional-argument tests at the built keyword arguments (whether the op receives None or a tensor).
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, Phase, find, given, settings
from hypothesis import strategies as st
from hypothesis.errors import NoSuchExample

import cases
import reference as R
from harness.registry import REGISTRY

DECODE = "fused_sigmoid_gating_delta_rule_update"
PREFILL = "chunk_gated_delta_rule"
GATING = "fused_gdn_gating"
PACK = "causal_conv1d_weight_pack"
FWD = "causal_conv1d_fwd"
UPDATE = "causal_conv1d_update"
SPEC = "fused_sigmoid_gating_delta_rule_update_spec"
SHORT = {GATING: "gating", DECODE: "decode", PREFILL: "prefill", PACK: "pack", FWD: "fwd",
         UPDATE: "update", SPEC: "spec"}

# Draws allowed per region. The rarest region below (prefill eps != 1e-5 under l2norm in regime
# "small") is drawn in about 3% of cases and each chunk edge in about 5% (measured over 3000 random
# draws), so a miss in this many draws has odds below 1e-12; a region rarer than that is not one the
# property suite's runs (150 cases per op in CI) can be said to cover.
MAX_EXAMPLES = 1000
FIND = settings(max_examples=MAX_EXAMPLES, database=None, derandomize=True,
                phases=[Phase.generate], deadline=None)


def reach(op: str, region: str, predicate) -> dict:
    """A drawn case of `op` whose completed description satisfies `predicate`; fails the test
    naming the region when none is drawn. The case found must build."""
    try:
        case = find(REGISTRY[op].cases, lambda c: predicate(cases.complete(op, c)), settings=FIND)
    except NoSuchExample:
        pytest.fail(f"{op}: the strategy drew no case in region [{region}] in {MAX_EXAMPLES} "
                    f"derandomized draws", pytrace=False)
    cases.build(op, case)
    return case


def _param(op: str, *rest, tag: str):
    return pytest.param(op, *rest, id=f"{SHORT[op]}-{tag}")


def _pads(c: dict) -> bool:
    return -1 in c["slots"]


def _spec_rows(c: dict):
    """(tokens, accepted, slot row) of each row of a speculative-decode case."""
    return zip(c["lengths"], c["accepted"], c["slots"])


# --- chunk edges ---------------------------------------------------------------------------------

@pytest.mark.parametrize("length", [31, 32, 33, 63, 64, 65], ids=lambda n: f"length{n}")
def test_prefill_reaches_chunk_edge(length):
    reach(PREFILL, f"a sequence of length {length}", lambda c: length in c["lengths"])


# --- pad rows ------------------------------------------------------------------------------------

@pytest.mark.parametrize("op, predicate", [
    _param(DECODE, _pads, tag="state_indices"),
    _param(PREFILL, _pads, tag="initial_state_indices"),
    _param(FWD, lambda c: c["states"] and c["indices_given"] and _pads(c),
           tag="cache_indices-with-states"),
    _param(UPDATE, lambda c: c["indices_given"] and _pads(c), tag="conv_state_indices"),
    _param(SPEC, lambda c: any(n and row[a - 1] == -1 for n, a, row in _spec_rows(c)),
           tag="spec_state_indices-resume"),
])
def test_reaches_pad_rows(op, predicate):
    reach(op, "a pad row (-1 among the slot indices)", predicate)


# --- K != V and GQA groups ---------------------------------------------------------------------

@pytest.mark.parametrize("op", [DECODE, PREFILL, SPEC], ids=SHORT.get)
def test_reaches_k_not_v(op):
    reach(op, "K != V", lambda c: c["K"] != c["V"])


@pytest.mark.parametrize("op, group", [_param(op, g, tag=f"G{g}") for op in (DECODE, PREFILL, SPEC)
                                       for g in (1, 2, 3, 4)])
def test_reaches_gqa_group(op, group):
    reach(op, f"GQA group size G={group}", lambda c: c["G"] == group)


# --- conv-state layouts ------------------------------------------------------------------------

@pytest.mark.parametrize("op, predicate", [
    _param(FWD, lambda c: c["states"] and c["layout"] == "DS" and c["state_extra"] > 0,
           tag="DS-extra-columns"),
    _param(UPDATE, lambda c: c["layout"] == "DS" and c["state_extra"] > 0, tag="DS-extra-columns"),
])
def test_reaches_ds_layout_with_extra_columns(op, predicate):
    reach(op, "a DS conv state with columns beyond W-1 (state_extra > 0)", predicate)


# --- value regimes -----------------------------------------------------------------------------

@pytest.mark.parametrize("op, regime", [_param(op, r, tag=r) for op in (FWD, UPDATE)
                                        for r in ("tiny", "tiny_taps", "tiny_products")])
def test_conv_reaches_underflow_regime(op, regime):
    reach(op, f'regime "{regime}"', lambda c: c["regime"] == regime)


@pytest.mark.parametrize("op", [DECODE, PREFILL, SPEC], ids=SHORT.get)
def test_gdn_reaches_small_regime_under_l2norm(op):
    # "small": Σq², Σk² about eps, where eps changes the result; only under the in-kernel l2norm
    reach(op, 'regime "small" with use_qk_l2norm_in_kernel',
          lambda c: c["regime"] == "small" and c["l2norm"])


@pytest.mark.parametrize("op", [GATING, DECODE, PREFILL, FWD, UPDATE, SPEC], ids=SHORT.get)
def test_reaches_large_regime(op):
    reach(op, 'regime "large"', lambda c: c["regime"] == "large")


def test_every_op_with_a_regime_axis_is_checked_for_large():
    with_regime = {op for op, (defaults, _) in cases.BUILDERS.items() if "regime" in defaults}
    assert with_regime == {GATING, DECODE, PREFILL, FWD, UPDATE, SPEC}


@pytest.mark.parametrize("op", [DECODE, PREFILL, SPEC], ids=SHORT.get)
@pytest.mark.parametrize("l2norm", [True, False], ids=["l2norm", "no_l2norm"])
def test_gdn_reaches_ill_conditioned_regime(op, l2norm):
    reach(op, f'regime "illcond", l2norm {l2norm}',
          lambda c: c["regime"] == "illcond" and c["l2norm"] == l2norm)


def test_prefill_reaches_ill_conditioned_chunks_of_two_chunks_or_more():
    """β‖k‖² near 2 over a sequence that spans a chunk boundary (ours: 32 tokens, vLLM's: 64)."""
    reach(PREFILL, 'regime "illcond", no l2norm, a live sequence over 64 tokens',
          lambda c: c["regime"] == "illcond" and not c["l2norm"]
          and any(n > 64 and s != -1 for n, s in zip(c["lengths"], c["slots"])))


@pytest.mark.parametrize("op", [_param(op, tag="conv") for op in (FWD, UPDATE)])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
def test_conv_reaches_tiny_regime_on_the_shipped_shape_with_and_without_bias(op, bias):
    """Without a bias, tiny data reach the bf16 fast path's own underflow fallback; with one, the
    tiny bias sends the call to the fp32 path first."""
    reach(op, f'regime "tiny" with bias {bias} at W 4 in whole 32-channel blocks, bf16',
          lambda c: c["regime"] == "tiny" and c["bias"] == bias and c["W"] == 4
          and c["D"] % 32 == 0 and c["dtype"] == "bf16")


def _poison_inputs(op):
    from cases import gdn
    return {GATING: gdn.GATING_POISON, DECODE: gdn.STEP_POISON, SPEC: gdn.STEP_POISON,
            PREFILL: gdn.PREFILL_POISON, FWD: ("x",), UPDATE: ("x",)}[op]


@pytest.mark.parametrize("op, arg", [_param(op, a, tag=a)
                                     for op in (GATING, DECODE, SPEC, PREFILL, FWD, UPDATE)
                                     for a in _poison_inputs(op)])
def test_reaches_a_non_finite_value_in_each_token_input(op, arg):
    reach(op, f"a NaN or infinity in {arg}", lambda c: (c["poison"] or [None])[0] == arg)


@pytest.mark.parametrize("kind", ["nan", "inf", "-inf"])
def test_prefill_reaches_a_non_finite_value_inside_a_chunk_of_a_live_sequence(kind):
    """Past the first token of a live sequence of more than 32 tokens: an earlier token of its
    chunk must stay finite."""
    def inside(c):
        if not c["poison"] or c["poison"][2] != kind or c["poison"][0] not in ("key", "value", "beta"):
            return False
        T = sum(c["lengths"])
        token = c["poison"][1] * T // 1000
        start = 0
        for n, s in zip(c["lengths"], c["slots"]):
            if start < token < start + n and n > 32 and s != -1:
                return True
            start += n
        return False
    reach(PREFILL, f"{kind} in key, value or beta inside a live sequence of over 32 tokens", inside)


def test_prefill_reaches_thousands_of_tokens_in_the_thorough_profile(monkeypatch):
    from cases import axes
    monkeypatch.setattr(axes, "THOROUGH", True)
    reach(PREFILL, "a live sequence of 1000 tokens or more (thorough profile)",
          lambda c: any(n >= 1000 and s != -1 for n, s in zip(c["lengths"], c["slots"])))
    monkeypatch.setattr(axes, "THOROUGH", False)
    with pytest.raises(BaseException, match="drew no case"):     # not in the everyday profiles
        reach(PREFILL, "1000 tokens or more", lambda c: max(c["lengths"]) >= 1000)


@pytest.mark.parametrize("state", ["bf16", "fp16"])
def test_decode_reaches_long_chains_with_a_low_precision_pool(state):
    reach(DECODE, f"a chain of 100 or more steps with a {state} pool",
          lambda c: c["steps"] >= 100 and c["state_dtype"] == state)


# --- prefill eps and decay ---------------------------------------------------------------------

def test_prefill_reaches_eps_other_than_default():
    reach(PREFILL, "l2norm with eps != 1e-5", lambda c: c["eps"] != 1e-5 and c["l2norm"])


def test_prefill_reaches_eps_other_than_default_where_it_matters():
    reach(PREFILL, 'l2norm with eps != 1e-5 in regime "small"',
          lambda c: c["eps"] != 1e-5 and c["l2norm"] and c["regime"] == "small")


def test_prefill_reaches_extreme_decay():
    # a live sequence of at least 8 tokens, so that the -inf gate and the -1e7 gates fall on
    # different tokens of a sequence whose state is read and written
    reach(PREFILL, 'decay "extreme" in a live sequence of 8 or more tokens',
          lambda c: c["decay"] == "extreme" and any(n >= 8 and s != -1
                                                    for n, s in zip(c["lengths"], c["slots"])))


@pytest.mark.parametrize("lengths, slots, tokens", [
    ([1], [0], (0, 0)), ([2], [0], (1, 1)), ([3], [0], (2, 2)), ([5], [0], (3, 3)),
    ([9], [0], (3, 6)), ([4, 9], [-1, 0], (7, 10)), ([20, 9], [1, -1], (3, 13)),
])
def test_extreme_decay_puts_the_minus_inf_gate_in_the_longest_live_sequence(lengths, slots, tokens):
    """The −∞ gate is never overwritten by the −1e7 ones (head 0 keeps it when they share a
    token) and lands in a sequence with a slot."""
    g = cases.build(PREFILL, dict(lengths=lengths, slots=slots, n_slots=2, decay="extreme"))["g"][0]
    at_inf, at_big = tokens
    assert g[at_inf, 0] == -float("inf") and (g == -float("inf")).sum() == 1
    assert (g[at_big, 1:] == -1e7).all() and (g == -1e7).sum() == g.shape[1] - (at_big == at_inf)


# --- optional arguments absent and present -----------------------------------------------------

def _has_states(kw: dict) -> bool:
    return kw["conv_states"] is not None


OPTIONALS = [
    # (op, argument, context the argument is meaningful in)
    (FWD, "bias", None),
    (FWD, "conv_states", None),
    (FWD, "query_start_loc", None),
    (FWD, "cache_indices", _has_states),
    (FWD, "has_initial_state", _has_states),
    (UPDATE, "bias", None),
    (UPDATE, "conv_state_indices", None),
    (UPDATE, "num_accepted_tokens", None),
    (DECODE, "cu_seqlens", None),
]


@pytest.mark.parametrize("op, arg, context, present", [
    _param(op, arg, context, present, tag=f"{arg}-{'present' if present else 'None'}"
           + ("-with-conv_states" if context else ""))
    for op, arg, context in OPTIONALS for present in (False, True)])
def test_reaches_optional(op, arg, context, present):
    def predicate(c):
        kw = cases.build(op, c)
        return (kw[arg] is not None) == present and (context is None or context(kw))
    reach(op, f"{arg} {'given' if present else 'None'}", predicate)


# --- packed weights, speculative update, shipped shape -----------------------------------------

@pytest.mark.parametrize("op", [FWD, UPDATE], ids=SHORT.get)
def test_reaches_packed_weights(op):
    reach(op, "is_weight_packed", lambda c: c["packed"])


def test_update_reaches_speculative_with_fewer_accepted_than_drafted():
    reach(UPDATE, "L > 0 with num_accepted_tokens < L in some row",
          lambda c: c["L"] > 0 and any(a < c["L"] for a in c["accepted"]))


@pytest.mark.parametrize("op, D", [_param(op, D, tag=f"D{D}") for op in (FWD, UPDATE)
                                   for D in (32, 64, 96, 2048)])
def test_conv_reaches_shipped_shape(op, D):
    reach(op, f"the shipped shape: bf16, W=4, D={D}",
          lambda c: c["dtype"] == "bf16" and c["W"] == 4 and c["D"] == D)


# --- every drawn case builds and the oracle accepts it -----------------------------------------
# The float64 reference runs every draw in well under a second here (the slowest measured, a decode
# with V = 256, about 0.15 s), so no draw is filtered by size.

@pytest.mark.parametrize("op", list(REGISTRY), ids=SHORT.get)
@settings(max_examples=25, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_every_drawn_case_builds_and_the_oracle_accepts_it(op, data):
    spec = REGISTRY[op]
    case = data.draw(spec.cases, label="case")
    kwargs = cases.build(op, case)
    results = spec.run_reference(kwargs, R.ORACLE)
    assert set(results) == set(spec.results)


@pytest.mark.parametrize("op, arg, how", [
    _param(op, arg, how, tag=f"{arg}-{how}") for op in SHORT for arg in REGISTRY[op].inputs
    for how in cases.VIEWS if how != "broadcast"])
def test_reaches_every_view_of_every_input(op, arg, how):
    """Each tensor input of each op is drawn in each layout (SPEC: Views); the view is applied
    where the argument is present in the case."""
    def region(c):
        return c["views"].get(arg) == how and cases.build(op, c).get(arg) is not None
    reach(op, f"{arg} {how}", region)


@pytest.mark.parametrize("op, arg", [
    _param(op, arg, tag=arg) for op, args in ((GATING, ("A_log", "a", "b", "dt_bias")),
                                              (DECODE, ("q", "k", "v", "a", "b")),
                                              (SPEC, ("q", "k", "v", "a", "b")),
                                              (PREFILL, ("query", "key", "value", "g", "beta")),
                                              (FWD, ("x", "weight", "bias")),
                                              (UPDATE, ("x", "weight", "num_accepted_tokens")))
    for arg in args])
def test_reaches_broadcast_of_read_only_inputs(op, arg):
    def region(c):
        return c["views"].get(arg) == "broadcast" and cases.build(op, c).get(arg) is not None
    reach(op, f"{arg} broadcast", region)


def test_prefill_reaches_no_final_state():
    reach(PREFILL, "output_final_state False with a live sequence",
          lambda c: not c["output_final_state"] and any(
              n and s != -1 for n, s in zip(c["lengths"], c["slots"])))


@pytest.mark.parametrize("op", [_param(FWD, tag="fwd"), _param(UPDATE, tag="update")])
@pytest.mark.parametrize("pad_id", [-3, 1000])
def test_conv_reaches_pad_ids_other_than_minus_one(op, pad_id):
    reach(op, f"pad_slot_id {pad_id} with a pad row",
          lambda c: c["pad_slot_id"] == pad_id and c["indices_given"] and _pads(c)
          and c.get("states", True))


# --- speculative decode (SPEC §7) ----------------------------------------------------------------

@pytest.mark.parametrize("S", range(1, 9), ids=lambda S: f"S{S}")
def test_spec_reaches_draft_positions(S):
    reach(SPEC, f"S = {S} with a full row", lambda c: c["S"] == S and S in c["lengths"])


@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_spec_reaches_every_resume_position(where):
    """A live row with tokens resuming from the first, an inner, or the last draft position."""
    def at(a, S):
        return {"first": a == 1, "middle": 1 < a < S, "last": a == S and S > 1}[where]
    reach(SPEC, f"a live row resuming from the {where} position",
          lambda c: any(n and row[a - 1] != -1 and at(a, c["S"]) for n, a, row in _spec_rows(c)))


@pytest.mark.parametrize("region, predicate", [
    ("a row with fewer tokens than S", lambda c: any(0 < n < c["S"] for n in c["lengths"])),
    ("a row with no tokens", lambda c: 0 in c["lengths"] and c["S"] > 1),
    ("a live row resuming past its last token",
     lambda c: any(0 < n < a and row[a - 1] != -1 for n, a, row in _spec_rows(c))),
    ("a live row with a pad write position among its tokens",
     lambda c: any(row[a - 1] != -1 and -1 in row[:n] for n, a, row in _spec_rows(c))),
    ("a bf16 state with two or more stored positions",
     lambda c: c["state_dtype"] == "bf16" and max(c["lengths"]) >= 2),
    ("an fp16 state with two or more stored positions",
     lambda c: c["state_dtype"] == "fp16" and max(c["lengths"]) >= 2),
], ids=lambda x: x if isinstance(x, str) else "")
def test_spec_reaches(region, predicate):
    reach(SPEC, region, predicate)
