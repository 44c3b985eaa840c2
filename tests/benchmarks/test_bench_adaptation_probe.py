"""benchmarks.adaptation_probe: θ = 0 is the shipped decoder, a fit lowers the error, θ's bits grow with θ."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmarks.adaptation_probe import SETS, Adaptation, theta_bits


@pytest.mark.parametrize("kind", SETS)
def test_zero_theta_is_the_decoder_itself(active_tiny_model, kind):
    g_s = active_tiny_model.g_s
    y_hat = torch.randn(1, g_s[0].in_channels, 3, 4, generator=torch.Generator().manual_seed(0))
    theta = Adaptation(g_s, kind)
    with torch.no_grad():
        assert torch.equal(theta(theta.prefix(y_hat)), g_s(y_hat))


def test_a_fitted_theta_moves_the_decoder_towards_the_target(active_tiny_model):
    g_s = active_tiny_model.g_s
    y_hat = torch.randn(1, g_s[0].in_channels, 3, 4, generator=torch.Generator().manual_seed(1))
    theta = Adaptation(g_s, "all")
    prefix = theta.prefix(y_hat)
    with torch.no_grad():
        target = g_s(y_hat) + 0.1  # a decoder whose output is off by a constant: the last bias can fix it
    optimizer = torch.optim.Adam(theta.parameters(), lr=0.01)
    errors = []
    for _ in range(20):
        error = (theta(prefix) - target).pow(2).mean()
        errors.append(error.item())
        error.backward()
        optimizer.step()
        optimizer.zero_grad()
    assert errors[-1] < 0.1 * errors[0]


def test_theta_bits_grow_with_the_values_and_count_the_header():
    zeros, small, large = (np.full(259, v, dtype=np.int64) for v in (0, 1, 9))
    z_bits, small_bits, large_bits = (theta_bits(k)[0] for k in (zeros, small, large))
    assert 16 < z_bits < small_bits < large_bits
    assert theta_bits(zeros)[1] == 16 + 259  # exp-Golomb: one bit per zero
