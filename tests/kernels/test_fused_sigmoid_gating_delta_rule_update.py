"""GDN decode kernel against the reference: K ≠ V, GQA, l2norm, activation and state dtypes,
strided and permuted slots with pad entries; error inputs; opcheck; torch.compile."""

import pytest
import torch

import reference as R
from cases.gdn import decode_inputs
from tests.kernels.checks import (assert_compiles_like_eager, assert_gaps_and_metadata,
                                  assert_near_baseline, meta)

i32 = dict(dtype=torch.int32)
NAMES = ("A_log", "dt_bias", "q", "k", "v", "a", "b", "state", "state_indices")


def call(ops, args, **kw):
    return ops.fused_sigmoid_gating_delta_rule_update(*(args[n] for n in NAMES), kw.get("cu", None),
                                                      args["use_qk_l2norm_in_kernel"])


def run_and_check(ops, args):
    want_out, want_pool = R.fused_sigmoid_gating_delta_rule_update(**args)
    base_out, base_pool = R.fused_sigmoid_gating_delta_rule_update(**args, precision=R.FP32)
    pool = args["state"]
    before, untouched = meta(pool), pool.clone()
    inputs = {n: args[n].clone() for n in ("q", "k", "v", "a", "b")}
    out = call(ops, args)
    assert out.dtype == args["q"].dtype and out.shape == want_out.shape
    assert_near_baseline(out, want_out, base_out, out.dtype, "out")
    assert_near_baseline(pool, want_pool, base_pool, pool.dtype, "state")
    slots = args["state_indices"].tolist()
    for s in range(pool.shape[0]):
        if s not in slots:
            assert torch.equal(pool[s], untouched[s]), f"slot {s} is not indexed but changed"
    for r, s in enumerate(slots):
        if s == -1:
            assert (out[r] == 0).all(), f"pad row {r}: output not zeros"
    assert_gaps_and_metadata(pool, before, "state")    # gaps and metadata
    for n, t in inputs.items():
        assert torch.equal(args[n], t), f"{n} was modified"
    return out


DTYPES = [(torch.bfloat16, torch.float32), (torch.bfloat16, torch.bfloat16),
          (torch.float16, torch.float16), (torch.float32, torch.float32), (torch.float16, torch.float32)]
DT_IDS = ["bf16-state32", "bf16-state16", "fp16-state16", "fp32-state32", "fp16-state32"]


@pytest.mark.parametrize("dtype,state_dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("HK,HV,K,V", [(2, 2, 32, 64), (1, 2, 64, 32), (2, 8, 128, 128),
                                       (4, 16, 32, 256), (1, 3, 48, 40)],
                         ids=["G1-K32-V64", "G2-K64-V32", "G4-K128-V128", "G4-K32-V256", "G3-K48-V40"])
@pytest.mark.parametrize("l2norm", [True, False], ids=["l2norm", "raw"])
def test_against_reference(ops, HK, HV, K, V, dtype, state_dtype, l2norm):
    args = decode_inputs(5, HK, HV, K, V, slots=[6, -1, 0, 3, 2], n_slots=8, dtype=dtype,
                         state_dtype=state_dtype, slot_gap=11, l2norm=l2norm, seed=K + V)
    run_and_check(ops, args)


def test_softplus_parameters_are_honoured(ops):
    args = decode_inputs(3, 1, 2, 32, 32, seed=5)
    args["a"] = torch.tensor([[0.0, 12.0], [-3.0, 30.0], [5.0, 0.5]])
    want, _ = R.fused_sigmoid_gating_delta_rule_update(**args, softplus_beta=2.0,
                                                         softplus_threshold=10.0)
    names = NAMES
    out = ops.fused_sigmoid_gating_delta_rule_update(*(args[n] for n in names), None, True, 2.0, 10.0)
    torch.testing.assert_close(out.double(), want, rtol=1e-5, atol=1e-6)
    default = ops.fused_sigmoid_gating_delta_rule_update(*(args[n] for n in names), None, True)
    assert not torch.allclose(default, out)


def test_rows_use_their_own_beta(ops):
    args = decode_inputs(4, 1, 2, 32, 32, seed=6)
    out1 = call(ops, dict(args, state=args["state"].clone()))
    b2 = args["b"].clone()
    b2[3] += 2.0
    out2 = call(ops, dict(args, state=args["state"].clone(), b=b2))
    assert torch.equal(out1[:3], out2[:3]) and not torch.equal(out1[3], out2[3])


def test_strided_q_k_v_views_of_a_packed_projection(ops):
    """q, k, v as views into one [1, B, ·] buffer (as after a fused qkv projection)."""
    B, HK, HV, K, V = 3, 2, 4, 32, 16
    mixed = torch.randn(1, B, 2 * HK * K + HV * V + 8)
    q = mixed[..., :HK * K].view(1, B, HK, K)
    k = mixed[..., HK * K:2 * HK * K].view(1, B, HK, K)
    v = mixed[..., 2 * HK * K:2 * HK * K + HV * V].view(1, B, HV, V)
    args = decode_inputs(B, HK, HV, K, V, seed=7)
    args.update(q=q, k=k, v=v)
    run_and_check(ops, args)


def test_cu_seqlens_is_checked(ops):
    args = decode_inputs(3, 1, 2, 32, 32)
    call(ops, args, cu=torch.arange(4, **i32))
    with pytest.raises(RuntimeError, match=r"^cu_seqlens: decode takes one token per row"):
        call(ops, args, cu=torch.tensor([0, 1, 3, 3], **i32))


ERRORS = [
    (dict(state_indices=torch.tensor([0, 3], **i32)), r"^state_indices: index 3 at row 1 is outside \[0, 3\)"),
    (dict(state_indices=torch.tensor([-2, 0], **i32)), r"^state_indices: index -2"),
    (dict(state_indices=torch.tensor([1, 1], **i32)), r"^state_indices: slot 1 is used by rows 0 and 1"),
    (dict(state_indices=torch.tensor([0, 1])), r"^state_indices: expected dtype Int"),
    (dict(state=torch.zeros(3, 2, 8, 4)), r"^state: expected shape \[N, 2, 4, 8\]"),
    (dict(state=torch.zeros(3, 2, 8, 4).transpose(-1, -2)), r"^state: each slot must be dense"),
    (dict(state=torch.zeros(3, 2, 4, 8, dtype=torch.float64)), r"^state: expected float32, bfloat16 or float16"),
    (dict(a=torch.zeros(2, 3)), r"^a: expected shape \[2, 2\]"),
    (dict(b=torch.zeros(2, 2, dtype=torch.int32)), r"^b: expected bfloat16, float16 or float32"),
    (dict(b=torch.zeros(2, 2, dtype=torch.bfloat16)), r"^b: expected a's dtype"),
    (dict(A_log=torch.zeros(3)), r"^A_log: expected shape \[2\]"),
    (dict(dt_bias=torch.zeros(2, 1)), r"^dt_bias: expected shape \[2\]"),
    (dict(q=torch.zeros(1, 2, 2, 4), k=torch.zeros(1, 2, 2, 4), v=torch.zeros(1, 2, 3, 8)), r"^v: v heads \(3\) must be a multiple"),
    (dict(k=torch.zeros(1, 2, 1, 5)), r"^k: expected the shape of q"),
    (dict(k=torch.zeros(1, 2, 1, 4, dtype=torch.bfloat16)), r"^k: expected q's dtype"),
    (dict(q=torch.zeros(2, 1, 1, 4)), r"^q: expected shape \[1, B, HK, K\]"),
    (dict(q=torch.zeros(1, 2, 1, 8)[..., ::2]), r"^q: the head dim must be contiguous"),
    (dict(v=torch.zeros(1, 3, 2, 8)), r"^v: expected 2 rows, got 3"),
]


@pytest.mark.parametrize("change, match", ERRORS,
                         ids=[m.split(":")[0].strip("^") + f"-{i}" for i, (_, m) in enumerate(ERRORS)])
def test_errors_name_the_argument(ops, change, match):
    args = decode_inputs(2, 1, 2, 4, 8, n_slots=3)
    args.update(change)
    with pytest.raises(RuntimeError, match=match):
        call(ops, args)


def sample_args():
    a = decode_inputs(3, 2, 4, 32, 16, slots=[2, -1, 0], n_slots=4, dtype=torch.bfloat16, seed=9)
    return tuple(a[n] for n in NAMES) + (None, True)


def test_opcheck(ops):
    torch.library.opcheck(ops.fused_sigmoid_gating_delta_rule_update, sample_args())


def test_torch_compile_fullgraph(ops):
    assert_compiles_like_eager(ops.fused_sigmoid_gating_delta_rule_update, sample_args(), pool_index=7)


def test_q_and_k_with_different_strides(ops):
    """Hazard 10: k's offsets computed with q's strides. q is a view into a wider buffer, k is
    contiguous, so any mix-up reads the wrong elements."""
    B, HK, HV, K, V = 3, 2, 4, 32, 16
    args = decode_inputs(B, HK, HV, K, V, seed=12)
    wide = torch.randn(1, B, HK + 3, K + 8)
    wide[:, :, 1:HK + 1, 4:K + 4] = args["q"]
    args["q"] = wide[:, :, 1:HK + 1, 4:K + 4]
    assert args["q"].stride() != args["k"].stride()
    run_and_check(ops, args)


def test_l2norm_eps_matters_for_small_vectors(ops):
    """Σx² of the order of eps = 1e-5: the eps term changes the result, so it must be the
    contract's."""
    args = decode_inputs(2, 1, 2, 4, 8, seed=8)
    args["q"], args["k"] = args["q"] * 1e-3, args["k"] * 1e-3
    run_and_check(ops, args)
