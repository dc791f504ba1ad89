"""The README's "Test your own kernel" example (examples/my_kernels.py), run through the real
harness as a user would run it: `pytest tests/properties --backend examples.my_kernels:MyKernels`
in a subprocess, then its report read back. The right kernels pass where they run, the rest is
`unsupported` with its reason, and the same kernels with a deliberate bug fail."""

import json

import pandas as pd
import pytest

from harness import runner
from harness.registry import REGISTRY
from tests.properties import child

BACKEND = "examples.my_kernels:MyKernels"
LIMIT = "my_kernels checks 'a: bf16/fp16 activations only'"
GATING = "fused_gdn_gating"


def run_suite(tmp_path, select, *options, bug=None):
    """The property suite on the example (dev profile), selected with -k; (process, report)."""
    return child.run(tmp_path / "report.csv", select, "--backend", BACKEND, *options,
                     MY_KERNELS_BUG=bug)


@pytest.fixture(scope="module")
def survey(tmp_path_factory):
    return run_suite(tmp_path_factory.mktemp("right"),
                     "fused_gdn_gating or causal_conv1d_weight_pack or causal_conv1d_update",
                     "--survey")


def test_the_kernels_it_implements_pass(survey):
    run, rows = survey
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    for op in (GATING, "causal_conv1d_weight_pack"):
        ran = rows[(rows["op"] == op) & (rows["status"] != "unsupported")]
        assert set(ran["status"]) == {"pass"}, ran[ran["status"] != "pass"][["case_id", "reason"]]
        assert set(ran["kind"]) == {"case", "error", "schema"}        # drawn, error inputs, opcheck
        assert (ran["kind"] == "case").sum() >= 10
    assert (rows["backend"] == BACKEND).all() and "stand-ins" in rows["backend_info"][0]


def test_an_op_it_does_not_implement_is_unsupported_and_its_test_skipped(survey):
    run, rows = survey
    update = rows[rows["op"] == "causal_conv1d_update"]
    contract = update[~update["reason"].str.contains("a limit of ours only")]
    assert len(contract) and set(update["status"]) == {"unsupported"}
    assert (contract["reason"] == f"{BACKEND} does not implement causal_conv1d_update").all()
    assert "1 skipped" in run.stdout and "does not implement causal_conv1d_update" in run.stdout


def test_a_case_outside_its_limits_is_unsupported_with_its_reason_and_its_nearest_runs(survey):
    _, rows = survey
    cases = rows[(rows["op"] == GATING) & (rows["kind"] == "case")]
    fp32 = cases[cases["dtype"] == "fp32"]
    assert len(fp32) and set(fp32["status"]) == {"unsupported"} and (fp32["reason"] == LIMIT).all()
    spec = REGISTRY[GATING]
    pinned = dict(spec.examples)["fp32, softplus (0.5, 1)"]
    near = dict(spec.complete(pinned), dtype="bf16")         # MyKernels.NEAREST: the same, in bf16
    status = cases.set_index("case_id")["status"]
    assert status[runner.case_id(spec, pinned)] == "unsupported"
    assert status[runner.case_id(spec, near)] == "pass"


def test_a_wrong_kernel_fails(tmp_path):
    """MY_KERNELS_BUG=drop_dt_bias: g computed without dt_bias. A survey records every such case
    as failing on g (beta is still right); a plain run fails the test with the repro line."""
    run, rows = run_suite(tmp_path, "test_fused_gdn_gating and not schema", "--survey",
                          bug="drop_dt_bias")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]   # a survey records
    ran = rows[(rows["kind"] == "case") & (rows["status"] != "unsupported")]
    # an element of g that depends on dt_bias: not with T = 0, nor the element whose a is
    # poisoned (NaN, +inf, -inf give NaN, -inf, 0 with or without dt_bias; CI drew T1-HV1 cases
    # whose one element was such)
    poison = ran["poison"] if "poison" in ran else pd.Series(None, index=ran.index)
    poisoned_a = poison.map(lambda p: isinstance(p, str) and json.loads(p)[0] == "a")
    has_tokens = ran["g_numel"].astype(int) - poisoned_a.astype(int) > 0
    assert has_tokens.sum() >= 10 and (ran[has_tokens]["status"] == "fail").all()
    assert ran[has_tokens]["reason"].str.fullmatch(r"g: max error \S+ > tolerance .*").all()
    assert (ran[~has_tokens]["status"] == "pass").all()    # nothing to get wrong
    assert set(rows[rows["kind"] == "error"]["status"]) <= {"pass", "unsupported"}

    run, rows = run_suite(tmp_path, "test_fused_gdn_gating and not schema and not errors",
                          bug="drop_dt_bias")
    assert run.returncode == 1 and "1 failed" in run.stdout, run.stdout[-3000:]
    assert "[fail] g: max error" in run.stdout and f"--backend {BACKEND}" in run.stdout
