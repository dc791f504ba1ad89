import ctypes
import os

import pytest
import torch

import kernels


@pytest.fixture(scope="session")
def ops():
    """torch.ops.gdn_kernels, built once per session (cached on disk across sessions)."""
    return kernels.load()


@pytest.fixture(autouse=True)
def poisoned_allocations():
    """Every CPU allocation during a kernel test starts as junk (NaN or nonzero in every float
    dtype), so an output element a kernel forgets to write cannot pass as a lucky zero.
    This is c10's own allocator flag, reached through its exported global."""
    lib = ctypes.CDLL(os.path.join(os.path.dirname(torch.__file__), "lib", "libc10.so"))
    flag = ctypes.c_bool.in_dll(lib, "FLAGS_caffe2_cpu_allocator_do_junk_fill")
    flag.value = True
    yield
    flag.value = False
