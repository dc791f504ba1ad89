"""The fuzzer (harness/fuzz.py): each class of call is detected on a test double built to produce
it, guard regions see writes around and inside a strided view, and the same seed gives the same
calls. Everything runs on fused_gdn_gating's smallest base case (a, b [2, 3] fp32)."""

import pytest
import torch

from harness import fuzz
from harness.isolation import Isolated
from harness.registry import REGISTRY
from tests.harness import doubles

D = "tests.harness.doubles:"
OP = "fused_gdn_gating"
BASE = dict(T=2, HV=3, dtype="fp32")
VALID = "noncontiguous/tensor@a"               # the reference accepts it: a strided view
INVALID = "error:b with a head too many"       # the reference rejects it, naming b


def call(*corruptions, seed=0):
    return dict(op=OP, variant="", base=BASE, corruptions=list(corruptions), seed=seed)


@pytest.fixture(scope="module")
def worker():
    w = Isolated(timeout=20)
    yield w
    w.close()


def test_the_chosen_corruptions_are_what_the_tests_need():
    spec = REGISTRY[OP]
    assert fuzz.reference_verdict(spec, fuzz.build_call(OP, call(VALID)).ref_kwargs)[0] is not None
    oracle, why = fuzz.reference_verdict(spec, fuzz.build_call(OP, call(INVALID)).ref_kwargs)
    assert oracle is None and why.startswith("RuntimeError: b:")


@pytest.mark.parametrize("backend,corruption,expected", [
    ("FP32Reference", VALID, "ok_valid"),
    ("FP32Reference", INVALID, "clean_error"),
    ("WritesPastTheEnd", VALID, "oob_write"),      # writes one byte into the guard after A_log
    ("Accepting", INVALID, "accepted_invalid"),    # returns on a call the reference rejects
    ("Mumbling", INVALID, "unnamed_error"),        # raises "invalid input"
    ("Aborting", VALID, "crash"),                  # os.abort() in the worker
    ("Perturbed", VALID, "wrong_result"),          # 1% off on a valid corrupted call
])
def test_each_class_is_detected(worker, backend, corruption, expected):
    row, = fuzz.run_calls([call(corruption)], D + backend, worker=worker)
    assert row["class"] == expected, row
    assert row["repro"].startswith(f"python -m harness fuzz --backend {D}{backend} --op {OP} ")


def test_a_hang_is_a_hang():
    row, = fuzz.run_calls([call(VALID)], D + "Hanging", timeout=3)
    assert row["class"] == "hang" and "no answer within 3 s" in row["message"]


def test_guards_see_writes_before_after_and_between_the_elements_of_a_view():
    t = torch.arange(24, dtype=torch.float32).reshape(4, 6)[:, ::2]      # gaps between elements
    for at, damaged in [(0, False), (1, True), (-1, True), (t.stride(0) * 3 + 5, True)]:
        view, g = fuzz.guard(t)
        assert torch.equal(view, t) and view.stride() == t.stride()
        view.as_strided((1,), (1,), view.storage_offset() + at).fill_(-7)
        assert (fuzz.guard_damage(g) > 0) == damaged, at


def test_a_huge_dim_is_expanded_not_allocated_and_judged_by_its_twin():
    built = fuzz.build_call("causal_conv1d_weight_pack",
                            dict(base=dict(D=32), variant="", corruptions=["huge_dim/tensor@weight"],
                                 seed=0))
    w = built.kwargs["weight"]
    assert fuzz.HUGE in w.shape and 0 in w.stride()
    assert built.ref_kwargs["weight"].numel() < 1000


def test_the_same_seed_gives_the_same_calls_and_the_same_tensors():
    backend = doubles.FP32Reference()
    ops = [OP, "causal_conv1d_update"]
    first = fuzz.generate(backend, ops, 30, seed=3)
    again = fuzz.generate(backend, ops, 30, seed=3)
    other = fuzz.generate(backend, ops, 30, seed=4)
    assert len(first) == 30 and {c["op"] for c in first} == set(ops)
    assert list(map(fuzz.call_json, first)) == list(map(fuzz.call_json, again))
    assert list(map(fuzz.call_json, first)) != list(map(fuzz.call_json, other))
    for c in first[:10]:    # a call rebuilds bit for bit: its repro line replays it
        a, b = fuzz.build_call(c["op"], c).kwargs, fuzz.build_call(c["op"], c).kwargs
        for k, v in a.items():
            if isinstance(v, torch.Tensor) and v.device.type == "cpu":
                assert v.shape == b[k].shape and v.stride() == b[k].stride()
                assert fuzz._same_bits(v, b[k]), (c, k)
            elif not isinstance(v, torch.Tensor):
                assert v == b[k] or v != v, (c, k)


def test_the_command_line_writes_a_row_per_call_and_fails_on_a_bad_class(tmp_path):
    out = tmp_path / "fuzz.csv"
    code = fuzz.main(["--backend", D + "Accepting", "--calls", "2", "--op", OP, "--out", str(out)])
    import pandas as pd
    df = pd.read_csv(out)
    assert code == 1 and len(df) == 2
    assert {"op", "backend", "corruptions", "arguments", "class", "message", "repro"} <= set(df)
    assert set(df["class"]) <= set(fuzz.CLASSES) and "accepted_invalid" in set(df["class"])
