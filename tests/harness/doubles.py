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


class Hanging(Backend):
    OPS = ALL_OPS

    def call(self, op, kwargs, variant):
        time.sleep(3600)
