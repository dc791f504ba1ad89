"""What only our kernels have, beyond the contract: the chunked prefill's gemm_path argument, a
property of our conv prefill that the references state by construction (a prefill split over two
calls continues from the carried state bit for bit), the Meta kernels' shape inference, and the
blas path's second route to the BLAS library."""

from __future__ import annotations

import pytest
import torch

import cases
from tests.properties import child

PREFILL = "chunk_gated_delta_rule"


def _prefill(**axes):
    return cases.build(PREFILL, axes)


def test_unknown_gemm_path(ops):
    with pytest.raises(RuntimeError, match=r"^gemm_path: expected \"brgemm\", \"blas\" or \"brgemm_bf16\""):
        ops.chunk_gated_delta_rule(**_prefill(), gemm_path="mkl")


def test_bf16_gemm_path_runs_or_says_why(ops):
    """Where oneDNN's bf16 brgemm is missing (no AMX, no AVX512-BF16), the path raises naming
    gemm_path, and the harness reports its cases as unsupported with that reason."""
    try:
        ops.chunk_gated_delta_rule(**_prefill(), gemm_path="brgemm_bf16")
    except RuntimeError as e:
        assert str(e).startswith("gemm_path: \"brgemm_bf16\" needs oneDNN's bf16 brgemm"), e


def test_bf16_gemm_path_needs_an_even_head_dim(ops):
    with pytest.raises(RuntimeError, match=r"^query: gemm_path \"brgemm_bf16\" needs an even head dim"):
        ops.chunk_gated_delta_rule(**_prefill(K=7), gemm_path="brgemm_bf16")


@pytest.mark.parametrize("dtype", ["fp16", "fp32"])
def test_bf16_gemm_path_needs_bf16_activations(ops, dtype):
    with pytest.raises(RuntimeError, match=r"^query: gemm_path \"brgemm_bf16\" is for bf16 activations"):
        ops.chunk_gated_delta_rule(**_prefill(dtype=dtype), gemm_path="brgemm_bf16")


def test_conv_prefill_split_over_two_calls(ops):
    """One 1000-token sequence, then the same tokens as 333 + 667 over two calls sharing the pool:
    the outputs concatenate to the whole call's, bit for bit."""
    kw = cases.build("causal_conv1d_fwd", dict(D=64, dtype="fp32", lengths=[1000], slots=[0],
                                               has_initial_state=[True], silu=True))
    pool = kw["conv_states"]
    whole = ops.causal_conv1d_fwd(**dict(kw, conv_states=pool.clone()))
    parts = []
    for lo, hi in ((0, 333), (333, 1000)):
        parts.append(ops.causal_conv1d_fwd(**dict(kw, x=kw["x"][:, lo:hi],
                                                  query_start_loc=torch.tensor([0, hi - lo],
                                                                               dtype=torch.int32))))
    assert torch.equal(torch.cat(parts, 1), whole)


@pytest.mark.parametrize("op", ["fused_gdn_gating", "causal_conv1d_update"])
def test_all_meta_arguments_give_meta_results(ops, op):
    """The Meta kernel refuses a mix of meta and CPU tensors (an error input of the catalogue), but
    a call whose tensors are all meta still infers its results' shapes and dtypes."""
    kw = {k: v.to("meta") if isinstance(v, torch.Tensor) else v
          for k, v in cases.build(op, {}).items()}
    got = getattr(ops, op)(**kw)
    want = getattr(ops, op)(**cases.build(op, {}))
    got, want = (got, want) if isinstance(got, tuple) else ((got,), (want,))
    for g, w in zip(got, want):
        assert g.device.type == "meta" and (g.shape, g.dtype) == (w.shape, w.dtype)


def test_blas_path_through_atens_route(tmp_path):
    """The blas path's products go to the BLAS library's sgemm_ where torch exports it (here), and
    through at::mm_out where it does not (KERNELS_BLAS=aten forces that route): the same property
    test, run in a process that takes the other route, passes there too."""
    run, rows = child.run(tmp_path / "report.csv",
                          "test_chunk_gated_delta_rule and ours-blas and not errors and not schema",
                          KERNELS_BLAS="aten")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    ran = rows[rows["status"] != "unsupported"]
    assert (ran["kind"] == "case").sum() >= 10 and set(ran["status"]) == {"pass"}
