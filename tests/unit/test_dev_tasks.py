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
from invoke import Config, Context, Exit

from overlaylab.tasks import dev

RECORDER = """#!{python}
import json, os, sys
with open("argv.json", "a") as out:
    out.write(json.dumps(sys.argv[1:]) + "\\n")
sys.exit(int(os.environ.get("RECORDER_EXIT", "0")))
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


def run_test_task(scratch: Path, **flags: object) -> list[list[str]]:
    # No stdin under pytest's capture: invoke must not try to forward it.
    quiet = Config(overrides={"run": {"in_stream": False, "hide": True}})
    dev.test(Context(quiet), **flags)
    lines = (scratch / "argv.json").read_text().splitlines()
    return [json.loads(line) for line in lines]


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
    argvs = run_test_task(scratch, k=expression, unit=True)
    quick = ["-m", "pytest", "-q", "-rfEs", "-n", dev.UNIT_WORKERS]
    assert argvs == [[*quick, "-m", "unit", "tests/unit", "-k", expression]]
    assert not marker.exists(), "the shell ran part of the -k expression"


def test_without_k_runs_the_unit_folder_in_parallel_and_integration_in_lanes(
    scratch: Path,
) -> None:
    argvs = run_test_task(scratch)  # at the same time: in either order
    assert sorted(argvs) == [
        ["-m", "pytest", "-q", "-rfEs", "-n", dev.UNIT_WORKERS, "tests/unit"],
        ["tests/integration/lanes.py", "-q", "-rfEs", "--durations=20"],
    ]


def test_a_failing_first_run_still_runs_integration_and_fails_the_task(
    scratch: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RECORDER_EXIT", "1")
    with pytest.raises(Exit) as ended:
        run_test_task(scratch)
    assert ended.value.code == 1
    argvs = [json.loads(line) for line in (scratch / "argv.json").read_text().splitlines()]
    assert sorted(argv[0] for argv in argvs) == ["-m", "tests/integration/lanes.py"]


@pytest.mark.parametrize(("exits", "fails"), [("5", False), ("0", False), ("2", True)])
def test_a_run_that_selects_nothing_is_no_failure_unless_none_selected_anything(
    scratch: Path, monkeypatch: pytest.MonkeyPatch, exits: str, fails: bool
) -> None:
    # The first run exits `exits`; a second recorder would too, so make it pass.
    recorder = scratch / dev.PYTHON
    recorder.write_text(
        recorder.read_text().replace(
            'int(os.environ.get("RECORDER_EXIT", "0"))',
            '0 if "tests/integration/lanes.py" in sys.argv '
            'else int(os.environ.get("RECORDER_EXIT", "0"))',
        )
    )
    monkeypatch.setenv("RECORDER_EXIT", exits)
    if fails:
        with pytest.raises(Exit):
            run_test_task(scratch, k="test_swarm_mode")
    else:
        assert len(run_test_task(scratch, k="test_swarm_mode")) == 2


def test_nothing_selected_anywhere_fails(scratch: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECORDER_EXIT", "5")
    with pytest.raises(Exit):
        run_test_task(scratch, k="no_such_test")


def test_pytest_argvs_round_trip_through_shell_quoting() -> None:
    for argv in dev.pytest_argvs("a'$(id)", unit=False):
        assert argv[-2:] == ["-k", "a'$(id)"]
        assert shlex.split(shlex.join(argv)) == argv
