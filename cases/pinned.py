"""Base case descriptions that pinned examples and error inputs start from: small, fast, with the
hazards of SPEC.md switched on (K ≠ V, GQA, permuted slots with pads and gaps between slots)."""

DECODE = dict(B=3, HK=2, G=2, K=32, V=64, dtype="bf16", state_dtype="fp32", slots=[2, 0, 4], n_slots=5,
            slot_gap=3, l2norm=True, cu_seqlens=False, softplus_beta=1.0, softplus_threshold=20.0,
            qk_strides="dense", regime="unit", seed=1)
PREFILL = dict(lengths=[65, 0, 1, 63], HK=2, G=2, K=32, V=64, dtype="bf16", state_dtype="fp32",
            slots=[3, 1, -1, 0], n_slots=5, slot_gap=3, l2norm=True, decay="normal",
            qk_strides="dense", regime="unit", seed=1)
FWD = dict(D=64, W=4, dtype="bf16", bias=True, silu=True, packed=False, varlen=True,
            lengths=[5, 0, 2, 70], states=True, layout="SD", state_extra=2, slot_gap=3,
            indices_given=True, slots=[3, -1, 0, 1], n_slots=5,
            has_initial_state=[True, True, False, True], regime="unit", seed=1)
# Speculative decode: rows of 4, 2 and 3 draft tokens (S 4) resuming from positions 0, 2 and 3, the
# slots of each row permuted over a pool with unused slots, one position storing nothing.
SPEC = dict(B=3, S=4, lengths=[4, 2, 3], accepted=[1, 3, 4],
            slots=[[7, 2, -1, 11], [4, 0, 9, 5], [12, 3, 8, 1]], n_slots=14, HK=2, G=2, K=32, V=64,
            dtype="bf16", state_dtype="fp32", slot_gap=3, l2norm=True, softplus_beta=1.0,
            softplus_threshold=20.0, qk_strides="dense", regime="unit", seed=1)
UPDATE = dict(D=64, W=4, dtype="bf16", bias=True, silu=True, packed=False, B=3, L=0, layout="SD",
            state_extra=2, slot_gap=3, indices_given=True, slots=[2, -1, 0], n_slots=4,
            x_row_pad=0, regime="unit", seed=1)


def with_(base: dict, **changes) -> dict:
    """base with some axes changed."""
    return {**base, **changes}


# Error inputs start from cases every backend supports (K == V == 64, bf16, width 4, no pads in
# the speculative update), so that the one spoiled argument is the only thing wrong.
DECODE_E = with_(DECODE, K=64, V=64)
PREFILL_E = with_(PREFILL, K=64, V=64)
SPEC_E = with_(SPEC, K=64, V=64)
UPDATE_SPEC_E = with_(UPDATE, L=3, accepted=[1, 2, 3], slots=[2, 1, 0])
