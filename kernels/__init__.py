"""The project's own fused C++ kernels for the ops in SPEC.md. (Not built yet.)"""
