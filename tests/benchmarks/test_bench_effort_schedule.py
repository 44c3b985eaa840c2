"""The replays of benchmarks.effort_schedule stop where codec.refine's cost plateau would."""

from benchmarks.effort_schedule import CHECK, play


def _checks(cap, cost_at, recorded=None):
    steps = range(0, (recorded or cap) + 1, CHECK)
    return [(k, float(cost_at(k))) for k in steps]


def test_fixed_runs_check_every_interval_and_the_end():
    checks = _checks(24, lambda k: 100 - k)
    steps, made = play(checks, 24, "fixed", 0, 8)
    assert steps == 24 and [checks[i][0] for i in made] == [0, 8, 16, 24]


def test_the_plateau_stops_after_its_patience_and_a_falling_cost_runs_to_the_cap():
    flat = _checks(40, lambda k: max(100 - k, 90))  # its minimum is reached at step 10, first seen at 12
    steps, made = play(flat, 40, "cost", 8, 4)
    assert steps == 20 and [flat[i][0] for i in made] == [0, 4, 8, 12, 16, 20]
    steps, made = play(_checks(40, lambda k: 100 - k), 40, "cost", 8, 4)
    assert steps == 40 and len(made) == 11


def test_a_rule_that_outruns_the_recording_is_not_replayed():
    short = _checks(40, lambda k: 100 - k, recorded=16)
    assert play(short, 40, "cost", 8, 4) is None
    assert play(_checks(40, lambda k: max(100 - k, 96), recorded=16), 40, "cost", 8, 4) == (12, [0, 1, 2, 3])
