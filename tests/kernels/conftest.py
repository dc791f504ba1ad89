import pytest

import kernels
from harness.isolation import junk_fill_allocations


@pytest.fixture(scope="session")
def ops():
    """torch.ops.gdn_kernels, built once per session (cached on disk across sessions)."""
    return kernels.load()


@pytest.fixture(autouse=True)
def poisoned_allocations():
    """Every CPU allocation during a kernel test starts as junk (NaN or nonzero in every float
    dtype), so an output element a kernel forgets to write cannot pass as a lucky zero.
    This is c10's own allocator flag, the one the harness's isolated workers set."""
    junk_fill_allocations(True)
    yield
    junk_fill_allocations(False)
