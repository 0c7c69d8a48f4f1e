"""Developer tasks: tests and lint."""

from __future__ import annotations

from invoke import task

__all__ = ["lint", "test"]


@task(help={"k": "only tests matching this expression", "unit": "unit tests only (no root)"})
def test(c, k=None, unit=False):  # type: ignore[no-untyped-def]
    """Run the test suite (unit, then integration on real engines)."""
    target = "tests/unit" if unit else "tests"
    select = f" -k {k!r}" if k else ""
    c.run(f".venv/bin/python -m pytest -q -rs {target}{select}", pty=False)


@task
def lint(c):  # type: ignore[no-untyped-def]
    """ruff on the whole tree."""
    c.run(".venv/bin/ruff check . && .venv/bin/ruff format --check .")
