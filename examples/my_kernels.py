"""Test your own kernel: an adapter for kernels of your own, run by the whole harness with

    pytest tests/properties --backend examples.my_kernels:MyKernels --survey

Here the "kernels" are two small torch.library ops this module registers itself, in plain PyTorch
with fp32 math, so the example runs without a build. With a real build, delete the registrations
and load your library in `ops()`. What an adapter writes:

- `name`: the backend's name in the report's rows and in repro lines.
- `OPS`: contract op -> `OpCall`: your op's name, the contract's arguments you name otherwise
  (`renames`), and what your op returns, in order (`results`, named like SPEC.md's results). A
  contract op missing from OPS is an `unsupported` row, and its property test is skipped.
- `LIMITS`: op -> (predicate on a case description, reason): the checks your kernel really makes,
  quoting its message. A case inside one is an `unsupported` row with that reason.
- `NEAREST` (optional): op -> the nearest case your kernel supports; it runs in place of the case
  outside LIMITS, so every other axis of that draw is still tested.
- `available()`: None when usable, else why not and how to fix it (the tests are skipped with it).
- `ops()`: the namespace holding your ops (after `torch.ops.load_library(path)`).
- `prepare(op, kw)`: last fixes after renames, e.g. an argument your schema requires.
- `describe()`: recorded on every row (build, ISA, commit), so a report says what it tested.

MY_KERNELS_BUG=drop_dt_bias makes the gating kernel forget dt_bias: a wrong kernel the harness
must catch (tests/harness/test_own_kernel_example.py).
"""

from __future__ import annotations

import os

import torch

from harness.backends import Backend, OpCall


# --- the "kernels": stand-ins for a C++ build --------------------------------------------------

def _cpu_only(**tensors):
    """A call with one tensor on the meta device among real ones goes to the fake implementation
    (the dispatcher picks it), which would return uninitialised memory: raise naming it. Fake
    tensors (tracing, opcheck) and calls whose tensors are all meta pass."""
    if all(type(t) is torch.Tensor for t in tensors.values()) and \
            any(t.device.type != "meta" for t in tensors.values()):
        for name, t in tensors.items():
            torch._check(t.device.type == "cpu", lambda: f"{name}: expected a CPU tensor, got {t.device}")


@torch.library.custom_op("my_kernels::gdn_gating", mutates_args=())
def gdn_gating(A_log: torch.Tensor, a: torch.Tensor, b: torch.Tensor, dt_bias: torch.Tensor,
               sp_beta: float, sp_threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
    """g = -exp(A_log) * softplus(a + dt_bias) in fp32, and sigmoid(b) in b's dtype: [1, T, HV]."""
    _cpu_only(A_log=A_log, a=a, b=b, dt_bias=dt_bias)
    for t, arg in ((a, "a"), (b, "b")):
        torch._check(t.dtype in (torch.bfloat16, torch.float16),
                     lambda: f"{arg}: bf16/fp16 activations only, got {t.dtype}")
    for t, arg in ((A_log, "A_log"), (dt_bias, "dt_bias")):
        torch._check(t.is_floating_point(), lambda: f"{arg}: expected floats, got {t.dtype}")
    torch._check(a.dim() == 2, lambda: f"a: expected shape [T, HV], got {list(a.shape)}")
    torch._check(b.shape == a.shape, lambda: f"b: expected a's shape {list(a.shape)}")
    for t, arg in ((A_log, "A_log"), (dt_bias, "dt_bias")):
        torch._check(t.shape == a.shape[1:], lambda: f"{arg}: expected shape [{a.shape[1]}]")
    torch._check(sp_beta > 0, lambda: f"softplus_beta (sp_beta): must be positive, got {sp_beta}")
    x = a.float() + dt_bias.float()
    if os.environ.get("MY_KERNELS_BUG") == "drop_dt_bias":
        x = a.float()
    bx = sp_beta * x
    softplus = torch.where(bx > sp_threshold, x, torch.log1p(torch.exp(bx)) / sp_beta)
    g = -torch.exp(A_log.float()) * softplus
    return g[None], torch.sigmoid(b.float()).to(b.dtype)[None]


@gdn_gating.register_fake
def _gdn_gating_fake(A_log, a, b, dt_bias, sp_beta, sp_threshold):
    _cpu_only(A_log=A_log, a=a, b=b, dt_bias=dt_bias)
    return a.new_empty((1, *a.shape), dtype=torch.float32), b.new_empty((1, *b.shape))


@torch.library.custom_op("my_kernels::conv_weight_pack", mutates_args=())
def conv_weight_pack(weight: torch.Tensor, block: int) -> torch.Tensor:
    """[D, 4] -> VNNI-2 blocks [D/block, 2, block, 2], flattened back to [D, 4]."""
    _cpu_only(weight=weight)
    torch._check(weight.is_floating_point(), lambda: f"weight: expected floats, got {weight.dtype}")
    torch._check(weight.dim() == 2, lambda: f"weight: expected a 2-D [D, W], got {weight.dim()}-D")
    D, W = weight.shape
    torch._check(W == 4 and D % block == 0, lambda: f"weight: needs width 4 and D % {block} == 0")
    return weight.reshape(D // block, block, 2, 2).permute(0, 2, 1, 3).reshape(D, W)   # a copy


@conv_weight_pack.register_fake
def _conv_weight_pack_fake(weight, block):
    _cpu_only(weight=weight)
    return torch.empty_like(weight, memory_format=torch.contiguous_format)


# --- the adapter -------------------------------------------------------------------------------

class MyKernels(Backend):
    name = "examples.my_kernels:MyKernels"   # how repro lines name it: `--backend` takes this
    OPS = {
        "fused_gdn_gating": OpCall("gdn_gating", results=("g", "beta"), renames={
            "softplus_beta": "sp_beta", "softplus_threshold": "sp_threshold"}),
        "causal_conv1d_weight_pack": OpCall("conv_weight_pack", results=("packed",)),
    }
    LIMITS = {
        "fused_gdn_gating": (
            (lambda c: c["dtype"] == "fp32", "my_kernels checks 'a: bf16/fp16 activations only'"),
        ),
    }
    NEAREST = {"fused_gdn_gating": lambda c: dict(c, dtype="bf16")}

    def available(self):
        # A real build checks its file:  if not LIBRARY.exists():
        #     return f"{LIBRARY} is not built: run `cmake --build build` in my_kernels/"
        if not hasattr(torch.ops.my_kernels, "gdn_gating"):
            return "torch.ops.my_kernels.gdn_gating is missing: examples/my_kernels.py registers it"
        return None

    def ops(self):
        # A real build loads its library here, once:  torch.ops.load_library(str(LIBRARY))
        return torch.ops.my_kernels

    def prepare(self, op, kw):
        if op == "causal_conv1d_weight_pack":
            kw["block"] = 32        # the contract's VNNI block; our schema asks for it
        return kw

    def describe(self):
        bug = os.environ.get("MY_KERNELS_BUG")
        return f"stand-ins in plain PyTorch {torch.__version__}" + (f", bug {bug}" if bug else "")
