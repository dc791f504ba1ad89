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

    def call(self, op: str, kwargs: dict, variant: str) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def describe(self) -> str:
        """Recorded with every row (e.g. the ISA the kernels were built for)."""
        return ""


class Ours(Backend):
    """This project's kernels (torch.ops.gdn_kernels), built on first use."""
    name = "ours"
    GEMM_PATHS = ("brgemm", "blas")
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
