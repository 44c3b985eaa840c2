"""Our GDN is compressai's GDN: same state-dict keys, same outputs (we only avoid its import cost)."""

import warnings

import pytest
import torch

from codec.networks.gdn import GDN, LowerBound


@pytest.mark.parametrize("inverse", [False, True])
def test_gdn_matches_compressai_with_the_same_weights(inverse):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        from compressai.layers import GDN as ReferenceGDN
    ours, reference = GDN(8, inverse=inverse), ReferenceGDN(8, inverse=inverse)
    with torch.no_grad():
        reference.gamma.add_(0.05 * torch.rand_like(reference.gamma))
    ours.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(2, 8, 5, 7)
    assert torch.allclose(ours(x), reference(x), rtol=1e-6, atol=1e-6)


def test_lower_bound_lets_gradients_push_values_back_up():
    bound = LowerBound(1.0)
    x = torch.tensor([0.5, 2.0], requires_grad=True)
    (-bound(x).sum()).backward()  # descent raises both: both get a gradient
    assert torch.equal(x.grad, torch.tensor([-1.0, -1.0]))
    x.grad = None
    bound(x).sum().backward()  # descent would lower x below the bound: blocked there
    assert torch.equal(x.grad, torch.tensor([0.0, 1.0]))
