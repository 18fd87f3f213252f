"""Architecture tests run torch single-threaded: their tensors are tiny, and on a busy machine
intra-op threads spin-wait far longer than they compute (one resnet110 step: ~0.1 s vs ~10 s)."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _single_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
