"""The terminal report: one line per check, grouped, failures spelled out below."""

from __future__ import annotations

from collections import defaultdict

from rich.console import Console
from rich.table import Table

from overlaylab.report.json_report import STATUSES, count_statuses, worst_status
from overlaylab.verify.result import CheckResult
from overlaylab.verify.run import VerifyReport

MAX_DETAILED = 12  # failures spelled out in full; the JSON report has them all
STYLE = {"pass": "green", "fail": "red", "skip": "yellow", "error": "magenta"}
# Off a terminal (CI logs, pipes) rich assumes 80 columns and wraps every subject and
# command into an unreadable column; logs have no width limit, so use a wide one.
MIN_LOG_WIDTH = 120


def report_console(base: Console) -> Console:
    """`base` on a terminal; off one, a console writing to the same file, at least 120 wide."""
    if base.is_terminal:
        return base
    return Console(
        file=base.file,
        width=max(MIN_LOG_WIDTH, base.width),
        highlight=False,
        soft_wrap=True,
    )


def _summary(results: list[CheckResult]) -> tuple[str, str]:
    counts = count_statuses(results)
    text = ", ".join(f"{counts[s]} {s}" for s in STATUSES if counts[s])
    return worst_status(results), text


def print_report(report: VerifyReport, console: Console) -> None:
    by_check: dict[str, list[CheckResult]] = defaultdict(list)
    for result in report.results:
        by_check[result.check].append(result)
    table = Table(title=f"overlaylab verify: {report.cluster}", show_lines=False)
    table.add_column("check")
    table.add_column("result")
    table.add_column("summary")
    for check_id, results in by_check.items():
        worst, counts = _summary(results)
        failing = [r.subject for r in results if r.failed]
        summary = (
            counts
            if not failing
            else f"{counts}: "
            + "; ".join(failing[:4])
            + (f" (+{len(failing) - 4} more)" if len(failing) > 4 else "")
        )
        table.add_row(check_id, f"[{STYLE[worst]}]{worst.upper()}[/]", summary)
    console.print(table)
    shown = report.failed[:MAX_DETAILED]
    for result in shown:
        console.print(
            f"[{STYLE[result.status]}]✗ {result.check}[/] {result.subject}: {result.message}"
        )
        if result.hint:
            console.print(f"    hint: {result.hint}")
        if result.command:
            console.print(f"    [dim]$ {result.command}[/]")
        if result.output:
            tail = result.output.strip().splitlines()[-5:]
            console.print("\n".join(f"    [dim]| {line}[/]" for line in tail))
    if len(report.failed) > len(shown):
        console.print(
            f"[dim]… {len(report.failed) - len(shown)} more failures "
            "(`--format json` lists every one)[/]"
        )
    if report.diagnosis:
        console.print("[bold]diagnosis[/]")
        for number, found in enumerate(report.diagnosis, 1):
            nodes = f" [dim]({', '.join(found.nodes)})[/]" if found.nodes else ""
            console.print(f" {number}. [bold]{found.cause}[/]{nodes}")
            console.print(f"    {found.detail}")
    total, failed = len(report.results), len(report.failed)
    colour = "red" if failed else "green"
    console.print(
        f"[bold {colour}]{failed}/{total} checks failed[/] [dim]({report.seconds:.1f}s)[/]"
    )
