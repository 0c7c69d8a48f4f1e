"""The verify report as one self-contained HTML page (`invoke verify --html FILE`).

Top to bottom: the diagnosis and a summary, a picture of the lab coloured by the
results, a source x target heatmap per overlay and check, then every result with its
command and output. Everything is inline (CSS, SVG, a few lines of JS): the file is
mailed, attached to CI runs and opened offline, so it must never fetch anything.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import jinja2
from markupsafe import Markup

from overlaylab.errors import OverlaylabError
from overlaylab.report.drawing import inline_svg
from overlaylab.report.json_report import (
    count_statuses,
    group_by_check,
    iso_utc,
    worst_status,
    write_text_atomic,
)
from overlaylab.report.topology import build_topology, worst
from overlaylab.spec.models import ClusterSpec
from overlaylab.templates import TEMPLATES_DIR
from overlaylab.verify.probes import probe_name
from overlaylab.verify.result import CheckResult, Status
from overlaylab.verify.run import VerifyReport

TEMPLATE = "report.html.j2"
LAB_NETWORK = ""  # the `network` of results tested over the lab switch, not an overlay
Side = Literal["from", "to"]

# Its own environment, not overlaylab.templates's: that one writes config files verbatim,
# this one writes HTML, where every value from a probe's output must be escaped.
_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
    undefined=jinja2.StrictUndefined,
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
)


@dataclass
class Cell:
    """One (source, target) square of a matrix: one result, as axis labels name each
    probe and port apart. Should a check ever test one pair twice, the square shows the
    worst of them and its hover text lists each, rather than hiding one."""

    results: list[tuple[int, CheckResult]] = field(default_factory=list)

    @property
    def status(self) -> Status | None:
        return worst(r.status for _, r in self.results)

    @property
    def anchor(self) -> str:
        return result_anchor(self.results[0][0])

    @property
    def title(self) -> str:
        return "\n".join(hover_text(r) for _, r in self.results)


@dataclass
class Matrix:
    network: str
    check: str
    rows: list[str]
    columns: list[str]
    cells: dict[tuple[str, str], Cell]

    @property
    def pairs(self) -> int:
        return sum(len(c.results) for c in self.cells.values())

    @property
    def failed(self) -> int:
        return sum(1 for c in self.cells.values() for _, r in c.results if r.failed)


@dataclass
class CheckGroup:
    check: str
    status: Status
    counts: dict[str, int]
    results: list[tuple[int, CheckResult]]


def result_anchor(index: int) -> str:
    return f"r-{index}"


def hover_text(result: CheckResult) -> str:
    """What a matrix cell says on hover: the result, its latency and how long it took."""
    parts = [f"{result.status.upper()} {result.subject}"]
    if result.message:
        parts.append(result.message)
    latency = result.details.get("latency_ms")
    if isinstance(latency, int | float):
        parts.append(f"latency {latency:g} ms")
    parts.append(f"{result.seconds:.3f} s")
    return " · ".join(parts)


# --- matrices --------------------------------------------------------------------------


def endpoint_label(result: CheckResult, side: Side) -> str:
    """The axis label of a result's source or target: its node, with which probe when
    that is not the node's first one on the result's overlay.

    Every node runs two probes per overlay (the second makes same-host paths testable)
    and isolation aims at probes on another overlay: both show in the label, so every
    tested pair has a square of its own.
    """
    node = result.source if side == "from" else result.target
    network = result.network
    if side == "to":
        network = str(result.details.get("to_network") or network)
    label = node
    probe = result.details.get(side)
    if network and isinstance(probe, str) and probe == probe_name(network, node, "b"):
        label += " (2nd)"
    if network != result.network:
        label += f" on {network}"
    return label


def build_matrices(results: Sequence[CheckResult], node_order: Sequence[str] = ()) -> list[Matrix]:
    """One matrix per (overlay, check) over every result with a source and a target.

    Overlays and checks come in the order the results first name them (the report's
    order), the lab network (underlay and KV checks) last; rows and columns follow
    `node_order` (the spec's), with nodes it does not name after them in natural order
    (node2 before node10).
    """
    groups: dict[tuple[str, str], list[tuple[int, CheckResult]]] = {}
    for index, result in enumerate(results):
        if result.source and result.target:
            groups.setdefault((result.network, result.check), []).append((index, result))
    keys = sorted(groups, key=lambda k: k[0] == LAB_NETWORK)  # stable: keeps first-seen order
    rank = {name: i for i, name in enumerate(node_order)}
    return [_matrix(network, check, groups[(network, check)], rank) for network, check in keys]


def _matrix(
    network: str, check: str, entries: list[tuple[int, CheckResult]], rank: Mapping[str, int]
) -> Matrix:
    with_port = _needs_port(entries)
    cells: dict[tuple[str, str], Cell] = {}
    rows: dict[str, str] = {}  # label -> node, to sort labels by their node
    columns: dict[str, str] = {}
    for index, result in entries:
        row = endpoint_label(result, "from")
        column = endpoint_label(result, "to")
        if with_port and "port" in result.details:
            column += f":{result.details['port']}"
        rows[row] = result.source
        columns[column] = result.target
        cells.setdefault((row, column), Cell()).results.append((index, result))
    return Matrix(
        network=network,
        check=check,
        rows=sorted(rows, key=lambda label: _axis_key(label, rows[label], rank)),
        columns=sorted(columns, key=lambda label: _axis_key(label, columns[label], rank)),
        cells=cells,
    )


def _needs_port(entries: list[tuple[int, CheckResult]]) -> bool:
    """Whether two results share a square and differ only by port (ports.published tests
    every published port of a node): then the port joins the column label."""
    seen: dict[tuple[str, str], object] = {}
    for _, result in entries:
        key = (endpoint_label(result, "from"), endpoint_label(result, "to"))
        port = result.details.get("port")
        if key in seen and seen[key] != port:
            return True
        seen[key] = port
    return False


def _axis_key(label: str, node: str, rank: Mapping[str, int]) -> tuple[int, list[Any], str]:
    natural = [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", node)]
    return (rank.get(node, len(rank)), natural, label)


# --- the page --------------------------------------------------------------------------


def check_groups(report: VerifyReport) -> list[CheckGroup]:
    index = {id(r): i for i, r in enumerate(report.results)}
    return [
        CheckGroup(
            check=check,
            status=worst_status(results),
            counts=count_statuses(results),
            results=[(index[id(r)], r) for r in results],
        )
        for check, results in group_by_check(report)
    ]


def details_json(result: CheckResult) -> str:
    # `details` is free-form: anything json cannot encode is shown as its str().
    return json.dumps(result.details, indent=2, sort_keys=True, default=str)


def topology_svg(
    spec: ClusterSpec | None,
    results: Sequence[CheckResult] = (),
    service_networks: Mapping[tuple[str, str], Sequence[str]] | None = None,
) -> tuple[str | None, str | None]:
    """(inline SVG, None), or (None, why there is no picture).

    A missing Graphviz costs the page its picture, not the page: the results of a
    verify run are worth more than a drawing of the lab.
    """
    if spec is None:
        return None, "no picture: the spec could not be read"
    try:
        return inline_svg(build_topology(spec, results, service_networks)), None
    except OverlaylabError as exc:
        return None, str(exc)


def render_report(
    report: VerifyReport,
    *,
    spec: ClusterSpec | None = None,
    spec_path: str | None = None,
    started_at: datetime | None = None,
    service_networks: Mapping[tuple[str, str], Sequence[str]] | None = None,
    warn: Callable[[str], None] | None = None,
) -> str:
    """The page for a verify run that produced results. `warn` hears why the page has
    no picture, if it has none, so the task can say so on the terminal too."""
    svg, picture_problem = topology_svg(spec, report.results, service_networks)
    if picture_problem and spec is not None and warn:
        warn(picture_problem)
    node_order = [n.name for n in spec.nodes] if spec else []
    return _env.get_template(TEMPLATE).render(
        title=f"overlaylab verify: {report.cluster}",
        cluster=report.cluster,
        report=report,
        error=None,
        checks_run=report.checks_run,
        counts=count_statuses(report.results),
        failed=len(report.failed),
        spec_path=spec_path,
        started_at=iso_utc(started_at) if started_at else None,
        svg=Markup(svg) if svg else None,
        picture_problem=picture_problem,
        matrices=build_matrices(report.results, node_order),
        groups=check_groups(report),
        anchor=result_anchor,
        details_json=details_json,
        generated=iso_utc(datetime.now(UTC)),
    )


def render_error(
    error: str,
    *,
    checks_run: Sequence[str] = (),
    spec: ClusterSpec | None = None,
    spec_path: str | None = None,
    service_networks: Mapping[tuple[str, str], Sequence[str]] | None = None,
    warn: Callable[[str], None] | None = None,
) -> str:
    """The page for a verify that could not run: the error, what was selected, and the
    lab as the spec describes it when the spec could be read."""
    svg, picture_problem = topology_svg(spec, (), service_networks)
    if picture_problem and spec is not None and warn:
        warn(picture_problem)
    cluster = spec.name if spec else "?"
    return _env.get_template(TEMPLATE).render(
        title=f"overlaylab verify: {cluster}: did not run",
        cluster=cluster,
        report=None,
        error=error,
        checks_run=list(checks_run),
        counts=count_statuses(()),
        failed=0,
        spec_path=spec_path,
        started_at=None,
        svg=Markup(svg) if svg else None,
        picture_problem=picture_problem,
        matrices=[],
        groups=[],
        anchor=result_anchor,
        details_json=details_json,
        generated=iso_utc(datetime.now(UTC)),
    )


def write_html(path: str | os.PathLike[str], page: str) -> None:
    """Atomically, like the other reports: CI never reads a half-written page."""
    write_text_atomic(path, page)
