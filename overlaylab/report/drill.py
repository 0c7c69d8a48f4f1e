"""The drill's report: a table for people, JUnit XML for CI, a self-contained HTML page.

One row (one JUnit testcase) per fault: a fault that does not apply to the lab is listed
and skipped, never counted; a miss, a wrong node or a false cause is a failure."""

from __future__ import annotations

import html
import os
import xml.etree.ElementTree as ET

from rich.console import Console
from rich.table import Table

from overlaylab.faults.drill import DrillReport, DrillRow
from overlaylab.report.json_report import write_text_atomic

COLUMNS = (
    "fault",
    "expected cause",
    "diagnosed cause",
    "nodes",
    "to diagnosis",
    "to green",
    "checks failed",
    "outcome",
)
STYLE = {"right": "green", "not applicable": "dim"}


def _seconds(value: float | None) -> str:
    return f"{value:.1f}s" if value is not None else "-"


def _nodes(row: DrillRow) -> str:
    if not row.counted:
        return "-"
    named = ", ".join(row.nodes) or "-"
    if row.nodes == row.expected_nodes:
        return named
    return f"{named} (expected {', '.join(row.expected_nodes) or '-'})"


def _first_line(text: str, width: int = 160) -> str:
    """A note's first line, cut to `width`: the table stays a table (a heal that failed
    quotes a whole engine log)."""
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= width else line[: width - 1] + "…"


def cells(row: DrillRow) -> list[str]:
    """The row as text, in COLUMNS order."""
    outcome = row.outcome
    if row.false_causes:
        outcome += ": " + "; ".join(row.false_causes)
    if row.note and row.outcome != "right":
        outcome += f" ({_first_line(row.note)})"
    return [
        row.fault,
        row.expected,
        ", ".join(dict.fromkeys(row.diagnosed)) or "-",
        _nodes(row),
        _seconds(row.to_diagnosis),
        _seconds(row.to_green),
        ", ".join(row.failed_checks) or "-",
        outcome,
    ]


def summary(report: DrillReport) -> str:
    counted = report.counted
    right = sum(1 for r in counted if r.outcome == "right")
    false = sum(len(r.false_causes) for r in counted)
    skipped = len(report.rows) - len(counted)
    line = (
        f"drill on lab '{report.cluster}': {right}/{len(counted)} faults diagnosed right, "
        f"{false} false cause(s), {skipped} not applicable, {report.seconds:.0f}s in all"
    )
    return line + (f"; stopped: {report.stopped}" if report.stopped else "")


def print_drill(report: DrillReport, console: Console) -> None:
    table = Table(title=f"overlaylab drill: {report.cluster}")
    for column in COLUMNS:
        table.add_column(column)
    for row in report.rows:
        table.add_row(*cells(row), style=STYLE.get(row.outcome, "red"))
    console.print(table)
    console.print(summary(report))


def markdown(report: DrillReport) -> str:
    """The table as Markdown (for a README or a note)."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(c.replace("|", "/") for c in cells(r)) + " |" for r in report.rows]
    return "\n".join(lines) + "\n"


def build_junit(report: DrillReport) -> ET.Element:
    counted = report.counted
    suite = ET.Element(
        "testsuite",
        name=f"overlaylab.drill.{report.cluster}",
        tests=str(len(report.rows)),
        failures=str(sum(1 for r in counted if not r.ok)),
        skipped=str(len(report.rows) - len(counted)),
        time=f"{report.seconds:.3f}",
    )
    for row in report.rows:
        seconds = (row.to_diagnosis or 0.0) + (row.to_green or 0.0)
        case = ET.SubElement(
            suite, "testcase", classname="overlaylab.drill", name=row.fault, time=f"{seconds:.3f}"
        )
        text = " | ".join(f"{c}: {v}" for c, v in zip(COLUMNS, cells(row), strict=True))
        if not row.counted:
            ET.SubElement(case, "skipped", message=row.note)
        elif not row.ok:
            ET.SubElement(case, "failure", message=row.outcome).text = text
        else:
            ET.SubElement(case, "system-out").text = text
    root = ET.Element("testsuites", name="overlaylab drill")
    root.append(suite)
    return root


def write_junit(report: DrillReport, path: str | os.PathLike[str]) -> None:
    root = build_junit(report)
    ET.indent(root)
    write_text_atomic(path, ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n")


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; }}
table {{ border-collapse: collapse; }}
td, th {{ border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }}
tr.right td {{ background: #eaf7ea; }} tr.na td {{ color: #888; }}
tr.bad td {{ background: #fbe9e9; }}
</style></head><body>
<h1>{title}</h1><p>{summary}</p>
<table><tr>{head}</tr>
{rows}
</table></body></html>
"""


def render_html(report: DrillReport) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in COLUMNS)
    rows = []
    for row in report.rows:
        kind = "right" if row.outcome == "right" else "na" if not row.counted else "bad"
        tds = "".join(f"<td>{html.escape(c)}</td>" for c in cells(row))
        rows.append(f'<tr class="{kind}">{tds}</tr>')
    return PAGE.format(
        title=html.escape(f"overlaylab drill: {report.cluster}"),
        summary=html.escape(summary(report)),
        head=head,
        rows="\n".join(rows),
    )


def write_html(report: DrillReport, path: str | os.PathLike[str]) -> None:
    write_text_atomic(path, render_html(report))
