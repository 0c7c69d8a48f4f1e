"""Developer tasks: tests and lint."""

from __future__ import annotations

import shlex
import subprocess

from invoke import Exit, task

__all__ = ["lint", "test"]

PYTHON = ".venv/bin/python"


# Workers for the tests under tests/unit: they are independent (each writes only under
# its own tmp_path), and many wait on a clock, a socket or a child process, so two
# workers on two cores take about half the time of one.
UNIT_WORKERS = "2"
SLOWEST = "--durations=20"
LANES = "tests/integration/lanes.py"  # OVERLAYLAB_TEST_LANES=1: one lane, no namespaces
NICE = ["nice", "-n", "10"]  # the unit run, behind the lanes for the CPU
NOTHING_SELECTED = 5  # pytest's exit status when no test was selected


def pytest_argvs(k: str | None = None, unit: bool = False) -> list[list[str]]:
    """The pytest command lines for `test`: the tests under tests/unit, then (without
    --unit) the integration tests."""
    # The tests under tests/unit: the unit tier, plus tools and browser tests, which
    # `--unit` leaves out by marker (tests/conftest.py), on two workers. The integration
    # tests run in lanes side by side (tests/integration/lanes.py), each lane in
    # namespaces of its own: a lab must be alone on its machine, or its host snapshot
    # would count a neighbour's processes as leaks.
    select = ["-k", k] if k else []
    quick = [PYTHON, "-m", "pytest", "-q", "-rfEs", "-n", UNIT_WORKERS]
    if unit:
        return [[*quick, "-m", "unit", "tests/unit", *select]]
    # The slowest integration tests are listed after the run: where CI's minutes went.
    slow = [PYTHON, LANES, "-q", "-rfEs", SLOWEST, *select]
    return [[*quick, "tests/unit", *select], slow]


@task(
    help={
        "k": "only tests matching this expression",
        "unit": "the unit tier only: no root, daemons, browser or CLI subprocess",
    }
)
def test(c, k=None, unit=False):  # type: ignore[no-untyped-def]
    """Run the test suite: the unit, tools and browser tests on two workers, and the
    integration tests on real engines in lanes, at the same time."""
    # invoke hands a string to a shell: every argument is quoted, so a -k expression
    # reaches pytest as one literal argument, whatever quotes, $() or backticks it holds.
    quick, *slow = pytest_argvs(k, unit)
    # The integration lanes mostly wait on their engines: the tests under tests/unit run
    # meanwhile, behind them for the CPU (nice), their report shown whole when they end.
    # (A Popen: invoke's asynchronous runs keep their output until they end.)
    lanes = [subprocess.Popen(argv) for argv in slow]
    first = c.run(
        shlex.join([*NICE, *quick] if slow else quick), pty=False, warn=True, hide=bool(slow)
    )
    if slow:
        print(first.stdout + first.stderr, end="", flush=True)
    codes = [first.exited] + [lane.wait() for lane in lanes]
    # pytest exits 5 when it selected no test: a -k that names only integration tests
    # selects none in the first run, which is no failure unless no run selected any.
    failed = [code for code in codes if code not in (0, NOTHING_SELECTED)]
    if failed or all(code == NOTHING_SELECTED for code in codes):
        # Every part ran; the exit status says whether any failed.
        raise Exit(f"test: pytest exited {', '.join(map(str, codes))} (see above)", code=1)


@task
def lint(c):  # type: ignore[no-untyped-def]
    """ruff on the whole tree."""
    c.run(".venv/bin/ruff check . && .venv/bin/ruff format --check .")
