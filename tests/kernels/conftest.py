import pytest

import kernels


@pytest.fixture(scope="session")
def ops():
    """torch.ops.gdn_kernels, built once per session (cached on disk across sessions)."""
    return kernels.load()
