"""GDN chunked prefill kernel against the reference, on both GEMM paths: lengths around the chunk
boundary in varlen mixes, K ≠ V, GQA, state dtypes, decay regimes, strided and permuted slots with
pad entries; error inputs; opcheck; torch.compile.

Tolerance: the same-precision baseline is the chunked reference run in fp32 (the same algorithm
class as the kernel: its triangular solve rounds differently from the token recurrence)."""

import pytest
import torch

import kernels
import reference as R
from cases.gdn import prefill_inputs
from tests.kernels.checks import (assert_compiles_like_eager, assert_gaps_and_metadata,
                                  assert_near_baseline, meta)

i32 = dict(dtype=torch.int32)
PATHS = ["brgemm", "blas"]
NAMES = ("query", "key", "value", "g", "beta", "initial_state", "output_final_state", "cu_seqlens",
         "head_first", "use_qk_l2norm_in_kernel", "initial_state_indices")


def call(ops, args, path, eps=1e-5):
    return ops.chunk_gated_delta_rule(*(args[n] for n in NAMES), eps, path)


def run_and_check(ops, args, path):
    want_out, want_pool = R.chunk_gated_delta_rule(**args)
    base_out, base_pool = R.chunk_gated_delta_rule_chunked(**args, precision=R.FP32)
    pool = args["initial_state"]
    before, untouched = meta(pool), pool.clone()
    inputs = {n: args[n].clone() for n in ("query", "key", "value", "g", "beta")}
    out = call(ops, args, path)
    assert out.dtype == args["query"].dtype and out.shape == want_out.shape
    assert_near_baseline(out, want_out, base_out, out.dtype, "out")
    assert_near_baseline(pool, want_pool, base_pool, pool.dtype, "initial_state")
    slots = args["initial_state_indices"].tolist()
    cu = args["cu_seqlens"].tolist()
    for s in range(pool.shape[0]):
        live = [i for i, x in enumerate(slots) if x == s and cu[i + 1] > cu[i]]
        if not live:   # not indexed, or only by an empty sequence: bit-identical
            assert torch.equal(pool[s], untouched[s]), f"slot {s} changed"
    for i, s in enumerate(slots):
        if s == -1:
            assert (out[0, cu[i]:cu[i + 1]] == 0).all(), f"pad sequence {i}: output not zeros"
    assert_gaps_and_metadata(pool, before, "initial_state")
    for n, t in inputs.items():
        assert torch.equal(args[n], t), f"{n} was modified"


MIX = [65, 0, 1, 200, 63, 64]
SLOTS = [5, 2, -1, 7, 0, 3]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("HK,HV,K,V", [(2, 2, 32, 64), (1, 2, 64, 32), (2, 8, 128, 128),
                                       (1, 4, 32, 256)],
                         ids=["G1-K32-V64", "G2-K64-V32", "G4-K128-V128", "G4-K32-V256"])
def test_varlen_mix(ops, HK, HV, K, V, path):
    args = prefill_inputs(MIX, HK, HV, K, V, slots=SLOTS, n_slots=9, dtype=torch.bfloat16,
                          slot_gap=7, seed=K + V)
    run_and_check(ops, args, path)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("length", [0, 1, 31, 32, 33, 63, 64, 65, 200], ids=lambda n: f"T{n}")
def test_single_sequence_lengths(ops, length, path):
    args = prefill_inputs([length], 2, 4, 32, 48, slots=[1], n_slots=2, seed=length)
    run_and_check(ops, args, path)


@pytest.mark.parametrize("dtype,state_dtype", [(torch.bfloat16, torch.float32), (torch.bfloat16, torch.bfloat16),
                                               (torch.float16, torch.float16), (torch.float32, torch.float32)],
                         ids=["bf16-state32", "bf16-state16", "fp16-state16", "fp32-state32"])
@pytest.mark.parametrize("decay", ["normal", "zero", "strong"])
@pytest.mark.parametrize("l2norm", [True, False], ids=["l2norm", "raw"])
def test_dtypes_and_decay(ops, dtype, state_dtype, decay, l2norm):
    args = prefill_inputs([70, 5, 130], 2, 4, 32, 48, slots=[2, 0, 3], n_slots=4, dtype=dtype,
                          state_dtype=state_dtype, decay=decay, l2norm=l2norm, seed=3)
    if not l2norm:   # unnormalised k: keep β·|k|² < 2 so the recurrence stays contractive
        args["key"] = args["key"] * 0.15
    run_and_check(ops, args, "brgemm")


def test_paths_agree_closely(ops):
    args = prefill_inputs(MIX, 2, 4, 64, 64, slots=SLOTS, n_slots=9, seed=11)
    a = dict(args, initial_state=args["initial_state"].clone())
    b = dict(args, initial_state=args["initial_state"].clone())
    oa, ob = call(ops, a, "brgemm"), call(ops, b, "blas")
    torch.testing.assert_close(oa, ob, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(a["initial_state"], b["initial_state"], rtol=1e-5, atol=1e-6)


ERRORS = [
    (dict(head_first=True), r"^head_first"),
    (dict(cu_seqlens=torch.tensor([0, 3, 5], **i32)), r"^cu_seqlens: must end at the token count 6"),
    (dict(cu_seqlens=torch.tensor([0, 4, 3, 6], **i32)), r"^cu_seqlens: must be non-decreasing"),
    (dict(cu_seqlens=torch.tensor([0, 2, 6])), r"^cu_seqlens: expected dtype Int"),
    (dict(initial_state_indices=torch.tensor([0, 2], **i32)), r"^initial_state_indices: index 2"),
    (dict(initial_state_indices=torch.tensor([1, 1], **i32)), r"^initial_state_indices: slot 1 is used by rows 0 and 1"),
    (dict(initial_state_indices=torch.tensor([0], **i32)), r"^initial_state_indices: expected shape \[2\]"),
    (dict(g=torch.zeros(1, 6, 3)), r"^g: expected shape \[1, 6, 2\]"),
    (dict(g=torch.zeros(1, 6, 2, dtype=torch.bfloat16)), r"^g: expected dtype Float"),
    (dict(beta=torch.zeros(1, 5, 2)), r"^beta: expected shape \[1, 6, 2\]"),
    (dict(initial_state=torch.zeros(2, 2, 4, 8)), r"^initial_state: expected shape \[N, 2, 8, 4\]"),
    (dict(initial_state=torch.zeros(2, 2, 4, 8).transpose(-1, -2)), r"^initial_state: each slot must be dense"),
    (dict(initial_state=torch.zeros(1, 2, 8, 4).expand(2, 2, 8, 4)), r"^initial_state: slot stride 0 is smaller"),
    (dict(query=torch.zeros(2, 3, 1, 8), key=torch.zeros(2, 3, 1, 8)), r"^query: expected shape \[1, T, HK, K\]"),
    (dict(key=torch.zeros(1, 6, 1, 8, dtype=torch.bfloat16)), r"^key: expected query's dtype"),
    (dict(value=torch.zeros(1, 6, 3, 4)), r"^value: v heads \(3\) must be a multiple|^g: expected shape"),
]


@pytest.mark.parametrize("change, match", ERRORS,
                         ids=[m.split(":")[0].strip("^") + f"-{i}" for i, (_, m) in enumerate(ERRORS)])
def test_errors_name_the_argument(ops, change, match):
    args = prefill_inputs([2, 4], 1, 2, 8, 4, n_slots=2)
    args.update(change)
    with pytest.raises(RuntimeError, match=match):
        call(ops, args, "brgemm")


def test_unknown_gemm_path(ops):
    with pytest.raises(RuntimeError, match=r"^gemm_path: expected \"brgemm\", \"blas\" or \"brgemm_bf16\""):
        call(ops, prefill_inputs([2], 1, 2, 8, 4), "mkl")


@pytest.mark.parametrize("lengths,decay", [([MIX[0], 0, 200, 63], "normal"), ([130, 5], "strong")])
def test_bf16_gemm_path(ops, lengths, decay):
    """brgemm_bf16 against its own baseline: the fp32 chunked reference with bf16 GEMM operands."""
    args = prefill_inputs(lengths, 2, 4, 64, 48, dtype=torch.bfloat16, decay=decay, seed=len(lengths))
    want_out, want_pool = R.chunk_gated_delta_rule_chunked(**args)
    base_out, base_pool = R.chunk_gated_delta_rule_chunked(**args, precision=R.FP32,
                                                           operands=torch.bfloat16,
                                                           chunk_size=kernels.CHUNK_SIZE)
    pool = args["initial_state"]
    out = call(ops, args, "brgemm_bf16")
    assert_near_baseline(out, want_out, base_out, out.dtype, "out")
    assert_near_baseline(pool, want_pool, base_pool, pool.dtype, "initial_state")


def test_bf16_gemm_path_odd_head_dim(ops):
    with pytest.raises(RuntimeError, match=r"^query: gemm_path \"brgemm_bf16\" needs an even head dim"):
        call(ops, prefill_inputs([2], 1, 2, 7, 4), "brgemm_bf16")


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32])
def test_bf16_gemm_path_needs_bf16_activations(ops, dtype):
    with pytest.raises(RuntimeError, match=r"^query: gemm_path \"brgemm_bf16\" is for bf16 activations"):
        call(ops, prefill_inputs([2], 1, 2, 8, 4, dtype=dtype), "brgemm_bf16")


def sample_args():
    a = prefill_inputs([5, 0, 70], 2, 4, 32, 16, slots=[2, 0, -1], n_slots=3, dtype=torch.bfloat16)
    return tuple(a[n] for n in NAMES) + (1e-5, "brgemm")


def test_opcheck(ops):
    torch.library.opcheck(ops.chunk_gated_delta_rule, sample_args())


def test_torch_compile_fullgraph(ops):
    assert_compiles_like_eager(ops.chunk_gated_delta_rule, sample_args(), pool_index=5)


@pytest.mark.parametrize("path", PATHS)
def test_q_k_v_with_different_strides(ops, path):
    """Hazard 10: offsets of one tensor computed with another's strides. query is a view into a
    wider buffer, key contiguous, value a view with a token stride of its own."""
    args = prefill_inputs([70, 9], 2, 4, 32, 16, slots=[1, 0], seed=13)
    T = 79
    wide_q = torch.randn(1, T, 5, 40)
    wide_q[:, :, 1:3, 4:36] = args["query"]
    wide_v = torch.randn(1, T, 6, 16)
    wide_v[:, :, 2:6] = args["value"]
    args.update(query=wide_q[:, :, 1:3, 4:36], value=wide_v[:, :, 2:6])
    assert len({args[n].stride() for n in ("query", "key", "value")}) == 3
    run_and_check(ops, args, path)


@pytest.mark.parametrize("eps", [1e-5, 1e-3])
def test_eps_is_honoured_for_small_vectors(ops, eps):
    """q and k with Σx² of the order of eps: a kernel ignoring `eps` (or using another) drifts."""
    args = prefill_inputs([70, 5], 2, 4, 8, 16, seed=14)
    args["query"], args["key"] = args["query"] * 2e-3, args["key"] * 2e-3
    want, want_pool = R.chunk_gated_delta_rule(**args, eps=eps)
    base, base_pool = R.chunk_gated_delta_rule_chunked(**args, eps=eps, precision=R.FP32)
    out = call(ops, args, "brgemm", eps=eps)
    assert_near_baseline(out, want, base, out.dtype, "out")
    assert_near_baseline(args["initial_state"], want_pool, base_pool, torch.float32, "initial_state")


@pytest.mark.parametrize("path", PATHS)
def test_extreme_gates(ops, path):
    """A −∞ gate (exp → 0: the state is wiped) and a −1e7 gate inside chunks. Built from
    differences of cumulative sums, Γ would be −∞ − (−∞) = NaN, or lose every later small step
    to the rounding of |G| ≈ 1e7. The baseline here is the fp32 recurrence (the chunked reference
    form shares that weakness; it is only a cross-check)."""
    args = prefill_inputs([70, 40], 2, 4, 16, 16, slots=[1, 0], seed=15)
    g = args["g"].clone()
    g[0, 3, 1] = -float("inf")
    g[0, 75, :] = -1e7
    args["g"] = g
    want_out, want_pool = R.chunk_gated_delta_rule(**args)
    base_out, base_pool = R.chunk_gated_delta_rule(**args, precision=R.FP32)
    out = call(ops, args, path)
    assert torch.isfinite(out).all() and torch.isfinite(args["initial_state"]).all()
    assert_near_baseline(out, want_out, base_out, out.dtype, "out")
    assert_near_baseline(args["initial_state"], want_pool, base_pool, torch.float32, "initial_state")
