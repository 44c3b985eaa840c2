import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    """Small models gain nothing from threads, and a shared machine loses a lot to oversubscription."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
