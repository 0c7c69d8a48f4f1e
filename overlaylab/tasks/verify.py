"""`invoke verify`: the network truth report."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from invoke import task
from invoke.exceptions import Exit

from overlaylab.errors import OverlaylabError
from overlaylab.tasks.common import (
    DEFAULT_INVENTORY,
    KeepsHelpFlag,
    err,
    friendly_errors,
    open_lab,
    out,
    progress,
)

if TYPE_CHECKING:
    from overlaylab.context import LabContext
    from overlaylab.spec.models import ClusterSpec
    from overlaylab.verify.check import Check
    from overlaylab.verify.run import VerifyReport

__all__ = ["verify"]

FORMATS = ("table", "json")


def run_verify(ctx: LabContext, checks: list[Check], timeout: float) -> VerifyReport:
    """overlaylab.verify.run.run_verify, imported at the first call (the checks and what
    they import): the task calls it by this name, which tests replace."""
    from overlaylab.verify.run import run_verify as run

    return run(ctx, checks, timeout=timeout)


@task(
    klass=KeepsHelpFlag,
    iterable=["only", "skip"],
    help={
        "inventory": f"cluster spec (default {DEFAULT_INVENTORY})",
        "only": "run only these check ids or groups (repeatable; globs allowed)",
        "skip": "skip these check ids or groups (repeatable)",
        "timeout": "seconds each probe may retry for while the network converges",
        "format": "table (default) or json: json prints only the report document, for jq",
        "junit": "also write a JUnit XML report to FILE (written even if verify cannot run)",
        "html": "also write a self-contained HTML report to FILE: diagnosis, a picture of "
        "the lab, path matrices, every result (written even if verify cannot run)",
    },
)
@friendly_errors
def verify(  # type: ignore[no-untyped-def]
    c,
    inventory=DEFAULT_INVENTORY,
    only=None,
    skip=None,
    timeout=10.0,
    format="table",
    junit=None,
    html=None,
):
    """Prove what the lab's networks really do; exit non-zero on any failure."""
    selected: list[str] = []
    try:
        if format not in FORMATS:
            raise OverlaylabError(f"--format must be one of {', '.join(FORMATS)}, not {format!r}")
        started_at = datetime.now(UTC)
        ctx, report = _run(inventory, only or (), skip or (), float(timeout), selected)
    except BaseException as exc:
        # CI reads the JUnit file to decide what happened: it must exist even when the
        # lab is down or the spec is invalid. The original error still propagates.
        if junit:
            _write_early_junit(junit, exc, selected)
        if html:
            _write_early_html(html, exc, selected, inventory)
        raise
    if junit:
        _write_junit(junit, report)
    if html:
        _write_html(html, report, ctx, inventory, started_at)
    if format == "json":
        from overlaylab.report.json_report import write_json

        write_json(report, sys.stdout, spec_path=str(inventory), started_at=started_at)
    else:
        from overlaylab.report.table import print_report, report_console

        print_report(report, report_console(out))
    if not report.ok:
        raise Exit(code=1)


def _run(
    inventory: str,
    only: Sequence[str],
    skip: Sequence[str],
    timeout: float,
    selected: list[str],
) -> tuple[LabContext, VerifyReport]:
    # Checks are chosen before the lab is opened so an early failure can still say,
    # in the JUnit file, which checks it kept from running. `selected` is filled in
    # place for the same reason: the caller sees it even if opening the lab raises.
    from overlaylab.verify.run import select_checks

    checks = select_checks(only, skip)
    if not checks:
        raise OverlaylabError("--only/--skip left no checks to run")
    selected.extend(c.id for c in checks)
    ctx = open_lab(inventory, progress(quiet=True))
    return ctx, run_verify(ctx, checks, timeout=timeout)


def _write_junit(path: str, report: VerifyReport) -> None:
    from overlaylab.report.junit import write_junit

    try:
        write_junit(report, path)
    except OSError as exc:
        raise OverlaylabError(f"cannot write the JUnit report {path}: {exc}") from exc


def _write_early_junit(path: str, exc: BaseException, selected: list[str]) -> None:
    from overlaylab.report.junit import write_junit

    message = "interrupted" if isinstance(exc, KeyboardInterrupt) else _describe(exc)
    try:
        write_junit(None, path, error=message, checks_run=selected)
    except OSError as write_exc:
        # Never let a report problem hide the error that stopped verify.
        err.print(f"[yellow]warning:[/] cannot write the JUnit report {path}: {write_exc}")


def _write_html(
    path: str, report: VerifyReport, ctx: LabContext, inventory: str, started_at: datetime
) -> None:
    from overlaylab.report.html import render_report, write_html
    from overlaylab.report.topology import compose_networks

    page = render_report(
        report,
        spec=ctx.spec,
        spec_path=str(inventory),
        started_at=started_at,
        service_networks=compose_networks(ctx.spec, ctx.spec_dir),
        warn=_warn_picture,
    )
    try:
        write_html(path, page)
    except OSError as exc:
        raise OverlaylabError(f"cannot write the HTML report {path}: {exc}") from exc


def _write_early_html(path: str, exc: BaseException, selected: list[str], inventory: str) -> None:
    from overlaylab.report.html import render_error, write_html

    message = "interrupted" if isinstance(exc, KeyboardInterrupt) else _describe(exc)
    spec, networks = _spec_if_readable(inventory)
    try:
        page = render_error(
            message,
            checks_run=selected,
            spec=spec,
            spec_path=str(inventory),
            service_networks=networks,
            warn=_warn_picture,
        )
        write_html(path, page)
    except (OSError, OverlaylabError) as write_exc:
        # Never let a report problem hide the error that stopped verify.
        err.print(f"[yellow]warning:[/] cannot write the HTML report {path}: {write_exc}")


def _spec_if_readable(
    inventory: str,
) -> tuple[ClusterSpec | None, dict[tuple[str, str], list[str]]]:
    # The early page still draws the lab when only the lab (not the spec) was the
    # problem; when the spec is what failed, the page shows the error alone.
    from overlaylab.report.topology import compose_networks
    from overlaylab.spec.loader import load_spec_file

    try:
        loaded = load_spec_file(inventory)
    except Exception:
        return None, {}
    return loaded.spec, compose_networks(loaded.spec, loaded.spec_dir)


def _warn_picture(problem: str) -> None:
    err.print(f"[yellow]warning:[/] the HTML report has no picture of the lab: {problem}")


def _describe(exc: BaseException) -> str:
    # Our own errors are written for users; anything else is a bug, so name its type.
    if isinstance(exc, OverlaylabError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"
