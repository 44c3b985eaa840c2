"""Claims about the stopping rules (codec/stopping.py): a plateau stops, a falling curve does not."""

import pytest
import torch

from codec.stopping import EsEmv, MovingVariance, Plateau, ema_variance


def _stops_at(values, patience, every=1):
    rule = Plateau(patience)
    for k, v in enumerate(values):
        if k % every == 0 and rule.update(k, v):
            return k
    return None


def test_a_plateau_stops_after_its_patience_and_a_falling_curve_never_does():
    falling = [100 / (1 + k) for k in range(200)]
    plateau = [max(100 - k, 60) for k in range(200)]  # its minimum is reached at step 40
    assert _stops_at(falling, 5) is None
    assert _stops_at(plateau, 5) == 45
    assert _stops_at(plateau, 5, every=4) == 48  # watched every 4 steps: patience counts steps
    assert _stops_at(plateau, 0) is None  # no patience: never stops


def test_noise_above_the_minimum_does_not_reset_the_patience():
    values = [10, 9, 8, 8.5, 8.2, 8.7, 8.1, 8.4]
    assert _stops_at(values, 5) == 7


def test_the_moving_variance_falls_as_steps_shrink_and_settles_on_jitter():
    g = torch.Generator().manual_seed(0)
    converging = [torch.full((8, 8), 1 - 0.8**k) for k in range(60)]
    emv = ema_variance(converging, 0.1)
    peak = max(range(1, 60), key=lambda k: emv[k])  # the lagging average's rise, about 1/α steps
    assert emv[0] is None and peak <= 12 and all(b < a for a, b in zip(emv[peak:], emv[peak + 1:]))
    still = [torch.ones(8, 8) + 0.01 * torch.rand(8, 8, generator=g) for _ in range(200)]
    late = ema_variance(still, 0.1)[100:]
    assert max(late) < 3 * min(late) and max(late) < 1e-4  # a flat, small level: its minimum stops falling


def test_the_first_variance_is_bias_corrected():
    watch = MovingVariance(0.1)
    assert watch.update(torch.zeros(4)) is None
    assert watch.update(torch.ones(4)) == pytest.approx(0.9)  # α(1−α)·1 / α, not α(1−α)·1


def test_bad_settings_are_value_errors():
    with pytest.raises(ValueError):
        Plateau(-1)
    with pytest.raises(ValueError):
        MovingVariance(1.0)


def test_es_emv_does_not_stop_in_the_rise_of_a_converging_iterate_but_does_once_it_only_jitters():
    g = torch.Generator().manual_seed(1)
    rule = EsEmv(0.1, patience=5)
    assert not any(rule.update(k, torch.full((8, 8), 1 - 0.8**k)) for k in range(60))
    rule = EsEmv(0.1, patience=5)
    stops = [k for k in range(100) if rule.update(k, 0.01 * torch.rand(8, 8, generator=g))]
    assert stops and stops[0] < 40
