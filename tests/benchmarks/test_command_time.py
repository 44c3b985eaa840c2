"""benchmarks/command_time.py: the lic script it times, and one timed run."""

import sys

import pytest

from benchmarks.command_time import lic_script, measured, timed


def test_the_lic_script_is_the_one_beside_the_interpreter(tmp_path):
    (tmp_path / "python").touch()
    (tmp_path / "lic").touch()
    assert lic_script(str(tmp_path / "python")) == tmp_path / "lic"


def test_no_lic_script_beside_the_interpreter_is_an_error_naming_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="no lic script beside"):
        lic_script(str(tmp_path / "python"))


def test_a_timed_run_gives_its_wall_and_cpu_seconds():
    wall, cpu = timed([sys.executable, "-c", "sum(range(10**6))"])
    assert 0 < wall < 60 and 0 < cpu < 60


def test_a_measured_run_splits_its_cpu_into_user_and_system():
    run = measured([sys.executable, "-c", "sum(range(10**6))"])
    assert run.user > 0 and run.system >= 0 and run.cpu == run.user + run.system
