"""How a reference computes: the float64 oracle, or a chosen working precision.

The oracle upcasts every input to float64 and returns float64 results, never rounded: it is the
ground truth a kernel's error is measured against.

A working precision runs the *same* code with a lower compute dtype (fp32 for the kernels of this
family: bf16/fp16/fp32 inputs, fp32 arithmetic) and rounds each result to the dtype a kernel returns
(outputs to the activation dtype, states to the state dtype). Its distance from the oracle is the
error a reasonable same-precision implementation makes: the baseline of the tolerance policy.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Precision:
    name: str
    compute: torch.dtype
    round_results: bool

    def up(self, t: torch.Tensor | None) -> torch.Tensor | None:
        """An input in the compute dtype (None passes through)."""
        return None if t is None else t.to(self.compute)

    def copy(self, t: torch.Tensor) -> torch.Tensor:
        """A private, dense copy in the compute dtype (for a pool the reference will update)."""
        return t.to(self.compute, memory_format=torch.contiguous_format, copy=True)

    def result(self, t: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """A result as returned: rounded to `dtype` in a working precision, exact for the oracle."""
        return t.to(dtype) if self.round_results else t


ORACLE = Precision("oracle", torch.float64, round_results=False)
FP32 = Precision("fp32", torch.float32, round_results=True)


def working(compute: torch.dtype) -> Precision:
    """A working precision computing in `compute` and rounding results like a kernel would."""
    return Precision(str(compute).removeprefix("torch."), compute, round_results=True)
