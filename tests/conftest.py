"""Suite-wide settings."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    """Every test runs torch on one intra-op thread: the models are tiny, so threads gain nothing,
    thread hand-offs dominate on a busy machine, and results do not depend on the core count."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
