"""`invoke test -k EXPR`: the expression reaches pytest as one literal argument.

The task runs for real through invoke's shell, with `.venv/bin/python` replaced (in a
scratch working directory) by a script that records the arguments it was given.
"""

from __future__ import annotations

import json
import shlex
import stat
import sys
from pathlib import Path

import pytest
from invoke import Config, Context

from overlaylab.tasks import dev

RECORDER = """#!{python}
import json, sys
with open("argv.json", "w") as out:
    json.dump(sys.argv[1:], out)
"""


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory whose `.venv/bin/python` records its arguments."""
    fake = tmp_path / dev.PYTHON
    fake.parent.mkdir(parents=True)
    fake.write_text(RECORDER.format(python=sys.executable))
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run_test_task(scratch: Path, **flags: object) -> list[str]:
    # No stdin under pytest's capture: invoke must not try to forward it.
    quiet = Config(overrides={"run": {"in_stream": False, "hide": True}})
    dev.test(Context(quiet), **flags)
    return json.loads((scratch / "argv.json").read_text())


@pytest.mark.parametrize(
    "hostile",
    [
        "a'$(touch {marker})",
        '"; touch {marker}; echo "',
        "a`touch {marker}`",
        "x' || touch {marker} || '",
        "not slow and $HOME",
    ],
)
def test_hostile_k_is_one_literal_argument(scratch: Path, hostile: str) -> None:
    marker = scratch / "PWNED"
    expression = hostile.format(marker=marker)
    argv = run_test_task(scratch, k=expression, unit=True)
    assert argv == ["-m", "pytest", "-q", "-rfEs", "-m", "unit", "tests/unit", "-k", expression]
    assert not marker.exists(), "the shell ran part of the -k expression"


def test_without_k_runs_the_whole_suite_unit_tests_first(scratch: Path) -> None:
    argv = run_test_task(scratch)
    assert argv == ["-m", "pytest", "-q", "-rfEs", "tests/unit", "tests/integration"]


def test_pytest_argv_round_trips_through_shell_quoting() -> None:
    argv = dev.pytest_argv("a'$(id)", unit=False)
    assert argv[-2:] == ["-k", "a'$(id)"]
    assert shlex.split(shlex.join(argv)) == argv
