"""The replays of benchmarks.effort_replay stop where codec.refine would, on recorded trajectories."""

from benchmarks.effort_replay import _fixed, _on_cost, _on_emv
from benchmarks.effort_trace import CHECK


def _run(cap, hard_at, emv_at):
    return {"hard": [hard_at(k) for k in range(0, cap + 1, CHECK)],
            "emv": {"0.1": [None] + [emv_at(k) for k in range(1, cap)]}}


def test_fixed_steps_check_every_interval_and_the_end():
    assert _fixed(_run(20, float, float), 20, 8) == (20, [0, 8, 16, 20])


def test_the_cost_rule_stops_on_a_plateau_and_runs_a_falling_cost_to_its_cap():
    flat = _run(40, lambda k: max(100 - k, 90), float)  # its minimum is reached at step 10
    # checked every 4 steps, the minimum is first seen at step 12: 8 steps later it stops
    assert _on_cost(flat, 40, 4, 8) == (20, [0, 4, 8, 12, 16, 20])
    falling = _run(40, lambda k: 100 - k, float)
    steps, checked = _on_cost(falling, 40, 4, 8)
    assert steps == 40 and checked[-1] == 40


def test_the_emv_rule_keeps_the_last_recorded_latents_and_runs_a_falling_variance_to_its_cap():
    settled = _run(40, float, lambda k: 1.0 / k if k < 10 else 0.1 + 0.001 * (k % 3))
    steps, checked = _on_emv(settled, 40, 8, 5, "0.1")
    assert steps < 20 and checked[-1] == steps - steps % CHECK
    falling = _run(40, float, lambda k: 1.0 / k)
    assert _on_emv(falling, 40, 8, 5, "0.1")[0] == 40
