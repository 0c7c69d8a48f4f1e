"""`invoke verify`: the network truth report."""

from __future__ import annotations

from invoke import task
from invoke.exceptions import Exit

from overlaylab import lab
from overlaylab.checks.verify import run_verify, select_checks
from overlaylab.errors import OverlaylabError
from overlaylab.progress import Progress
from overlaylab.report.table import print_report
from overlaylab.tasks.common import DEFAULT_INVENTORY, friendly_errors, out

__all__ = ["verify"]


@task(
    iterable=["only", "skip"],
    help={
        "inventory": f"cluster spec (default {DEFAULT_INVENTORY})",
        "only": "run only these check ids or groups (repeatable; globs allowed)",
        "skip": "skip these check ids or groups (repeatable)",
        "timeout": "seconds each probe may retry for while the network converges",
    },
)
@friendly_errors
def verify(c, inventory=DEFAULT_INVENTORY, only=None, skip=None, timeout=10.0):  # type: ignore[no-untyped-def]
    """Prove what the lab's networks really do; exit non-zero on any failure."""
    ctx = lab.open_lab(inventory, Progress(quiet=True))
    checks = select_checks(only or (), skip or ())
    if not checks:
        raise OverlaylabError("--only/--skip left no checks to run")
    report = run_verify(ctx, checks, timeout=float(timeout))
    print_report(report, out)
    if not report.ok:
        raise Exit(code=1)
