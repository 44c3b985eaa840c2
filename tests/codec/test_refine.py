"""Claims about encoder-side latent refinement (codec/refine.py), on a tiny model."""

from dataclasses import replace

import pytest
import torch

import codec.refine as refine
from codec import effort
from codec.effort import RefineConfig
from codec.quality import lambda_for_quality
from codec.refine import refine_latents


@pytest.fixture(scope="module")
def model(active_tiny_model):
    return active_tiny_model


def _image(h, w, seed=0):
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(1, 3, h // 8 + 1, w // 8 + 1, generator=g)
    smooth = torch.nn.functional.interpolate(base, size=(h, w), mode="bilinear", align_corners=False)
    return (smooth + 0.05 * torch.rand(1, 3, h, w, generator=g)).clamp(0, 1)


class _Analysed:
    """The encoder's first half on ``x`` as refinement takes it: torch tensors, and the coded ẑ."""

    def __init__(self, model, x, quality):
        self.coder = model.coder()
        x_padded, y, self.z = self.coder.analyse(x.numpy(), quality)
        self.x_padded, self.y = torch.from_numpy(x_padded), torch.from_numpy(y)
        self.features = torch.from_numpy(self.coder.entropy.features(self.z)).float()

    def code(self, y):
        return self.coder.code_latents(y.numpy(), self.z)


def _real_cost(model, x, quality, code):
    """bits of the coded symbols under the model's own estimate of the file, plus λ·255²·SE/3,
    using the decoder's reconstruction: the quantity refinement must not increase."""
    h, w = x.shape[-2:]
    coder = model.coder()
    x_hat = torch.from_numpy(coder.reconstruct(code.y_hat, quality, (h, w)))
    with torch.no_grad():  # eval mode: the rate of the rounded residuals
        features = torch.from_numpy(coder.entropy.features(code.z_symbols)).float()
        _, likelihoods = model.entropy(torch.from_numpy(code.y_hat).float(), features)
    bits = float(-torch.log2(likelihoods).sum())
    return bits + lambda_for_quality(quality) * 255**2 * float((x_hat - x).pow(2).sum()) / 3


@pytest.mark.parametrize("relaxation, optimizer", [("ste", "adam"), ("sga", "adam"), ("ste", "ngd")])
def test_refined_latents_cost_less_than_the_one_pass_ones(model, relaxation, optimizer):
    x, quality = _image(64, 96), 4.0
    a = _Analysed(model, x, quality)
    before = _real_cost(model, x, quality, a.code(a.y))
    config = RefineConfig(steps=12, lr=0.03, relaxation=relaxation, optimizer=optimizer)
    refined = refine_latents(model, a.x_padded, (64, 96), a.y, a.features, quality, config)
    assert refined.shape == a.y.shape and not torch.equal(refined, a.y)
    after = _real_cost(model, x, quality, a.code(refined))
    assert after < before


def test_an_overshooting_step_is_taken_back_and_halved_until_it_pays(model, monkeypatch):
    """On a cost whose minimum is one rounding step away (ŷ = 1), a first step of 6 overshoots to
    ŷ = 6; without backtracking every later step (decaying from there) stays worse than ŷ = 0 and
    refinement would give up.  Backtracking returns to 0 and halves the step until it lands."""
    def cost(model, window, y_win, quality, rounding):
        y_hat = rounding(y_win) if rounding is not None else torch.round(y_win)
        return (y_hat - 1.0).pow(2).sum(), y_hat

    monkeypatch.setattr(refine, "_tile_cost", cost)
    y = torch.zeros(1, 1, 1, 1)
    config = RefineConfig(steps=6, lr=6.0, lr_doubling=1e9)
    refined = refine_latents(model, torch.zeros(1, 3, 16, 16), (16, 16), y, y, 1.0, config)
    assert torch.round(refined).item() == 1.0


def test_the_first_step_grows_with_quality():
    config = RefineConfig(steps=1, lr=0.01, lr_doubling=2.0)
    assert refine.lr_at(config, 1.0) == pytest.approx(0.01)
    assert refine.lr_at(config, 5.0) == pytest.approx(0.04)


def test_refinement_is_deterministic_and_leaves_its_input_alone(model):
    x, quality = _image(64, 64, seed=3), 2.5
    an = _Analysed(model, x, quality)
    y_before = an.y.clone()
    config = RefineConfig(steps=4, relaxation="sga")
    a = refine_latents(model, an.x_padded, (64, 64), an.y, an.features, quality, config)
    b = refine_latents(model, an.x_padded, (64, 64), an.y, an.features, quality, config)
    assert torch.equal(a, b) and torch.equal(an.y, y_before)
    assert all(p.requires_grad for p in model.parameters())  # parameters unfrozen afterwards


def test_zero_steps_returns_the_latents_unchanged(model):
    x, quality = _image(32, 32), 4.0
    a = _Analysed(model, x, quality)
    assert refine_latents(model, a.x_padded, (32, 32), a.y, a.features, quality, RefineConfig(steps=0)) is a.y


def test_tiles_cover_the_latents_and_each_tile_never_gets_worse(model, monkeypatch):
    monkeypatch.setattr(refine, "REFINE_TILE", 4)
    monkeypatch.setattr(refine, "REFINE_HALO", 2)
    tiles = list(refine._tiles(10, 7))
    covered = torch.zeros(10, 7, dtype=torch.int64)
    for rows, cols, wrows, wcols in tiles:
        covered[rows, cols] += 1
        assert wrows.start <= rows.start and rows.stop <= wrows.stop and wcols.start <= cols.start
    assert torch.equal(covered, torch.ones(10, 7, dtype=torch.int64))

    x, quality = _image(150, 100), 4.0  # padded to 192 x 128: a latent grid of 12 x 8, 6 tiles
    a = _Analysed(model, x, quality)
    steps = []
    refined = refine_latents(model, a.x_padded, (150, 100), a.y, a.features, quality,
                             RefineConfig(steps=3, lr=0.05), progress=lambda: steps.append(1))
    assert len(steps) == 3 * 6
    assert _real_cost(model, x, quality, a.code(refined)) <= _real_cost(model, x, quality, a.code(a.y)) * 1.001


def test_bad_settings_are_value_errors():
    with pytest.raises(ValueError, match="relaxation"):
        RefineConfig(steps=1, relaxation="anneal")
    with pytest.raises(ValueError, match="effort"):
        effort.effort_config(4)
    assert effort.effort_config(0).steps == 0


def test_sga_rounding_tends_to_hard_rounding_as_the_temperature_falls():
    g = torch.Generator().manual_seed(0)
    v = torch.tensor([0.1, 0.9, 2.3, -1.2] * 500)
    hot = refine.sga_round(v, 0.5, g)
    cold = refine.sga_round(v, 0.01, g)
    assert ((cold - torch.round(v)).abs() < 1e-3).float().mean() > 0.99
    assert (hot - torch.round(v)).abs().mean() > (cold - torch.round(v)).abs().mean()
    assert torch.all((hot >= torch.floor(v)) & (hot <= torch.ceil(v)))


def _count_steps(monkeypatch, curve):
    """Refine one latent on the cost ``curve(calls)`` (a cost that ignores the latents), counting
    the relaxed forward passes (one per descent step) and the progress reports."""
    calls, reports = [], []

    def cost(model, window, y_win, quality, rounding):
        if rounding is not None:
            calls.append(1)
        value = torch.tensor(float(curve(len(calls)))) + 0 * y_win.sum()
        return value, y_win + 0 * len(calls)

    monkeypatch.setattr(refine, "_tile_cost", cost)
    return calls, reports


@pytest.mark.parametrize("relaxation", ["ste", "sga"])
def test_a_tile_stops_on_a_cost_plateau_and_not_on_a_falling_cost(model, monkeypatch, relaxation):
    y = torch.zeros(1, 1, 1, 1)
    config = RefineConfig(steps=40, relaxation=relaxation, check_every=2, patience=6, stop_on="cost")
    calls, reports = _count_steps(monkeypatch, lambda n: max(100 - n, 90))  # flat from step 10 on
    refine_latents(model, torch.zeros(1, 3, 16, 16), (16, 16), y, y, 4.0, config, lambda: reports.append(1))
    assert 10 < len(calls) <= 10 + 6 + 2 and len(reports) == 40  # the bar still ends at its total
    calls, reports = _count_steps(monkeypatch, lambda n: 100 - n)  # still falling at the cap
    refine_latents(model, torch.zeros(1, 3, 16, 16), (16, 16), y, y, 4.0, config, lambda: reports.append(1))
    assert len(calls) == 40 and len(reports) == 40


def test_a_tile_stops_when_its_reconstruction_stops_moving(model, monkeypatch):
    """ES-EMV: a reconstruction that only jitters is done; one that still converges is not."""
    g = torch.Generator().manual_seed(0)
    jitter = [0.01 * torch.rand(1, 1, 4, 4, generator=g) for _ in range(100)]
    calls = []

    def cost(model, window, y_win, quality, rounding):
        if rounding is not None:
            calls.append(1)
        n = len(calls)
        x = torch.full((1, 1, 4, 4), 1 - 0.9**n) if moving else 0.5 + jitter[n]
        return y_win.sum() * 0 + 1.0, x

    monkeypatch.setattr(refine, "_tile_cost", cost)
    y = torch.zeros(1, 1, 1, 1)
    config = RefineConfig(steps=60, relaxation="sga", patience=8, stop_on="emv", emv_alpha=0.2)
    moving = False
    refine_latents(model, torch.zeros(1, 3, 16, 16), (16, 16), y, y, 4.0, config)
    assert len(calls) < 30
    calls.clear()
    moving = True  # geometric convergence: EMV keeps falling, the tile uses its whole budget
    refine_latents(model, torch.zeros(1, 3, 16, 16), (16, 16), y, y, 4.0, config)
    assert len(calls) == 60


def test_early_stopping_keeps_the_best_latents_and_never_makes_a_tile_worse(model):
    x, quality = _image(64, 96, seed=5), 4.0
    a = _Analysed(model, x, quality)
    before = _real_cost(model, x, quality, a.code(a.y))
    for stop_on in ("cost", "emv"):
        config = RefineConfig(steps=30, lr=0.03, relaxation="sga", check_every=2, patience=4, stop_on=stop_on)
        refined = refine_latents(model, a.x_padded, (64, 96), a.y, a.features, quality, config)
        assert _real_cost(model, x, quality, a.code(refined)) <= before * 1.001


def test_bad_budgets_are_value_errors():
    for bad in (dict(patience=-1), dict(stop_on="loss"), dict(emv_alpha=0.0), dict(emv_alpha=1.0),
                dict(check_every=0), dict(optimizer="sgd"), dict(then="sga")):
        with pytest.raises(ValueError):
            RefineConfig(steps=10, **bad)
    with pytest.raises(ValueError, match="then"):
        RefineConfig(steps=0, then=RefineConfig(steps=10))


def test_every_effort_level_is_a_valid_budget():
    for level, config in effort.EFFORTS.items():
        assert isinstance(config, RefineConfig)
        assert (config.total_steps == 0) == (level == 0)
        for phase in config.phases():
            assert phase.patience < max(phase.steps, 1) or phase.patience == 0
    caps = [effort.EFFORTS[level].total_steps for level in sorted(effort.EFFORTS)]
    assert caps == sorted(caps)  # a higher effort never has a smaller budget


@pytest.mark.parametrize("relaxation", ["ste", "sga"])
def test_an_observer_sees_every_checked_step_and_changes_nothing(model, monkeypatch, relaxation):
    monkeypatch.setattr(refine, "REFINE_TILE", 4)  # a 4 x 6 latent grid: two tiles
    x, quality = _image(64, 96), 4.0
    a = _Analysed(model, x, quality)
    config = RefineConfig(steps=7, lr=0.03, relaxation=relaxation, check_every=3)
    plain = refine_latents(model, a.x_padded, (64, 96), a.y, a.features, quality, config)
    hard_costs, seen = [], []

    def hard_cost(*args):
        hard_costs.append(cost(*args))
        return hard_costs[-1]

    cost = refine._hard_cost
    monkeypatch.setattr(refine, "_hard_cost", hard_cost)
    observed = refine_latents(model, a.x_padded, (64, 96), a.y, a.features, quality, config, observer=seen.append)
    assert torch.equal(observed, plain)
    checks = [0, 3, 6, 7] if relaxation == "sga" else list(range(8))  # STE: each forward pass is a check
    for tile in (0, 1):
        mine = [s for s in seen if s.tile == tile]
        assert [s.step for s in mine if s.hard_cost is not None] == checks
        assert [s.step for s in mine if s.reconstruction is not None] == list(range(7))
        assert not any(s.stopped for s in mine)
    # every hard-rounded evaluation outside the descent's own forward pass is told, with its value
    assert [s.hard_cost for s in seen if s.reconstruction is None] == hard_costs


def test_normalised_steps_move_each_latent_in_proportion_to_its_gradient():
    y = torch.zeros(1, 2, 2, 2)
    window = refine._Window(y, y, torch.zeros(1, 3, 32, 32), (..., slice(0, 2), slice(0, 2)), (...,))
    descent = refine._Descent(window, 1.0, RefineConfig(steps=10, lr=0.5, optimizer="ngd"))
    weights = torch.tensor([0.0, 1.0, 2.0, 3.0, 0.0, -1.0, -2.0, -3.0]).reshape(1, 2, 2, 2)
    descent.step(0, (descent.current() * weights).sum(), None)
    moved = descent.current().detach()
    rms = weights.pow(2).mean().sqrt()
    assert torch.allclose(moved, -0.5 * weights / rms)  # the first step: lr · g / RMS(g), no decay yet



def test_a_second_phase_starts_from_the_first_phases_best_latents(model):
    """``RefineConfig.then``: SGA after three normalised STE steps begins where STE alone ends, with the
    cost STE measured there, and the observer numbers its steps on from the first phase's."""
    x, quality = _image(64, 96, seed=2), 4.0
    a = _Analysed(model, x, quality)
    first = RefineConfig(steps=3, lr=0.03, optimizer="ngd")
    alone = refine_latents(model, a.x_padded, (64, 96), a.y, a.features, quality, first)
    seen, reports = [], []
    both = replace(first, then=RefineConfig(steps=5, lr=0.03, relaxation="sga", check_every=2))
    refined = refine_latents(model, a.x_padded, (64, 96), a.y, a.features, quality, both,
                             lambda: reports.append(1), lambda s: seen.append(s._replace(latents=s.latents.clone())))
    assert len(reports) == both.total_steps == 8
    checks = [s for s in seen if s.hard_cost is not None and s.reconstruction is None]
    assert [s.step for s in checks] == [3, 3, 5, 7, 8]  # STE's final check, then SGA's: its start, 2, 4, the end
    start = checks[1]
    assert torch.equal(start.latents, alone)
    assert start.hard_cost == min(s.hard_cost for s in seen if s.step <= 3 and s is not start and s.hard_cost is not None)
    assert [s.step for s in seen if s.reconstruction is not None] == list(range(8))
    # the kept latents are the best the two phases measured: never worse than the first phase's
    window = refine._Window(refined, a.features, a.x_padded, (...,), (..., slice(0, 64), slice(0, 96)))
    with refine._fitting(model):
        assert refine._hard_cost(model, window, refined, quality) <= start.hard_cost
