"""Developer tasks: tests and lint."""

from __future__ import annotations

import shlex

from invoke import task

__all__ = ["lint", "test"]

PYTHON = ".venv/bin/python"


def pytest_argv(k: str | None = None, unit: bool = False) -> list[str]:
    """The pytest command line for `test`, as an argument list."""
    # pytest collects its arguments in order: the unit tests run first, then the slow
    # ones on real engines (given `tests`, it would start with `integration`). The
    # unit tier is a marker (tests/conftest.py): tests/unit also holds tools and browser
    # tests, which `--unit` leaves out.
    tier = ["-m", "unit", "tests/unit"] if unit else ["tests/unit", "tests/integration"]
    argv = [PYTHON, "-m", "pytest", "-q", "-rfEs", *tier]
    if k:
        argv += ["-k", k]
    return argv


@task(
    help={
        "k": "only tests matching this expression",
        "unit": "the unit tier only: no root, daemons, browser or CLI subprocess",
    }
)
def test(c, k=None, unit=False):  # type: ignore[no-untyped-def]
    """Run the test suite (unit, then integration on real engines)."""
    # invoke hands a string to a shell: every argument is quoted, so a -k expression
    # reaches pytest as one literal argument, whatever quotes, $() or backticks it holds.
    c.run(shlex.join(pytest_argv(k, unit)), pty=False)


@task
def lint(c):  # type: ignore[no-untyped-def]
    """ruff on the whole tree."""
    c.run(".venv/bin/ruff check . && .venv/bin/ruff format --check .")
