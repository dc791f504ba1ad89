"""The project's own fused C++ kernels for the ops in SPEC.md, registered with torch.library under
torch.ops.gdn_kernels. `kernels.load()` builds (cached) and returns that namespace."""

from kernels.build import detect_isa, load, loaded_isa

__all__ = ["load", "detect_isa", "loaded_isa"]
