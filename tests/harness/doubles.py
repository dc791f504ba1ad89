"""Test doubles for the harness's own tests: backends that are right, wrong, or die, in known ways.
They are named as "tests.harness.doubles:Class" so the isolated worker can import them."""

from __future__ import annotations

import ctypes
import os
import time

import torch

import reference as R
from harness.backends import Backend, OpCall
from harness.invariants import storage_elements
from harness.registry import REGISTRY


ALL_OPS = {op: OpCall(op) for op in REGISTRY}


class FP32Reference(Backend):
    """The same-precision baseline itself, as a backend: every valid case must pass."""
    name = "fp32-reference"
    OPS = ALL_OPS

    def results(self, op, kwargs):
        got = REGISTRY[op].run_reference(kwargs, R.FP32)
        for name, t in got.items():
            if name in kwargs and t is not None:
                kwargs[name].copy_(t)          # an in-place pool, written through its strides
        return {n: t for n, t in got.items() if n not in kwargs}

    def call(self, op, kwargs, variant):
        return self.results(op, kwargs)


class Perturbed(FP32Reference):
    """Every returned element off by 1% of the largest: a clear accuracy failure."""
    def call(self, op, kwargs, variant):
        got = self.results(op, kwargs)
        return {n: (t.double() + 0.01 * t.double().abs().max()).to(t.dtype) for n, t in got.items()}


class Unwritten(FP32Reference):
    """Returns fresh, never-written outputs (junk under the harness's allocator poisoning)."""
    def call(self, op, kwargs, variant):
        return {n: torch.empty_like(t) for n, t in self.results(op, kwargs).items()}


class DirtyGap(FP32Reference):
    """Correct results, but one element of the pool's storage outside its view is overwritten."""
    def call(self, op, kwargs, variant):
        got = self.results(op, kwargs)
        pool = next(t for n, t in kwargs.items() if n in REGISTRY[op].results)
        storage_elements(pool)[-1] = 0
        return got


class Accepting(Backend):
    """Accepts anything and returns nothing: fails every error input."""
    OPS = ALL_OPS
    def call(self, op, kwargs, variant):
        return {}


class Segfaulting(Backend):
    OPS = ALL_OPS

    def call(self, op, kwargs, variant):
        ctypes.string_at(0)        # reads address 0: SIGSEGV


class Aborting(Backend):
    OPS = ALL_OPS

    def call(self, op, kwargs, variant):
        os.abort()


class WithoutGating(FP32Reference):
    """Right on every op it has, but without fused_gdn_gating (like vLLM's older x86 builds, which
    lack the fused conv ops): that op's property test must be skipped, its pinned cases recorded
    as unsupported rows."""
    OPS = {op: c for op, c in ALL_OPS.items() if op != "fused_gdn_gating"}


class Hanging(Backend):
    OPS = ALL_OPS

    def call(self, op, kwargs, variant):
        time.sleep(3600)


def _nudge(t: torch.Tensor) -> None:
    """The first element moved to the next representable value up: one bit, within any tolerance."""
    first = t.view(-1)[:1]
    first.copy_(torch.nextafter(first, torch.full_like(first, 1e30)))


class Nondeterministic(FP32Reference):
    """Correct to within any tolerance, but the last bit of one output element changes with every
    call: not reproducible when repeated."""
    calls = 0

    def call(self, op, kwargs, variant):
        got = self.results(op, kwargs)
        Nondeterministic.calls += 1
        t = next(iter(got.values()))
        if Nondeterministic.calls % 2 and t.numel():
            _nudge(t)
        return got


class ThreadDependent(FP32Reference):
    """The last bit of one output element follows torch's thread count (a reduction split per
    thread): reproducible at a fixed count, not across counts."""
    def call(self, op, kwargs, variant):
        got = self.results(op, kwargs)
        t = next(iter(got.values()))
        if torch.get_num_threads() == 1 and t.numel():
            _nudge(t)
        return got


class BatchDependent(FP32Reference):
    """The last bit of the first output element follows the batch: a row alone differs."""
    def call(self, op, kwargs, variant):
        got = self.results(op, kwargs)
        t = next(iter(got.values()))
        if t.shape and t.numel() and t.shape[0] == 1 and t.dim() > 1 and t.shape[1] == 1:
            _nudge(t)
        return got


# An op whose schema hides its write: it updates `state` in place but declares it as a plain input
# (SPEC hazard 13). opcheck's test_schema must fail it.
_LIB = torch.library.Library("harness_doubles", "DEF")
_LIB.define("hidden_write(Tensor x, Tensor state) -> Tensor")
_LIB.define("declared_write(Tensor x, Tensor(a!) state) -> Tensor")


def _write(x, state):
    state.add_(1)
    return x.clone()


_LIB.impl("hidden_write", _write, "CPU")
_LIB.impl("declared_write", _write, "CPU")


class SchemaDouble(Backend):
    """fused_gdn_gating's name, routed to a two-argument op that writes its second argument."""
    OPS = {"fused_gdn_gating": OpCall("hidden_write", results=("g",))}

    def ops(self):
        return torch.ops.harness_doubles

    def prepare(self, op, kw):
        return dict(x=kw["a"], state=kw["b"])


class HiddenWrite(SchemaDouble):
    pass


class DeclaredWrite(SchemaDouble):
    OPS = {"fused_gdn_gating": OpCall("declared_write", results=("g",))}


def _toward_zero(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """x rounded to dtype toward zero (truncated) instead of to nearest."""
    near = x.to(dtype)
    too_big = near.to(x.dtype).abs() > x.abs()
    return torch.where(too_big, torch.nextafter(near, torch.zeros_like(near)), near)


class TowardZero(FP32Reference):
    """The fp32 reference, but every result rounded toward zero to its dtype (a state written back
    by truncation): within one ulp everywhere, biased toward zero."""
    UNROUNDED = R.Precision("fp32-unrounded", torch.float32, round_results=False)

    def call(self, op, kwargs, variant):
        spec = REGISTRY[op]
        rounded = spec.run_reference(kwargs, R.FP32)
        raw = spec.run_reference(kwargs, self.UNROUNDED)
        out = {}
        for name, t in rounded.items():
            if t is None:
                continue
            t = _toward_zero(raw[name], t.dtype)
            if name in kwargs:
                kwargs[name].copy_(t)
            else:
                out[name] = t
        return out


class Acausal(FP32Reference):
    """Correct, except that a non-finite output spreads to the previous token of its row (a chunked
    kernel's 0·NaN in a masked product)."""
    def call(self, op, kwargs, variant):
        got = self.results(op, kwargs)
        out = got.get("out")
        if out is not None and out.dim() >= 3:
            tokens = out[0] if op == "chunk_gated_delta_rule" else out
            bad = ~torch.isfinite(tokens)
            tokens[:-1][bad[1:]] = float("nan")
        return got


class WritesPastTheEnd(FP32Reference):
    """Correct results, then one byte written just past the last element of its first tensor
    argument: an out-of-bounds write. Only for the fuzzer, whose guard regions sit there (outside
    them it would damage the heap)."""
    def call(self, op, kwargs, variant):
        got = self.results(op, kwargs)
        t = next(v for v in kwargs.values() if isinstance(v, torch.Tensor) and v.numel())
        span = 1 + sum((n - 1) * s for n, s in zip(t.shape, t.stride()))
        ctypes.memset(t.data_ptr() + span * t.element_size(), 0x5A, 1)
        return got


class Mumbling(FP32Reference):
    """Right on valid calls; on an invalid one it raises without saying which argument is wrong."""
    def call(self, op, kwargs, variant):
        try:
            return self.results(op, kwargs)
        except RuntimeError:
            raise RuntimeError("invalid input") from None


class HalfOnly(Accepting):
    """Accepts anything, and declares that it takes bf16 activations only (nearest: the same case
    in bf16): error inputs built on fp32 cases move to their bf16 twin."""
    LIMITS = {op: ((lambda c: c.get("dtype", "bf16") != "bf16", "bf16 activations only"),)
              for op in REGISTRY}
    NEAREST = {op: (lambda c: {**c, "dtype": "bf16"}) for op in REGISTRY}
