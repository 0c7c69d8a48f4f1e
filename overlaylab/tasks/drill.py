"""`invoke drill`: every fault of the catalogue that applies to the lab, injected, diagnosed,
healed, one after another: the diagnosis's self-test and a guided tour of the miseries."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from invoke import task
from invoke.exceptions import Exit

from overlaylab.errors import OverlaylabError
from overlaylab.lablock import lab_lock
from overlaylab.tasks.common import (
    DEFAULT_INVENTORY,
    KeepsHelpFlag,
    err,
    friendly_errors,
    open_lab,
    out,
    progress,
)

if TYPE_CHECKING:  # the drill (and the docker SDK under it) loads when the task runs
    from overlaylab.faults.drill import DrillReport

__all__ = ["drill"]


@task(
    klass=KeepsHelpFlag,
    help={
        "only": "drill only these fault kinds (comma-separated, e.g. vxlan,mtu)",
        "junit": "also write the drill as JUnit XML to FILE (one testcase per fault)",
        "html": "also write the drill's table as a self-contained HTML page to FILE",
        "timeout": "each verify's --timeout (seconds each check's probes may retry)",
        "inventory": f"cluster spec (default {DEFAULT_INVENTORY})",
    },
)
@friendly_errors
def drill(  # type: ignore[no-untyped-def]
    c, inventory=DEFAULT_INVENTORY, only="", junit=None, html=None, timeout=5.0
):
    """Inject each fault into a green lab, check verify names its cause, heal it."""
    from overlaylab.faults.drill import choose, run_drill
    from overlaylab.report.drill import print_drill
    from overlaylab.report.table import report_console

    kinds = choose([k.strip() for k in only.split(",") if k.strip()])
    ctx = open_lab(inventory, progress(quiet=True))
    started = time.monotonic()

    def say(line: str) -> None:
        err.print(f"[dim]{time.monotonic() - started:6.1f}s[/] {line}")

    with lab_lock(ctx.spec.name, f"invoke drill -i {inventory}", say):
        report = run_drill(ctx, kinds, timeout=float(timeout), progress=say)
    _write(report, junit, html)
    print_drill(report, report_console(out))
    if not report.ok:
        raise Exit(code=1)


def _write(report: DrillReport, junit: str | None, html: str | None) -> None:
    from overlaylab.report.drill import write_html, write_junit

    try:
        if junit:
            write_junit(report, junit)
        if html:
            write_html(report, html)
    except OSError as exc:
        raise OverlaylabError(f"cannot write the drill's report: {exc}") from exc
