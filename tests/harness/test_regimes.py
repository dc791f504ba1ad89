"""The hard regimes, end to end through the runner, on test doubles: a rounding bias fails in one
call, a chain of calls shows what each step loses, a non-finite value must stay causal, and every
GDN row records how ill-conditioned its case is."""

import pytest

from cases.pinned import DECODE, PREFILL, with_
from harness import backends, runner

D = "tests.harness.doubles:"
UPDATE = "fused_sigmoid_gating_delta_rule_update"


def run(op, double, case):
    return runner.run_case(op, backends.make(D + double), "", case)


@pytest.mark.parametrize("state", ["bf16", "fp16"])
def test_a_state_written_back_toward_zero_fails_in_one_call_on_its_bias(state):
    case = with_(DECODE, state_dtype=state)
    assert run(UPDATE, "FP32Reference", case)["status"] == "pass"
    row = run(UPDATE, "TowardZero", case)
    assert row["status"] == "fail" and "state: rounding bias" in row["reason"], row["reason"]
    assert row["state_bias_mag"] < -0.4 < row["state_base_bias_mag"]
    assert row["state_max_abs"] <= row["state_tol"]          # the size criteria alone pass it


def test_a_chain_accumulates_what_each_step_loses():
    """150 steps on a bf16 pool: the truncating double fails on the size of its error (the bias
    criterion is blind after many steps, where the baseline's own distance is ~1 ulp)."""
    case = with_(DECODE, steps=150, state_dtype="bf16", B=2, slots=[1, 0], n_slots=2, K=16, V=16)
    good = run(UPDATE, "FP32Reference", case)
    assert good["status"] == "pass", good["reason"]
    bad = run(UPDATE, "TowardZero", case)
    assert bad["status"] == "fail" and "state: max error" in bad["reason"], bad["reason"]
    assert bad["out_numel"] == good["out_numel"] == 150 * 2 * 4 * 16    # every step's outputs (B 2, HV 4, V 16)


@pytest.mark.parametrize("op, case", [
    ("chunk_gated_delta_rule", with_(PREFILL, lengths=[80], slots=[0], n_slots=1,
                                     poison=["key", 500, "nan"])),
    (UPDATE, with_(DECODE, poison=["v", 600, "inf"])),
])
def test_a_non_finite_value_spread_to_an_earlier_token_fails(op, case):
    assert run(op, "FP32Reference", case)["status"] == "pass"
    row = run(op, "Acausal", case)
    assert row["status"] == "fail" and "non-finite where the baseline is not" in row["reason"]


@pytest.mark.parametrize("regime, l2norm, low, high", [("unit", True, 0.0, 1.0),
                                                       ("illcond", False, 1.8, 2.0)])
def test_prefill_rows_record_the_conditioning(regime, l2norm, low, high):
    case = with_(PREFILL, lengths=[64, 128], slots=[0, 1], n_slots=2, HK=1, G=1, K=8, V=128,
                 dtype="fp32", regime=regime, l2norm=l2norm)
    row = run("chunk_gated_delta_rule", "FP32Reference", case)
    assert low < row["max_beta_k2"] < high and row["chunk_cond"] > 0
    if regime == "illcond":
        assert row["chunk_cond"] > 100
