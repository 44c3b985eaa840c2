import pytest


@pytest.fixture(autouse=True)
def _tiny(use_tiny_weights):
    return use_tiny_weights
