"""The project's own fused C++ kernels for the ops in SPEC.md, registered with torch.library under
torch.ops.gdn_kernels. `kernels.load()` builds (cached) and returns that namespace."""

from kernels.build import detect_isa, load, loaded_isa

# Tokens per chunk of the chunked prefill (kChunk in csrc/gdn.cpp; a test keeps the two equal).
# The brgemm_bf16 mode's baseline rounds where the kernel does, which depends on the chunking.
CHUNK_SIZE = 32

__all__ = ["load", "detect_isa", "loaded_isa", "CHUNK_SIZE"]
