"""The one catalogue of error inputs: each is a valid case made invalid in one way, and every
backend must raise an error naming the argument (the reference's message starts with its name).
Reference tests, kernel tests and the property suite all iterate over it.

An entry whose `backends` is not empty is a limit that only those backends check (our kernels'
layout or dtype requirements beyond the contract): the reference computes the case, other backends
get an `unsupported` row for it, and the named backends must still reject it naming the argument.
`detail`, when given, is a regular expression our kernels' message must also match (their messages
are part of what they ship).

Per op, entries start from the pinned cases with the hazards on (cases/pinned.py), then from the
small cases of the unit tests this catalogue absorbed (below), then the limits of our kernels. A
name is unique within its op: it is the test id and the handle of a repro line (`--error 'name'`).

Every op covers, where it has the argument: offsets not starting at 0, decreasing, ending before or
past the token count, of the wrong length, dtype or rank; slot indices far out of range, shared,
of the wrong dtype, length or rank; one tensor on the meta device among CPU tensors; pools whose
slots, or elements inside a slot, share memory; a wrong rank and dtype for each tensor; None where
an optional is required; and huge sizes (broadcast, so the input itself allocates nothing) that
must be refused before anything of their size is allocated.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from cases import pinned as P


@dataclass(frozen=True)
class ErrorInput:
    """A valid case made invalid in one way; the backend must raise naming `arg`."""
    name: str
    case: dict                          # a description (missing axes take the op's defaults)
    spoil: Callable[[dict], None]       # edits the built kwargs in place
    arg: str
    detail: str = ""                    # regex our kernels' message must match too
    backends: tuple[str, ...] = ()      # () = a contract error, checked on every backend


# --- spoils (each call makes its tensors afresh: no run sees another's leftovers) ----------------

def _set(name, value):
    """kwargs[name] = value; a callable value gets the kwargs and returns it."""
    def spoil(kw):
        kw[name] = value(kw) if callable(value) else value
    return spoil


def _zeros(name, *shape, dtype=None):
    """kwargs[name] = zeros of `shape`, in `dtype`, else in the dtype of the tensor it replaces."""
    return _set(name, lambda kw: torch.zeros(shape, dtype=dtype or kw[name].dtype))


def _tensor(name, *values, dtype=torch.int32):
    """kwargs[name] = a 1-D tensor of these values (indices, offsets, counts: int32 by default)."""
    return _set(name, lambda kw: torch.tensor(values, dtype=dtype))


def _all(*spoils):
    """Several arguments changed together (e.g. q, k and v)."""
    def spoil(kw):
        for s in spoils:
            s(kw)
    return spoil


def _meta(name, value=None):
    """kwargs[name] (or `value`, for an optional the case leaves out) on the meta device, among
    CPU tensors: a meta argument sends the call to the op's Meta kernel, not the CPU one."""
    def make(kw):
        t = kw[name] if value is None else torch.tensor(value, dtype=I32)
        return t.to("meta")
    return _set(name, make)


def _stretched(name, dim, n):
    """kwargs[name] with dimension `dim` broadcast to n entries from its first (stride 0: nothing
    is allocated, however large n is; the other strides are kept, so layout checks still pass)."""
    def make(kw):
        t = kw[name].narrow(dim, 0, 1)
        return t.expand(*t.shape[:dim], n, *t.shape[dim + 1:])
    return _set(name, make)


def _broadcast(name, *shape, dtype=torch.int32):
    """kwargs[name] = zeros of `shape` as one broadcast element (nothing allocated)."""
    return _set(name, lambda kw: torch.zeros((), dtype=dtype).expand(*shape))


def _strided(name, size, shape, strides, dtype=None):
    """kwargs[name] = a view of `shape` and `strides` into `size` zeros (e.g. overlapping)."""
    return _set(name, lambda kw: torch.zeros(size, dtype=dtype or kw[name].dtype)
                .as_strided(shape, strides))


OURS = ("ours",)
I32, I64, F32, F64, BF16 = torch.int32, torch.int64, torch.float32, torch.float64, torch.bfloat16
ACT = "expected bfloat16, float16 or float32"           # our kernels' activation dtypes
FLOAT = "expected a floating-point tensor"
CPU = "expected a CPU tensor, got one on the meta device"
POOL_DTYPE = "expected float32, bfloat16 or float16"
I32_MAX = 2**31 - 1
HUGE = 2**33    # rows or entries: a vector of them would need 64 GiB, an output far more

# --- base cases ----------------------------------------------------------------------------------
GATING = dict(T=4, HV=8, dtype="bf16", softplus_beta=1.0, softplus_threshold=20.0, regime="unit",
              seed=0)
PACK = dict(D=64, W=4, dtype="bf16", seed=0)
# The unit tests' inputs (fp32 unless they were bf16), as case descriptions:
GATING_S = dict(T=2, HV=3, dtype="fp32")                            # a, b [2, 3]; A_log [3]
DECODE_S = dict(B=2, HK=1, G=2, K=4, V=8, dtype="fp32", n_slots=3)   # slots [0, 1] of 3
DECODE_S3 = dict(B=3, HK=1, G=2, K=32, V=32, dtype="fp32")
PREFILL_S = dict(lengths=[2, 4], HK=1, G=2, K=8, V=4, dtype="fp32", n_slots=2)  # T 6, slots [0, 1]
PACK_S = dict(D=32, dtype="fp32")
FWD_S = dict(D=32, dtype="bf16", bias=False, lengths=[3, 5], slots=[2, 0], n_slots=3)  # state_len 3
UPDATE_S = dict(D=32, dtype="bf16", bias=False, B=2, state_extra=1, slots=[2, 0],
                n_slots=3)                                           # state_len 4
UPDATE_S32 = dict(D=32, dtype="fp32", bias=False, B=2)               # slots [0, 1] of 2


def _slot_errors(arg: str, base: dict, n_slots: int) -> tuple[ErrorInput, ...]:
    """The ways a slot-index tensor for two rows can be wrong, on a base with `n_slots` slots."""
    return (
        ErrorInput(f"{arg} [0, {n_slots}] with {n_slots} slots", base, _tensor(arg, 0, n_slots), arg,
                   rf"index {n_slots} at row 1 is outside \[0, {n_slots}\)"),
        ErrorInput(f"{arg} [-3, 0]", base, _tensor(arg, -3, 0), arg, "index -3 at row 0"),
        ErrorInput(f"{arg} [1, 1]", base, _tensor(arg, 1, 1), arg, "slot 1 is used by rows 0 and 1"),
        ErrorInput(f"{arg} int64", base, _tensor(arg, 0, 1, dtype=I64), arg, "expected dtype Int"),
        ErrorInput(f"{arg} for 1 of 2 rows", base, _tensor(arg, 0), arg, r"expected shape \[2\]"),
        ErrorInput(f"{arg} [2**28, 0]", base, _tensor(arg, 2**28, 0), arg,
                   "index 268435456 at row 0 is outside"),
        ErrorInput(f"{arg} [0, -2**31]", base, _tensor(arg, 0, -2**31), arg,
                   "index -2147483648 at row 1 is outside"),
        ErrorInput(f"{arg} float", base, _tensor(arg, 0.0, 1.0, dtype=F32), arg,
                   "expected dtype Int"),
        ErrorInput(f"{arg} [[0, 1]] 2-D", base, _set(arg, lambda kw: torch.tensor([[0, 1]], dtype=I32)),
                   arg, r"expected shape \[2\]"),
        ErrorInput(f"{arg} on the meta device", base, _meta(arg, [0, 1]), arg, CPU),
    )


def _spec_slots(row, position, value):
    """The [B, S] slot matrix with one entry changed."""
    def spoil(kw):
        t = kw["spec_state_indices"].clone()
        t[row, position] = value
        return t
    return spoil


def _one_slot_twice(kw):
    return torch.zeros(1, 32, 3).expand(2, 32, 3)


def _squeezed_slots(kw):
    return torch.zeros(200).as_strided((2, 32, 3), (50, 1, 32))     # slot stride 50 < extent 96


E = ErrorInput
ERRORS = {
    "fused_gdn_gating": (
        E("a is 3-D", GATING, _set("a", lambda kw: kw["a"][None]), "a"),
        E("b of another shape", GATING, _set("b", lambda kw: kw["b"][:, :4]), "b"),
        E("A_log of the wrong length", GATING, _set("A_log", lambda kw: kw["A_log"][:3]), "A_log"),
        E("dt_bias of the wrong length", GATING, _set("dt_bias", lambda kw: kw["dt_bias"][:3]),
          "dt_bias"),
        # the unit tests' inputs (a, b [2, 3] fp32)
        E("a [T, HV, 1]", GATING_S, _zeros("a", 2, 3, 1), "a", r"expected shape \[T, HV\]"),
        E("a 1-D", GATING_S, _zeros("a", 3), "a", r"expected shape \[T, HV\]"),
        E("b with a head too many", GATING_S, _zeros("b", 2, 4), "b", r"expected shape \[2, 3\]"),
        E("b int32", GATING_S, _zeros("b", 2, 3, dtype=I32), "b", ACT),
        E("A_log with a head too many", GATING_S, _zeros("A_log", 4), "A_log",
          r"expected shape \[3\]"),
        E("A_log 2-D", GATING_S, _zeros("A_log", 1, 3), "A_log", r"expected shape \[3\]"),
        E("A_log int64", GATING_S, _zeros("A_log", 3, dtype=I64), "A_log", FLOAT),
        E("dt_bias 2-D", GATING_S, _zeros("dt_bias", 1, 3), "dt_bias", r"expected shape \[3\]"),
        E("dt_bias int32", GATING_S, _zeros("dt_bias", 3, dtype=I32), "dt_bias", FLOAT),
        E("softplus_beta 0", GATING_S, _set("softplus_beta", 0.0), "softplus_beta",
          "must be positive"),
        E("softplus_beta negative", GATING_S, _set("softplus_beta", -1.0), "softplus_beta",
          "must be positive"),
        E("softplus_beta NaN", GATING_S, _set("softplus_beta", float("nan")), "softplus_beta",
          "must be positive"),
        E("a int32", GATING_S, _zeros("a", 2, 3, dtype=I32), "a", ACT),
        E("b 1-D", GATING_S, _zeros("b", 3), "b", r"expected shape \[2, 3\]"),
        E("A_log 0-D", GATING_S, _set("A_log", lambda kw: torch.tensor(0.0)), "A_log",
          r"expected shape \[3\]"),
        E("dt_bias complex64", GATING_S, _zeros("dt_bias", 3, dtype=torch.complex64), "dt_bias",
          FLOAT),
        # one tensor on the meta device among CPU tensors (the dispatcher picks the Meta kernel)
        E("A_log on the meta device", GATING_S, _meta("A_log"), "A_log", CPU),
        E("a on the meta device", GATING_S, _meta("a"), "a", CPU),
        E("b on the meta device", GATING_S, _meta("b"), "b", CPU),
        E("dt_bias on the meta device", GATING_S, _meta("dt_bias"), "dt_bias", CPU),
        # checked before the outputs (2**34 tokens: 384 GiB) are allocated
        E("2**34 tokens with dt_bias of the wrong length", GATING_S,
          _all(_stretched("a", 0, 2**34), _stretched("b", 0, 2**34), _zeros("dt_bias", 4)),
          "dt_bias", r"expected shape \[3\]"),
        # our kernels' limit: no float64 activations (the reference computes them)
        E("a float64", GATING_S, _zeros("a", 2, 3, dtype=F64), "a", ACT, OURS),
        E("b float64", GATING_S, _zeros("b", 2, 3, dtype=F64), "b", ACT, OURS),
    ),
    "fused_sigmoid_gating_delta_rule_update": (
        E("H7 slot index past the pool", P.DECODE_E, _tensor("state_indices", 2, 5, 0),
          "state_indices"),
        E("H7 negative slot index that is not the pad id", P.DECODE_E,
          _tensor("state_indices", 2, -2, 0), "state_indices"),
        E("H4 pool with K and V swapped", P.DECODE,
          _set("state", lambda kw: kw["state"].transpose(-1, -2)), "state"),
        E("k of another shape than q", P.DECODE_E, _set("k", lambda kw: kw["k"][..., :16]), "k"),
        E("b of another shape", P.DECODE_E, _set("b", lambda kw: kw["b"][:2]), "b"),
        E("two tokens in a decode row", P.DECODE_E, _tensor("cu_seqlens", 0, 2, 2, 3),
          "cu_seqlens"),
        # the unit tests' inputs (B 2, HV 2 over HK 1, K 4, V 8, fp32; slots [0, 1] of 3)
        *_slot_errors("state_indices", DECODE_S, n_slots=3),
        E("state [N, HV, V, K]", DECODE_S, _zeros("state", 3, 2, 8, 4), "state",
          r"expected shape \[N, 2, 4, 8\]"),
        E("a with a head too many", DECODE_S, _zeros("a", 2, 3), "a", r"expected shape \[2, 2\]"),
        E("b int32", DECODE_S, _zeros("b", 2, 2, dtype=I32), "b", ACT),
        E("A_log with a head too many", DECODE_S, _zeros("A_log", 3), "A_log",
          r"expected shape \[2\]"),
        E("dt_bias 2-D", DECODE_S, _zeros("dt_bias", 2, 1), "dt_bias", r"expected shape \[2\]"),
        E("v heads not a multiple of q/k heads", DECODE_S,
          _all(_zeros("q", 1, 2, 2, 4), _zeros("k", 1, 2, 2, 4), _zeros("v", 1, 2, 3, 8)), "v",
          r"v heads \(3\) must be a multiple"),
        E("k of another head dim than q", DECODE_S, _zeros("k", 1, 2, 1, 5), "k",
          "expected the shape of q"),
        E("q [B, 1, HK, K]", DECODE_S, _zeros("q", 2, 1, 1, 4), "q",
          r"expected shape \[1, B, HK, K\]"),
        E("q, k and v [B, 1, H, D]", DECODE_S,
          _all(_zeros("q", 2, 1, 1, 4), _zeros("k", 2, 1, 1, 4), _zeros("v", 2, 1, 2, 8)), "q"),
        E("v with a row too many", DECODE_S, _zeros("v", 1, 3, 2, 8), "v",
          "expected 2 rows, got 3"),
        E("cu_seqlens [0, 2, 2]", DECODE_S, _tensor("cu_seqlens", 0, 2, 2), "cu_seqlens"),
        E("cu_seqlens [0, 1, 3, 3]", DECODE_S3, _tensor("cu_seqlens", 0, 1, 3, 3), "cu_seqlens",
          "decode takes one token per row"),
        E("cu_seqlens with a trailing extra entry", DECODE_S, _tensor("cu_seqlens", 0, 1, 2, 2),
          "cu_seqlens", r"expected shape \[3\]"),
        E("cu_seqlens not starting at 0", DECODE_S, _tensor("cu_seqlens", 1, 1, 2), "cu_seqlens",
          "must start at 0"),
        E("cu_seqlens decreasing", DECODE_S, _tensor("cu_seqlens", 0, 3, 2), "cu_seqlens",
          "must be non-decreasing"),
        E("cu_seqlens ending past the rows", DECODE_S, _tensor("cu_seqlens", 0, 1, 5), "cu_seqlens",
          "must end at the token count 2, got 5"),
        E("cu_seqlens ending at 2**31 - 1", DECODE_S, _tensor("cu_seqlens", 0, 1, I32_MAX),
          "cu_seqlens", "must end at the token count 2, got 2147483647"),
        E("cu_seqlens int64", DECODE_S, _tensor("cu_seqlens", 0, 1, 2, dtype=I64), "cu_seqlens",
          "expected dtype Int"),
        E("cu_seqlens 2-D", DECODE_S, _set("cu_seqlens", lambda kw: torch.tensor([[0, 1, 2]], dtype=I32)),
          "cu_seqlens", r"expected shape \[3\]"),
        E("cu_seqlens of 2**33 entries", DECODE_S, _broadcast("cu_seqlens", HUGE), "cu_seqlens",
          r"expected shape \[3\]"),
        E("cu_seqlens on the meta device", DECODE_S, _meta("cu_seqlens", [0, 1, 2]), "cu_seqlens",
          CPU),
        E("q on the meta device", DECODE_S, _meta("q"), "q", CPU),
        E("state on the meta device", DECODE_S, _meta("state"), "state", CPU),
        E("q int32", DECODE_S, _zeros("q", 1, 2, 1, 4, dtype=I32), "q", ACT),
        E("v 3-D", DECODE_S, _zeros("v", 2, 2, 8), "v", r"expected shape \[1, B, H, D\]"),
        E("a 1-D", DECODE_S, _zeros("a", 2), "a", r"expected shape \[2, 2\]"),
        E("q 3-D", DECODE_S, _zeros("q", 2, 1, 4), "q", r"expected shape \[1, B, HK, K\]"),
        E("k int32", DECODE_S, _zeros("k", 1, 2, 1, 4, dtype=I32), "k", ACT),
        E("v int32", DECODE_S, _zeros("v", 1, 2, 2, 8, dtype=I32), "v", ACT),
        E("a int32", DECODE_S, _zeros("a", 2, 2, dtype=I32), "a", ACT),
        E("b 3-D", DECODE_S, _zeros("b", 2, 2, 1), "b", r"expected shape \[2, 2\]"),
        E("A_log int32", DECODE_S, _zeros("A_log", 2, dtype=I32), "A_log", FLOAT),
        E("dt_bias int64", DECODE_S, _zeros("dt_bias", 2, dtype=I64), "dt_bias", FLOAT),
        E("state 3-D", DECODE_S, _zeros("state", 3, 2, 4), "state", r"expected shape \[N, 2, 4, 8\]"),
        E("state int32", DECODE_S, _zeros("state", 3, 2, 4, 8, dtype=I32), "state", POOL_DTYPE),
        E("softplus_beta 0", DECODE_S, _set("softplus_beta", 0.0), "softplus_beta",
          "must be positive"),
        # pools whose slots, or elements inside a slot, share memory
        E("state slots at one address", DECODE_S,
          _set("state", lambda kw: torch.zeros(1, 2, 4, 8).expand(3, 2, 4, 8)), "state",
          "slot stride 0 is smaller"),
        E("state slot stride smaller than a slot", DECODE_S,
          _strided("state", 200, (3, 2, 4, 8), (50, 32, 8, 1)), "state", "slot stride 50 is smaller"),
        E("state elements overlapping inside a slot", DECODE_S,
          _strided("state", 200, (3, 2, 4, 8), (64, 32, 4, 1)), "state", "each slot must be dense"),
        # checked before anything of the batch's size is allocated
        E("2**33 rows sharing slot 0", DECODE_S,
          _all(*(_stretched(n, 1, HUGE) for n in ("q", "k", "v")),
               *(_stretched(n, 0, HUGE) for n in ("a", "b", "state_indices"))),
          "state_indices", "slot 0 is used by rows 0 and 1"),
        # our kernels' limits: dense slots, a contiguous head dim, one activation dtype, no float64
        # (the reference computes all of these)
        E("state slots not dense", DECODE_S,
          _set("state", lambda kw: torch.zeros(3, 2, 8, 4).transpose(-1, -2)), "state",
          "each slot must be dense", OURS),
        E("state float64", DECODE_S, _zeros("state", 3, 2, 4, 8, dtype=F64), "state",
          "expected float32, bfloat16 or float16", OURS),
        E("b bf16 with a fp32", DECODE_S, _zeros("b", 2, 2, dtype=BF16), "b", "expected a's dtype",
          OURS),
        E("k bf16 with q fp32", DECODE_S, _zeros("k", 1, 2, 1, 4, dtype=BF16), "k",
          "expected q's dtype", OURS),
        E("q head dim strided", DECODE_S, _set("q", lambda kw: torch.zeros(1, 2, 1, 8)[..., ::2]),
          "q", "the head dim must be contiguous", OURS),
    ),
    "fused_sigmoid_gating_delta_rule_update_spec": (
        # SPEC §7's rules (on rows of 4, 2 and 3 tokens, S 4, 14 slots, accepted [1, 3, 4])
        E("num_accepted_tokens 0", P.SPEC_E, _tensor("num_accepted_tokens", 1, 0, 4),
          "num_accepted_tokens", r"0 at row 1 is outside \[1, 4\]"),
        E("num_accepted_tokens S + 1", P.SPEC_E, _tensor("num_accepted_tokens", 1, 3, 5),
          "num_accepted_tokens", r"5 at row 2 is outside \[1, 4\]"),
        E("num_accepted_tokens negative", P.SPEC_E, _tensor("num_accepted_tokens", -1, 3, 4),
          "num_accepted_tokens"),
        E("num_accepted_tokens int64", P.SPEC_E, _tensor("num_accepted_tokens", 1, 3, 4, dtype=I64),
          "num_accepted_tokens", "expected dtype Int"),
        E("num_accepted_tokens for 2 of 3 rows", P.SPEC_E, _tensor("num_accepted_tokens", 1, 3),
          "num_accepted_tokens", r"expected shape \[3\]"),
        E("H7 slot index past the pool", P.SPEC_E,
          _set("spec_state_indices", _spec_slots(1, 1, 14)), "spec_state_indices",
          r"index 14 at row 1, position 1 is outside \[0, 14\)"),
        E("H7 negative slot index that is not the pad id", P.SPEC_E,
          _set("spec_state_indices", _spec_slots(0, 3, -2)), "spec_state_indices"),
        E("H7 index past the pool beyond the row's tokens", P.SPEC_E,
          _set("spec_state_indices", _spec_slots(1, 3, 2**28)), "spec_state_indices",
          "position 3 is outside"),
        E("H7 resume index past the pool", P.SPEC_E,
          _set("spec_state_indices", _spec_slots(2, 3, 99)), "spec_state_indices"),
        E("two rows store into one slot", P.SPEC_E,
          _set("spec_state_indices", _spec_slots(1, 1, 2)), "spec_state_indices",
          "slot 2 is used by rows 0 and 1"),
        E("one row stores twice into one slot", P.SPEC_E,
          _set("spec_state_indices", _spec_slots(2, 2, 3)), "spec_state_indices",
          "slot 3 is written at positions 1 and 2 of row 2"),
        E("a row resumes from a slot another row stores into", P.SPEC_E,
          _set("spec_state_indices", _spec_slots(1, 2, 2)), "spec_state_indices",
          "slot 2 is used by rows 0 and 1"),
        E("spec_state_indices int64", P.SPEC_E,
          _set("spec_state_indices", lambda kw: kw["spec_state_indices"].long()),
          "spec_state_indices", "expected dtype Int"),
        E("spec_state_indices 1-D", P.SPEC_E,
          _set("spec_state_indices", lambda kw: kw["spec_state_indices"][:, 0].contiguous()),
          "spec_state_indices", r"expected shape \[B, S\]"),
        E("a row longer than S", P.SPEC_E,
          _set("spec_state_indices", lambda kw: kw["spec_state_indices"][:, :3].contiguous()),
          "cu_seqlens", "row 0 has 4 tokens, more than the 3 draft positions"),
        E("cu_seqlens for 2 rows of 3", P.SPEC_E, _tensor("cu_seqlens", 0, 4, 9), "cu_seqlens",
          "expected 4 offsets"),
        E("cu_seqlens not ending at the token count", P.SPEC_E, _tensor("cu_seqlens", 0, 4, 6, 8),
          "cu_seqlens", "must end at the token count 9"),
        E("cu_seqlens decreasing", P.SPEC_E, _tensor("cu_seqlens", 0, 4, 3, 9), "cu_seqlens",
          "must be non-decreasing"),
        E("cu_seqlens not starting at 0", P.SPEC_E, _tensor("cu_seqlens", 1, 4, 6, 9), "cu_seqlens",
          "must start at 0"),
        E("cu_seqlens int64", P.SPEC_E, _tensor("cu_seqlens", 0, 4, 6, 9, dtype=I64), "cu_seqlens",
          "expected dtype Int"),
        E("q [1, T, HK, K]", P.SPEC_E, _set("q", lambda kw: kw["q"][None]), "q",
          r"expected shape \[T, HK, K\]"),
        E("k of another shape than q", P.SPEC_E, _set("k", lambda kw: kw["k"][..., :16]), "k",
          "expected the shape of q"),
        E("v heads not a multiple of q/k heads", P.SPEC_E,
          _set("v", lambda kw: kw["v"][:, :3]), "v", r"v heads \(3\) must be a multiple"),
        E("v with a token too few", P.SPEC_E, _set("v", lambda kw: kw["v"][:-1]), "v"),
        E("a per row, not per token", P.SPEC_E, _set("a", lambda kw: kw["a"][:3]), "a",
          r"expected shape \[9, 4\]"),
        E("b of another shape", P.SPEC_E, _set("b", lambda kw: kw["b"][:, :2]), "b",
          r"expected shape \[9, 4\]"),
        E("A_log of the wrong length", P.SPEC_E, _set("A_log", lambda kw: kw["A_log"][:3]), "A_log",
          r"expected shape \[4\]"),
        E("dt_bias 2-D", P.SPEC_E, _set("dt_bias", lambda kw: kw["dt_bias"][None]), "dt_bias",
          r"expected shape \[4\]"),
        E("H4 pool with K and V swapped", P.SPEC,
          _set("state", lambda kw: kw["state"].transpose(-1, -2)), "state"),
        E("softplus_beta 0", P.SPEC_E, _set("softplus_beta", 0.0), "softplus_beta",
          "must be positive"),
        E("softplus_beta NaN", P.SPEC_E, _set("softplus_beta", float("nan")), "softplus_beta",
          "must be positive"),
        E("cu_seqlens with a trailing extra entry", P.SPEC_E, _tensor("cu_seqlens", 0, 4, 6, 9, 9),
          "cu_seqlens", "expected 4 offsets"),
        E("cu_seqlens ending past the token count", P.SPEC_E, _tensor("cu_seqlens", 0, 4, 6, 10),
          "cu_seqlens", "must end at the token count 9, got 10"),
        E("cu_seqlens ending at 2**31 - 1", P.SPEC_E, _tensor("cu_seqlens", 0, 4, 6, I32_MAX),
          "cu_seqlens", "must end at the token count 9, got 2147483647"),
        E("cu_seqlens 2-D", P.SPEC_E, _set("cu_seqlens", lambda kw: kw["cu_seqlens"][None]),
          "cu_seqlens", "expected 4 offsets"),
        E("cu_seqlens of 2**33 entries", P.SPEC_E, _broadcast("cu_seqlens", HUGE), "cu_seqlens",
          "expected 4 offsets"),
        E("cu_seqlens on the meta device", P.SPEC_E, _meta("cu_seqlens"), "cu_seqlens", CPU),
        E("spec_state_indices -2**31", P.SPEC_E,
          _set("spec_state_indices", _spec_slots(0, 1, -2**31)), "spec_state_indices",
          "index -2147483648 at row 0, position 1 is outside"),
        E("spec_state_indices float", P.SPEC_E,
          _set("spec_state_indices", lambda kw: kw["spec_state_indices"].float()),
          "spec_state_indices", "expected dtype Int"),
        E("spec_state_indices 3-D", P.SPEC_E,
          _set("spec_state_indices", lambda kw: kw["spec_state_indices"][None]),
          "spec_state_indices", r"expected shape \[B, S\]"),
        E("spec_state_indices on the meta device", P.SPEC_E, _meta("spec_state_indices"),
          "spec_state_indices", CPU),
        E("num_accepted_tokens 2-D", P.SPEC_E,
          _set("num_accepted_tokens", lambda kw: kw["num_accepted_tokens"][None]),
          "num_accepted_tokens", r"expected shape \[3\]"),
        E("num_accepted_tokens 2**31 - 1", P.SPEC_E, _tensor("num_accepted_tokens", 1, 3, I32_MAX),
          "num_accepted_tokens", r"2147483647 at row 2 is outside \[1, 4\]"),
        E("num_accepted_tokens on the meta device", P.SPEC_E, _meta("num_accepted_tokens"),
          "num_accepted_tokens", CPU),
        E("q on the meta device", P.SPEC_E, _meta("q"), "q", CPU),
        E("state on the meta device", P.SPEC_E, _meta("state"), "state", CPU),
        E("a int32", P.SPEC_E, _set("a", lambda kw: kw["a"].int()), "a", ACT),
        E("a 1-D", P.SPEC_E, _set("a", lambda kw: kw["a"][:, 0]), "a", r"expected shape \[9, 4\]"),
        E("b int32", P.SPEC_E, _set("b", lambda kw: kw["b"].int()), "b", ACT),
        E("q int32", P.SPEC_E, _set("q", lambda kw: kw["q"].int()), "q", ACT),
        E("k int32", P.SPEC_E, _set("k", lambda kw: kw["k"].int()), "k", ACT),
        E("v int32", P.SPEC_E, _set("v", lambda kw: kw["v"].int()), "v", ACT),
        E("v 2-D", P.SPEC_E, _set("v", lambda kw: kw["v"].flatten(1)), "v",
          r"expected shape \[T, H, D\]"),
        E("A_log int32", P.SPEC_E, _set("A_log", lambda kw: kw["A_log"].int()), "A_log", FLOAT),
        E("dt_bias int32", P.SPEC_E, _set("dt_bias", lambda kw: kw["dt_bias"].int()), "dt_bias",
          FLOAT),
        E("state 3-D", P.SPEC_E, _set("state", lambda kw: kw["state"][:, 0]), "state",
          r"expected shape \[N, 4, 64, 64\]"),
        E("state int32", P.SPEC_E, _set("state", lambda kw: kw["state"].int()), "state", POOL_DTYPE),
        E("state slots at one address", P.SPEC_E,
          _set("state", lambda kw: kw["state"][:1].expand(kw["state"].shape)), "state",
          "slot stride 0 is smaller"),
        E("state elements overlapping inside a slot", P.SPEC_E,
          _strided("state", 14 * 16387, (14, 4, 64, 64), (16387, 4096, 32, 1)), "state",
          "each slot must be dense"),
        # our kernels' limits (the reference computes these)
        E("state slots not dense", P.SPEC_E,
          _set("state", lambda kw: kw["state"].transpose(-1, -2).contiguous().transpose(-1, -2)),
          "state", "each slot must be dense", OURS),
        E("state float64", P.SPEC_E, _set("state", lambda kw: kw["state"].double()), "state",
          "expected float32, bfloat16 or float16", OURS),
        E("b fp32 with a bf16", P.SPEC_E, _set("b", lambda kw: kw["b"].float()), "b",
          "expected a's dtype", OURS),
        E("k fp32 with q bf16", P.SPEC_E, _set("k", lambda kw: kw["k"].float()), "k",
          "expected q's dtype", OURS),
        E("q head dim strided", P.SPEC_E,
          _set("q", lambda kw: torch.repeat_interleave(kw["q"], 2, -1)[..., ::2]), "q",
          "the head dim must be contiguous", OURS),
    ),
    "chunk_gated_delta_rule": (
        E("H7 slot index past the pool", P.PREFILL_E, _tensor("initial_state_indices", 3, 1, 9, 0),
          "initial_state_indices"),
        E("H7 negative slot index that is not the pad id", P.PREFILL_E,
          _tensor("initial_state_indices", 3, 1, -2, 0), "initial_state_indices"),
        E("H4 pool with K and V swapped", P.PREFILL,
          _set("initial_state", lambda kw: kw["initial_state"].transpose(-1, -2)), "initial_state"),
        E("cu_seqlens not ending at the token count", P.PREFILL_E,
          _tensor("cu_seqlens", 0, 65, 65, 66, 100), "cu_seqlens"),
        E("g of another shape", P.PREFILL_E, _set("g", lambda kw: kw["g"][..., :2]), "g"),
        E("head_first=True", P.PREFILL_E, _set("head_first", True), "head_first"),
        # the unit tests' inputs (lengths [2, 4], HV 2 over HK 1, K 8, V 4, fp32; 2 slots)
        E("cu_seqlens [0, 3, 5]", PREFILL_S, _tensor("cu_seqlens", 0, 3, 5), "cu_seqlens",
          "must end at the token count 6"),
        E("cu_seqlens [0, 4, 3, 6]", PREFILL_S, _tensor("cu_seqlens", 0, 4, 3, 6), "cu_seqlens",
          "must be non-decreasing"),
        E("cu_seqlens [1, 3, 6]", PREFILL_S, _tensor("cu_seqlens", 1, 3, 6), "cu_seqlens"),
        E("cu_seqlens int64", PREFILL_S, _tensor("cu_seqlens", 0, 2, 6, dtype=I64), "cu_seqlens",
          "expected dtype Int"),
        E("cu_seqlens None", PREFILL_S, _set("cu_seqlens", None), "cu_seqlens"),
        *_slot_errors("initial_state_indices", PREFILL_S, n_slots=2),
        E("initial_state_indices None", PREFILL_S, _set("initial_state_indices", None),
          "initial_state_indices"),
        E("cu_seqlens ending past the token count", PREFILL_S, _tensor("cu_seqlens", 0, 2, 7),
          "cu_seqlens", "must end at the token count 6, got 7"),
        E("cu_seqlens ending at 2**31 - 1", PREFILL_S, _tensor("cu_seqlens", 0, 2, I32_MAX),
          "cu_seqlens", "must end at the token count 6, got 2147483647"),
        # the offsets say how many sequences there are: an extra one needs its own slot entry
        E("cu_seqlens with a trailing empty sequence", PREFILL_S, _tensor("cu_seqlens", 0, 2, 6, 6),
          "initial_state_indices", r"expected shape \[3\]"),
        E("cu_seqlens 2-D", PREFILL_S, _set("cu_seqlens", lambda kw: kw["cu_seqlens"][None]),
          "cu_seqlens", r"expected shape \[N\+1\]"),
        E("cu_seqlens of 2**33 zeros", PREFILL_S, _broadcast("cu_seqlens", HUGE), "cu_seqlens",
          "must end at the token count 6, got 0"),
        E("cu_seqlens on the meta device", PREFILL_S, _meta("cu_seqlens"), "cu_seqlens", CPU),
        # 2**31 tokens: int32 offsets cannot reach them (the output would need 64 GiB)
        E("2**31 tokens", PREFILL_S,
          _all(*(_stretched(n, 1, 2**31) for n in ("query", "key", "value", "g", "beta"))),
          "cu_seqlens", "must end at the token count 2147483648"),
        E("query on the meta device", PREFILL_S, _meta("query"), "query", CPU),
        E("g on the meta device", PREFILL_S, _meta("g"), "g", CPU),
        E("initial_state on the meta device", PREFILL_S, _meta("initial_state"), "initial_state",
          CPU),
        E("query int32", PREFILL_S, _zeros("query", 1, 6, 1, 8, dtype=I32), "query", ACT),
        E("query 3-D", PREFILL_S, _zeros("query", 6, 1, 8), "query",
          r"expected shape \[1, T, HK, K\]"),
        E("key int32", PREFILL_S, _zeros("key", 1, 6, 1, 8, dtype=I32), "key", ACT),
        E("key 3-D", PREFILL_S, _zeros("key", 6, 1, 8), "key"),
        E("value int32", PREFILL_S, _zeros("value", 1, 6, 2, 4, dtype=I32), "value", ACT),
        E("beta 2-D", PREFILL_S, _zeros("beta", 6, 2), "beta", r"expected shape \[1, 6, 2\]"),
        E("initial_state 3-D", PREFILL_S, _zeros("initial_state", 2, 2, 8), "initial_state",
          r"expected shape \[N, 2, 8, 4\]"),
        E("value 3-D", PREFILL_S, _zeros("value", 6, 2, 4), "value",
          r"expected shape \[1, B, H, D\]"),
        E("beta int32", PREFILL_S, _zeros("beta", 1, 6, 2, dtype=I32), "beta"),
        E("g 2-D", PREFILL_S, _zeros("g", 6, 2), "g", r"expected shape \[1, 6, 2\]"),
        E("initial_state int32", PREFILL_S, _zeros("initial_state", 2, 2, 8, 4, dtype=I32),
          "initial_state", POOL_DTYPE),
        E("initial_state slot stride smaller than a slot", PREFILL_S,
          _strided("initial_state", 150, (2, 2, 8, 4), (50, 32, 4, 1)), "initial_state",
          "slot stride 50 is smaller"),
        E("initial_state elements overlapping inside a slot", PREFILL_S,
          _strided("initial_state", 200, (2, 2, 8, 4), (64, 32, 2, 1)), "initial_state",
          "each slot must be dense"),
        E("g with a head too many", PREFILL_S, _zeros("g", 1, 6, 3), "g",
          r"expected shape \[1, 6, 2\]"),
        E("g bf16", PREFILL_S, _zeros("g", 1, 6, 2, dtype=BF16), "g", "expected dtype Float"),
        E("beta with a token too few", PREFILL_S, _zeros("beta", 1, 5, 2), "beta",
          r"expected shape \[1, 6, 2\]"),
        E("initial_state [N, HV, V, K]", PREFILL_S, _zeros("initial_state", 2, 2, 4, 8),
          "initial_state", r"expected shape \[N, 2, 8, 4\]"),
        E("initial_state slots sharing storage", PREFILL_S,
          _set("initial_state", lambda kw: torch.zeros(1, 2, 8, 4).expand(2, 2, 8, 4)),
          "initial_state", "slot stride 0 is smaller"),
        E("query and key [2, 3, 1, 8]", PREFILL_S,
          _all(_zeros("query", 2, 3, 1, 8), _zeros("key", 2, 3, 1, 8)), "query",
          r"expected shape \[1, T, HK, K\]"),
        E("query, key and value [2, 3, H, D]", PREFILL_S,
          _all(_zeros("query", 2, 3, 1, 8), _zeros("key", 2, 3, 1, 8), _zeros("value", 2, 3, 2, 4)),
          "query"),
        # value with 3 heads over 1 q/k head is valid by itself: g and beta (2 heads) disagree
        E("value with a head more than g", PREFILL_S, _zeros("value", 1, 6, 3, 4), "g",
          r"expected shape \[1, 6, 3\]"),
        # our kernels' limits: dense slots, one activation dtype (the reference computes these)
        E("initial_state slots not dense", PREFILL_S,
          _set("initial_state", lambda kw: torch.zeros(2, 2, 4, 8).transpose(-1, -2)),
          "initial_state", "each slot must be dense", OURS),
        E("key bf16 with query fp32", PREFILL_S, _zeros("key", 1, 6, 1, 8, dtype=BF16), "key",
          "expected query's dtype", OURS),
    ),
    "causal_conv1d_weight_pack": (
        E("H5 3-D [D, 1, W] weight", PACK, _set("weight", lambda kw: kw["weight"][:, None]),
          "weight"),
        E("D not a multiple of 32", PACK, _set("weight", lambda kw: kw["weight"][:48].contiguous()),
          "weight"),
        E("width 3", PACK, _set("weight", lambda kw: kw["weight"][:, :3].contiguous()), "weight"),
        # the unit tests' weights (zeros, fp32 unless said)
        E("weight [32, 1, 4]", PACK_S, _zeros("weight", 32, 1, 4), "weight",
          r"expected a 2-D \[D, W\] weight, got shape \[32, 1, 4\]"),
        E("weight 1-D", PACK_S, _zeros("weight", 32), "weight", "expected a 2-D"),
        # 3-D with size(1) == 4: only a rank check rejects it (a width check passes it)
        E("H5 3-D [D, 4, 1] weight", PACK_S, _zeros("weight", 32, 4, 1), "weight", "expected a 2-D"),
        E("weight 0-D", PACK_S, _set("weight", lambda kw: torch.tensor(1.0)), "weight",
          "expected a 2-D"),
        E("weight D=48", PACK_S, _zeros("weight", 48, 4), "weight",
          "VNNI packing needs D % 32 == 0, got D=48"),
        E("weight D=31", PACK_S, _zeros("weight", 31, 4), "weight",
          "VNNI packing needs D % 32 == 0, got D=31"),
        E("weight width 3", PACK_S, _zeros("weight", 32, 3), "weight",
          "VNNI packing needs width 4, got 3"),
        E("weight width 8", PACK_S, _zeros("weight", 32, 8), "weight",
          "VNNI packing needs width 4, got 8"),
        E("weight int32", PACK_S, _zeros("weight", 32, 4, dtype=I32), "weight", ACT),
        E("weight bool", PACK_S, _zeros("weight", 32, 4, dtype=torch.bool), "weight", ACT),
        E("weight complex64", PACK_S, _zeros("weight", 32, 4, dtype=torch.complex64), "weight",
          ACT),
        E("weight int64", PACK_S, _zeros("weight", 32, 4, dtype=I64), "weight", ACT),
        E("weight uint8", PACK_S, _zeros("weight", 32, 4, dtype=torch.uint8), "weight", ACT),
        E("weight 4-D [D/32, 2, 32, 2]", PACK_S, _zeros("weight", 1, 2, 32, 2), "weight",
          "expected a 2-D"),
        E("weight [4, 32]", PACK_S, _zeros("weight", 4, 32), "weight",
          "VNNI packing needs width 4, got 32"),
        E("weight width 2", PACK_S, _zeros("weight", 32, 2), "weight",
          "VNNI packing needs width 4, got 2"),
        E("weight width 0", PACK_S, _zeros("weight", 32, 0), "weight",
          "VNNI packing needs width 4, got 0"),
        E("weight D=1", PACK_S, _zeros("weight", 1, 4), "weight",
          "VNNI packing needs D % 32 == 0, got D=1"),
        E("weight [2**34, 3] broadcast", PACK_S, _broadcast("weight", 2**34, 3, dtype=F32), "weight",
          "VNNI packing needs width 4, got 3"),
        # our kernels' limit: no float64 weights (the reference packs them)
        E("weight float64", PACK_S, _zeros("weight", 32, 4, dtype=F64), "weight", ACT, OURS),
    ),
    "causal_conv1d_fwd": (
        E("H5 3-D [D, 1, W] weight", P.FWD, _set("weight", lambda kw: kw["weight"][:, None]),
          "weight"),
        E("H7 slot index past the pool", P.FWD, _tensor("cache_indices", 3, -1, 7, 1),
          "cache_indices"),
        E("H7 negative slot index that is not the pad id", P.FWD,
          _tensor("cache_indices", 3, -2, 0, 1), "cache_indices"),
        E("cache_indices without conv_states", P.FWD, _set("conv_states", None), "cache_indices",
          "given without conv_states"),
        E("state_len shorter than W-1", P.FWD,
          _set("conv_states", lambda kw: kw["conv_states"][..., :2]), "conv_states"),
        E("bias of the wrong length", P.FWD, _set("bias", lambda kw: kw["bias"][:32]), "bias"),
        E("query_start_loc not ending at the token count", P.FWD,
          _tensor("query_start_loc", 0, 5, 5, 7, 70), "query_start_loc"),
        # the unit tests' inputs (D 32, lengths [3, 5], bf16, slots [2, 0] of 3, state_len 3)
        E("weight [32, 1, 4]", FWD_S, _zeros("weight", 32, 1, 4), "weight",
          r"expected a 2-D \[D, W\] weight"),
        E("H5 3-D [D, 4, 1] weight", FWD_S, _zeros("weight", 32, 4, 1), "weight", "expected a 2-D"),
        E("weight with 16 channels", FWD_S, _zeros("weight", 16, 4), "weight",
          r"expected 32 channels \(as x has\), got 16"),
        E("weight width 1", FWD_S, _zeros("weight", 32, 1), "weight",
          r"width must be in \[2, 16\]"),
        E("packed weight of width 3", FWD_S,
          _all(_zeros("weight", 32, 3), _set("is_weight_packed", True)), "weight",
          "VNNI packing needs width 4"),
        E("bias with a channel too many", FWD_S, _zeros("bias", 33, dtype=BF16), "bias",
          r"expected shape \[32\]"),
        E("conv_states state_len 2", FWD_S, _zeros("conv_states", 3, 32, 2), "conv_states",
          "state_len 2 is shorter"),
        E("conv_states with 16 channels", FWD_S, _zeros("conv_states", 3, 16, 3), "conv_states",
          r"expected shape \[N, 32, state_len\]"),
        *_slot_errors("cache_indices", FWD_S, n_slots=3),
        E("has_initial_state int32", FWD_S, _tensor("has_initial_state", 1, 0), "has_initial_state",
          "expected a bool tensor"),
        E("has_initial_state for 1 of 2 sequences", FWD_S,
          _tensor("has_initial_state", True, dtype=torch.bool), "has_initial_state",
          r"expected shape \[2\]"),
        E("query_start_loc [0, 3, 9]", FWD_S, _tensor("query_start_loc", 0, 3, 9),
          "query_start_loc", "must end at the token count 8"),
        E("query_start_loc [0, 5, 3, 8]", FWD_S, _tensor("query_start_loc", 0, 5, 3, 8),
          "query_start_loc", "must be non-decreasing"),
        E("varlen x without query_start_loc", FWD_S, _set("query_start_loc", None), "x",
          r"without query_start_loc expected a batch \[B, D, L\]"),
        E("x int32", FWD_S, _zeros("x", 32, 8, dtype=I32), "x"),
        E("query_start_loc not starting at 0", FWD_S, _tensor("query_start_loc", 1, 3, 8),
          "query_start_loc", "must start at 0"),
        E("query_start_loc ending at 2**31 - 1", FWD_S, _tensor("query_start_loc", 0, 3, I32_MAX),
          "query_start_loc", "must end at the token count 8, got 2147483647"),
        # the offsets say how many sequences there are: an extra one needs its own slot entry
        E("query_start_loc with a trailing empty sequence", FWD_S,
          _tensor("query_start_loc", 0, 3, 8, 8), "cache_indices", r"expected shape \[3\]"),
        E("query_start_loc int64", FWD_S, _tensor("query_start_loc", 0, 3, 8, dtype=I64),
          "query_start_loc", "expected dtype Int"),
        E("query_start_loc 2-D", FWD_S,
          _set("query_start_loc", lambda kw: kw["query_start_loc"][None]), "query_start_loc",
          r"expected shape \[N\+1\]"),
        E("query_start_loc on the meta device", FWD_S, _meta("query_start_loc"), "query_start_loc",
          CPU),
        E("x on the meta device", FWD_S, _meta("x"), "x", CPU),
        E("weight on the meta device", FWD_S, _meta("weight"), "weight", CPU),
        E("conv_states on the meta device", FWD_S, _meta("conv_states"), "conv_states", CPU),
        E("has_initial_state on the meta device", FWD_S,
          _set("has_initial_state", lambda kw: torch.tensor([True, False], device="meta")),
          "has_initial_state", CPU),
        E("has_initial_state without conv_states", FWD_S,
          _all(_set("conv_states", None), _set("cache_indices", None),
               _tensor("has_initial_state", True, False, dtype=torch.bool)),
          "has_initial_state", "given without conv_states"),
        E("has_initial_state 2-D", FWD_S,
          _set("has_initial_state", lambda kw: torch.tensor([[True, False]])), "has_initial_state",
          r"expected shape \[2\]"),
        E("weight int32", FWD_S, _zeros("weight", 32, 4, dtype=I32), "weight", ACT),
        E("varlen x 3-D", FWD_S, _zeros("x", 1, 32, 8, dtype=BF16), "x",
          r"with query_start_loc expected a varlen \[D, T\]"),
        E("bias 2-D", FWD_S, _zeros("bias", 1, 32, dtype=BF16), "bias", r"expected shape \[32\]"),
        E("conv_states 2-D", FWD_S, _zeros("conv_states", 32, 3, dtype=BF16), "conv_states",
          r"expected shape \[N, D, state_len\]"),
        E("bias int32", FWD_S, _zeros("bias", 32, dtype=I32), "bias", "expected x's dtype"),
        E("conv_states int32", FWD_S, _zeros("conv_states", 3, 32, 3, dtype=I32), "conv_states",
          "expected x's dtype"),
        E("conv_states slots at one address", FWD_S,
          _set("conv_states", lambda kw: torch.zeros(1, 32, 3, dtype=BF16).expand(3, 32, 3)),
          "conv_states", "elements overlap in memory"),
        # channel stride 2 and column stride 3: element (3, 0) is element (0, 2)
        E("conv_states elements overlapping inside a slot", FWD_S,
          _strided("conv_states", 600, (3, 32, 3), (200, 2, 3)), "conv_states",
          "elements of a slot overlap in memory"),
        # checked before x is copied or the output allocated (64 GiB each)
        E("x of 2**30 tokens with query_start_loc ending at 8", FWD_S,
          _set("x", lambda kw: torch.zeros(1, 32, dtype=BF16).expand(2**30, 32).T),
          "query_start_loc", "must end at the token count 1073741824, got 8"),
        E("broadcast x of 2**30 tokens with a slot index past the pool", FWD_S,
          _all(_broadcast("x", 32, 2**30, dtype=BF16),
               _tensor("query_start_loc", 0, 2**30 - 5, 2**30), _tensor("cache_indices", 3, 0)),
          "cache_indices", "index 3 at row 0 is outside"),
        # our kernels' limits: one activation dtype, no float64 (the reference computes both)
        E("weight fp32 with x bf16", FWD_S, _zeros("weight", 32, 4, dtype=F32), "weight",
          "expected x's dtype BFloat16, got Float", OURS),
        E("bias fp32 with x bf16", FWD_S, _zeros("bias", 32, dtype=F32), "bias",
          "expected x's dtype", OURS),
        E("conv_states fp32 with x bf16", FWD_S, _zeros("conv_states", 3, 32, 3, dtype=F32),
          "conv_states", "expected x's dtype", OURS),
        E("x float64", FWD_S, _zeros("x", 32, 8, dtype=F64), "x", ACT, OURS),
    ),
    "causal_conv1d_update": (
        E("H5 3-D [D, 1, W] weight", P.UPDATE, _set("weight", lambda kw: kw["weight"][:, None]),
          "weight"),
        E("H7 slot index past the pool", P.UPDATE, _tensor("conv_state_indices", 2, -1, 4),
          "conv_state_indices"),
        E("H7 negative slot index that is not the pad id", P.UPDATE,
          _tensor("conv_state_indices", 2, -2, 0), "conv_state_indices"),
        E("conv_states with other channels", P.UPDATE,
          _set("conv_states", lambda kw: kw["conv_states"][:, :32]), "conv_states"),
        E("num_accepted_tokens with a 2-D x", P.UPDATE, _tensor("num_accepted_tokens", 1, 1, 1),
          "num_accepted_tokens"),
        E("speculative row accepting 0 tokens", P.UPDATE_SPEC_E,
          _tensor("num_accepted_tokens", 1, 2, 0), "num_accepted_tokens"),
        # the unit tests' inputs (B 2, D 32, bf16, slots [2, 0] of 3, state_len 4)
        *_slot_errors("conv_state_indices", UPDATE_S, n_slots=3),
        E("no conv_state_indices and 1 slot for 2 rows", UPDATE_S,
          _all(_set("conv_state_indices", None), _zeros("conv_states", 1, 32, 4)),
          "conv_state_indices", r"absent, so rows use slots 0\.\.1"),
        E("num_accepted_tokens [1, 1] with a 2-D x", UPDATE_S, _tensor("num_accepted_tokens", 1, 1),
          "num_accepted_tokens", "only goes with a 3-D"),
        E("3-D x without num_accepted_tokens", UPDATE_S, _zeros("x", 2, 3, 32),
          "num_accepted_tokens", "is required with a 3-D"),
        E("num_accepted_tokens [1, 4] with L=3, state_len 4", UPDATE_S,
          _all(_zeros("x", 2, 3, 32), _tensor("num_accepted_tokens", 1, 4)), "num_accepted_tokens",
          r"row 1: 4 is outside \[1, 2\]"),
        E("num_accepted_tokens [0, 1]", UPDATE_S,
          _all(_zeros("x", 2, 3, 32), _tensor("num_accepted_tokens", 0, 1)), "num_accepted_tokens",
          "row 0: 0 is outside"),
        E("L=5 with state_len 4", UPDATE_S,
          _all(_zeros("x", 2, 5, 32), _tensor("num_accepted_tokens", 1, 1)), "conv_states",
          "state_len 4 is shorter than L = 5"),
        E("weight [32, 1, 4]", UPDATE_S, _zeros("weight", 32, 1, 4), "weight", "expected a 2-D"),
        E("H5 3-D [D, 4, 1] weight", UPDATE_S, _zeros("weight", 32, 4, 1), "weight",
          "expected a 2-D"),
        E("x with 16 channels", UPDATE_S, _zeros("x", 2, 16), "weight",
          r"expected 16 channels \(as x has\), got 32"),
        E("x 1-D", UPDATE_S, _zeros("x", 2), "x", r"expected \[B, D\] or \[B, L, D\]"),
        E("bias [2, 32]", UPDATE_S, _zeros("bias", 2, 32, dtype=BF16), "bias",
          r"expected shape \[32\]"),
        E("conv_states state_len 2", UPDATE_S, _zeros("conv_states", 3, 32, 2), "conv_states",
          "state_len 2 is shorter"),
        E("conv_states None", UPDATE_S, _set("conv_states", None), "conv_states"),
        # pools whose slots share memory: an in-place update cannot keep the other slots intact
        E("conv_states slots at one address", UPDATE_S32, _set("conv_states", _one_slot_twice),
          "conv_states", "elements overlap in memory"),
        E("conv_states slot stride smaller than a slot", UPDATE_S32,
          _set("conv_states", _squeezed_slots), "conv_states", "slot stride 50 is smaller"),
        E("conv_states 0-D", UPDATE_S32, _set("conv_states", lambda kw: torch.zeros(())),
          "conv_states", r"expected shape \[N, D, state_len\]"),
        # channel stride 2 and column stride 3: element (3, 0) is element (0, 2)
        E("conv_states elements overlapping inside a slot", UPDATE_S32,
          _strided("conv_states", 400, (2, 32, 3), (200, 2, 3)), "conv_states",
          "elements of a slot overlap in memory"),
        E("conv_states int32", UPDATE_S, _zeros("conv_states", 3, 32, 4, dtype=I32), "conv_states",
          "expected x's dtype"),
        E("x int32", UPDATE_S, _zeros("x", 2, 32, dtype=I32), "x", ACT),
        E("x 4-D", UPDATE_S, _zeros("x", 2, 1, 1, 32), "x", r"expected \[B, D\] or \[B, L, D\]"),
        E("weight int32", UPDATE_S, _zeros("weight", 32, 4, dtype=I32), "weight", ACT),
        E("bias int32", UPDATE_S, _zeros("bias", 32, dtype=I32), "bias", "expected x's dtype"),
        E("num_accepted_tokens int64", UPDATE_S,
          _all(_zeros("x", 2, 3, 32), _tensor("num_accepted_tokens", 1, 1, dtype=I64)),
          "num_accepted_tokens", "expected dtype Int"),
        E("num_accepted_tokens 2-D", UPDATE_S,
          _all(_zeros("x", 2, 3, 32),
               _set("num_accepted_tokens", lambda kw: torch.tensor([[1, 1]], dtype=I32))),
          "num_accepted_tokens", r"expected shape \[2\]"),
        E("x on the meta device", UPDATE_S, _meta("x"), "x", CPU),
        E("conv_states on the meta device", UPDATE_S, _meta("conv_states"), "conv_states", CPU),
        E("weight on the meta device", UPDATE_S, _meta("weight"), "weight", CPU),
        E("num_accepted_tokens on the meta device", UPDATE_S,
          _all(_zeros("x", 2, 3, 32), _meta("num_accepted_tokens", [1, 1])),
          "num_accepted_tokens", CPU),
        # checked before anything of the batch's size is allocated
        E("2**33 rows sharing slot 0", UPDATE_S,
          _all(_stretched("x", 0, HUGE), _broadcast("conv_state_indices", HUGE)),
          "conv_state_indices", "slot 0 is used by rows 0 and 1"),
        E("2**30 speculative tokens with state_len 4", UPDATE_S,
          _all(_set("x", lambda kw: torch.zeros(1, 1, 32, dtype=BF16).expand(2, 2**30, 32)),
               _tensor("num_accepted_tokens", 1, 1)),
          "conv_states", "state_len 4 is shorter than L = 1073741824"),
        # our kernels' limits: contiguous channels in x, one activation dtype
        E("x channels strided", UPDATE_S, _set("x", lambda kw: torch.zeros(32, 2, dtype=BF16).T),
          "x", "channels must be contiguous", OURS),
        E("conv_states fp32 with x bf16", UPDATE_S, _zeros("conv_states", 3, 32, 4, dtype=F32),
          "conv_states", "expected x's dtype", OURS),
    ),
}
