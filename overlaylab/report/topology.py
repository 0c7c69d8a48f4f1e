"""The lab as a picture: KV node, lab switch, engine nodes, overlays, stack containers
and probes, built from the spec and, when verify ran, coloured by its results.

One model (`Topology`: boxes and links) is built first and drawn second, so
`invoke graph` (the spec alone) and `invoke verify --html` (spec plus results) draw
the same picture, and tests can look at what is drawn without running Graphviz.
Drawing uses Graphviz's `dot` (the Debian package `graphviz`).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Literal

import graphviz  # type: ignore[import-untyped]

from overlaylab.errors import OverlaylabError
from overlaylab.spec.compose import UNREADABLE as COMPOSE_UNREADABLE
from overlaylab.spec.compose import read_compose_file
from overlaylab.spec.models import ClusterSpec, LocalProviderSpec, Node
from overlaylab.spec.paths import resolve_in_spec_dir
from overlaylab.verify.probes import SLOTS, probe_name
from overlaylab.verify.result import CheckResult, Status

BoxKind = Literal["host", "switch", "kv", "engine", "overlay", "probe", "service"]
LinkKind = Literal["lab", "runs", "overlay", "failing"]
# What the picture can be written as: `invoke graph -o FILE.<ext>`.
FORMATS = ("svg", "png")
# Worst first, as the report orders statuses: a node with any failure is drawn failing.
_SEVERITY: tuple[Status, ...] = ("error", "fail", "skip", "pass")
# (fill, outline) per status; None: verify did not run, or nothing tested the box.
PALETTE: dict[Status | None, tuple[str, str]] = {
    "pass": ("#e3f4e6", "#2e7d32"),
    "fail": ("#fde3e1", "#c62828"),
    "error": ("#fde3e1", "#c62828"),
    "skip": ("#eeeeee", "#757575"),
    None: ("#ffffff", "#455a64"),
}
FAILING_COLOUR = "#d32f2f"
OVERLAY_COLOUR = "#1565c0"
INSTALL_HINT = (
    "drawing the lab needs Graphviz's `dot`, which is not on PATH: install the Debian "
    "package with `apt-get install graphviz` (`./lab graph` does that for you), then run "
    "the command again"
)


@dataclass(frozen=True)
class Box:
    """One thing drawn. `parent` is the engine node whose frame it sits in."""

    id: str
    kind: BoxKind
    label: str
    parent: str | None = None
    status: Status | None = None
    dashed: bool = False  # drawn with a dashed outline: an internal overlay (no egress)


@dataclass(frozen=True)
class Link:
    tail: str
    head: str
    kind: LinkKind
    label: str = ""
    both_ways: bool = False  # a failing path that fails in both directions


@dataclass
class Topology:
    cluster: str
    boxes: list[Box] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)

    def box(self, box_id: str) -> Box:
        return next(b for b in self.boxes if b.id == box_id)

    def ids(self, kind: BoxKind) -> list[str]:
        return [b.id for b in self.boxes if b.kind == kind]


# Graphviz reads `a:b` in an edge end as node `a`, port `b`: ids never hold a colon.
def node_id(name: str) -> str:
    return f"node_{name}"


def kv_id(name: str) -> str:
    return f"kv_{name}"


def overlay_id(network: str) -> str:
    return f"net_{network}"


def probe_id(name: str) -> str:
    return f"probe_{name}"


def service_id(stack: str, service: str) -> str:
    return f"svc_{stack}_{service}"


SWITCH_ID = "switch"
HOST_ID = "host"


def worst(statuses: Iterable[Status]) -> Status | None:
    """error > fail > skip > pass; None when nothing was seen (nothing tested it)."""
    seen = set(statuses)
    return next((s for s in _SEVERITY if s in seen), None)


def node_status(results: Sequence[CheckResult], node: str) -> Status | None:
    return worst(r.status for r in results if node in r.nodes)


def build_topology(
    spec: ClusterSpec,
    results: Sequence[CheckResult] = (),
    service_networks: Mapping[tuple[str, str], Sequence[str]] | None = None,
) -> Topology:
    """The picture's model: from the spec alone, or coloured by verify's `results`.

    `service_networks` maps (stack, service) to the overlays its compose file attaches
    it to (see `compose_networks`); without it services are drawn on their node only.
    """
    topo = Topology(cluster=spec.name)
    _add_underlay(topo, spec, results)
    for node in spec.nodes:
        _add_node(topo, spec, node, results)
    _add_overlays(topo, spec, results)
    _add_stacks(topo, spec, service_networks or {})
    topo.links += failing_links(topo, results)
    return topo


def _add_underlay(topo: Topology, spec: ClusterSpec, results: Sequence[CheckResult]) -> None:
    lab = spec.lab
    topo.boxes.append(
        Box(SWITCH_ID, "switch", f"lab switch\n{lab.subnet}\nmtu {lab.mtu}", status=None)
    )
    provider = spec.provider
    # The host's own leg on the switch (like a host-only adapter): where `invoke` runs.
    if isinstance(provider, LocalProviderSpec) and provider.host_link and provider.host_address:
        topo.boxes.append(Box(HOST_ID, "host", f"this machine\n{provider.host_address}"))
        topo.links.append(Link(HOST_ID, SWITCH_ID, "lab"))


def _add_node(
    topo: Topology, spec: ClusterSpec, node: Node, results: Sequence[CheckResult]
) -> None:
    status = node_status(results, node.name)
    address = spec.address_of(node.name)
    roles = ", ".join(node.roles)
    is_kv = spec.kv is not None and spec.kv.node == node.name
    if node.runs_engine:
        # The frame around the node's boxes carries its name; the engine box the rest.
        label = f"dockerd {spec.engine.version}\n{address}\n{roles}"
        topo.boxes.append(Box(node_id(node.name), "engine", label, node.name, status))
        topo.links.append(Link(SWITCH_ID, node_id(node.name), "lab"))
    if is_kv and spec.kv is not None:
        store = f"{spec.kv.backend} :{spec.kv.client_port}"
        # A KV node that also runs an engine keeps its store inside the node's frame.
        parent = node.name if node.runs_engine else None
        label = store if node.runs_engine else f"{node.name}\n{address}\n{store}"
        topo.boxes.append(Box(kv_id(node.name), "kv", label, parent, status))
        if not node.runs_engine:
            topo.links.append(Link(SWITCH_ID, kv_id(node.name), "lab"))


def _add_overlays(topo: Topology, spec: ClusterSpec, results: Sequence[CheckResult]) -> None:
    # verify starts two probes per engine node and overlay (slot "b" tests same-host paths).
    by_probe = _statuses_by_probe(results)
    for net in spec.networks:
        subnet = f"\n{net.subnet}" if net.subnet else ""
        internal = "\ninternal: no egress" if net.internal else ""
        status = worst(r.status for r in results if r.network == net.name)
        label = f"{net.driver} {net.name}{subnet}{internal}"
        topo.boxes.append(
            Box(overlay_id(net.name), "overlay", label, None, status, dashed=net.internal)
        )
        for node in spec.engine_nodes:
            for slot in SLOTS:
                name = probe_name(net.name, node.name, slot)
                status = worst(by_probe.get(name, ()))
                topo.boxes.append(Box(probe_id(name), "probe", name, node.name, status))
                topo.links.append(Link(node_id(node.name), probe_id(name), "runs"))
                topo.links.append(Link(probe_id(name), overlay_id(net.name), "overlay"))


def _statuses_by_probe(results: Sequence[CheckResult]) -> dict[str, list[Status]]:
    """Probe name -> the statuses of the results that ran from or to it (one pass: a
    20-node lab has thousands of results and dozens of probes)."""
    found: dict[str, list[Status]] = {}
    for result in results:
        for side in ("from", "to"):
            probe = result.details.get(side)
            if isinstance(probe, str):
                found.setdefault(probe, []).append(result.status)
    return found


def _add_stacks(
    topo: Topology,
    spec: ClusterSpec,
    service_networks: Mapping[tuple[str, str], Sequence[str]],
) -> None:
    overlays = {n.name for n in spec.networks}
    for stack in spec.stacks:
        for service, node in sorted(stack.services.items()):
            sid = service_id(stack.name, service)
            topo.boxes.append(Box(sid, "service", f"{stack.name}/{service}", node))
            topo.links.append(Link(node_id(node), sid, "runs"))
            for network in service_networks.get((stack.name, service), ()):
                # Only the spec's overlays are drawn; a compose-local network is not one.
                if network in overlays:
                    topo.links.append(Link(sid, overlay_id(network), "overlay"))


def failing_links(topo: Topology, results: Sequence[CheckResult]) -> list[Link]:
    """One red link per pair of places between which some tested path failed.

    A path is a failing result with a source and a different target (cross-node). It
    is drawn between the probes it ran between when those are drawn, else between the
    two nodes (underlay and KV checks test from node to node).
    """
    drawn = {b.id for b in topo.boxes}
    checks: dict[frozenset[str], set[str]] = {}
    directions: dict[frozenset[str], set[tuple[str, str]]] = {}
    for result in results:
        if not result.failed or not result.source or not result.target:
            continue
        if result.source == result.target:
            continue
        tail = _end(result, "from", result.source, drawn)
        head = _end(result, "to", result.target, drawn)
        if tail is None or head is None or tail == head:
            continue
        key = frozenset((tail, head))
        checks.setdefault(key, set()).add(_short_check(result.check))
        directions.setdefault(key, set()).add((tail, head))
    links = []
    for key, names in checks.items():
        first, second = sorted(directions[key])[0]
        both = len(directions[key]) > 1
        links.append(Link(first, second, "failing", " ".join(sorted(names)), both_ways=both))
    return sorted(links, key=lambda link: (link.tail, link.head))


def _end(result: CheckResult, side: str, node: str, drawn: set[str]) -> str | None:
    probe = result.details.get(side)
    if isinstance(probe, str) and probe_id(probe) in drawn:
        return probe_id(probe)
    for candidate in (node_id(node), kv_id(node)):
        if candidate in drawn:
            return candidate
    return None


def _short_check(check: str) -> str:
    # "connectivity.udp" -> "udp": every red link would otherwise repeat the group.
    group, _, name = check.partition(".")
    return name if group == "connectivity" and name else check


# --- compose files: which overlays each service joins ----------------------------------


def compose_networks(spec: ClusterSpec, spec_dir: Path) -> dict[tuple[str, str], list[str]]:
    """(stack, service) -> the networks its compose file attaches it to.

    Best effort: the picture must not fail because a compose file is missing or odd
    (`invoke validate` reports that); such a stack's services are drawn unattached.
    """
    found: dict[tuple[str, str], list[str]] = {}
    for stack in spec.stacks:
        services = _compose_services(resolve_in_spec_dir(spec_dir, stack.file))
        for service in stack.services:
            found[(stack.name, service)] = _service_networks(services.get(service))
    return found


def _compose_services(path: Path) -> dict[str, object]:
    try:
        services = read_compose_file(path).services
    except COMPOSE_UNREADABLE:
        return {}
    return services or {}


def _service_networks(definition: object) -> list[str]:
    if not isinstance(definition, dict):
        return []
    networks = definition.get("networks")
    # Compose allows a list of names or a mapping of name -> options.
    if isinstance(networks, list | dict):
        return [str(n) for n in networks]
    return []


# --- drawing -------------------------------------------------------------------------
#
# An engine node is drawn as one table (its name and engine on top, a row per probe,
# service or store it runs), not as a Graphviz cluster: dot 2.43 (Debian 12) fails
# with "trouble in init_rank" on red links between boxes of different clusters once a
# lab has more than a few nodes. Links reach the rows through table ports.

_SHAPES: dict[BoxKind, dict[str, str]] = {
    "host": {"shape": "box", "style": "rounded,dashed"},
    "switch": {"shape": "box", "style": "filled,bold", "fillcolor": "#fff8e1"},
    "kv": {"shape": "cylinder", "style": "filled"},
    "engine": {"shape": "box3d", "style": "filled"},
    "overlay": {"shape": "hexagon", "style": "filled,bold"},
    "probe": {"shape": "box", "style": "rounded,filled", "fontsize": "9"},
    "service": {"shape": "component", "style": "filled", "fillcolor": "#ede7f6"},
}
# Row colours in a node's table for boxes nothing tested (services are never tested
# as boxes: their checks name them in words only).
_ROW_FILL: dict[BoxKind, str] = {"service": "#ede7f6", "kv": "#ffffff", "probe": "#ffffff"}
_LINKS: dict[LinkKind, dict[str, str]] = {
    "lab": {"arrowhead": "none", "penwidth": "2", "color": "#6d4c41"},
    "runs": {"arrowhead": "none", "color": "#9e9e9e", "style": "dotted"},
    "overlay": {"arrowhead": "none", "color": OVERLAY_COLOUR},
    # Failing paths must not move the layout: the same lab draws the same everywhere.
    "failing": {
        "color": FAILING_COLOUR,
        "fontcolor": FAILING_COLOUR,
        "penwidth": "2.5",
        "constraint": "false",
        "fontsize": "9",
    },
}


def to_dot(topo: Topology) -> graphviz.Digraph:
    """The Graphviz graph, left to right: switch, nodes (a table each), overlays."""
    dot = graphviz.Digraph(
        topo.cluster,
        graph_attr={
            "rankdir": "LR",
            "fontname": "Helvetica",
            "label": f"overlaylab: {topo.cluster}",
            "labelloc": "t",
            "nodesep": "0.3",
            "ranksep": "0.9",
            "bgcolor": "white",
        },
        node_attr={"fontname": "Helvetica", "fontsize": "11"},
        edge_attr={"fontname": "Helvetica", "fontsize": "9"},
    )
    for box in topo.boxes:
        if box.parent is None:
            dot.node(box.id, box.label, **_box_attrs(box))
    for parent in _parents(topo):
        rows = [b for b in topo.boxes if b.parent == parent]
        dot.node(frame_id(parent), _frame_label(parent, rows), shape="plain")
    _keep_spec_order(dot, topo)
    where = {b.id: _endpoint(b) for b in topo.boxes}
    for link in topo.links:
        tail, head = where[link.tail], where[link.head]
        if _frame_of(tail) == _frame_of(head) and link.kind == "runs":
            continue  # a row of the node's own table: the table says it runs there
        attrs = dict(_LINKS[link.kind])
        if link.both_ways:
            attrs["dir"] = "both"
        dot.edge(tail, head, link.label or None, **attrs)
    return dot


def _keep_spec_order(dot: graphviz.Digraph, topo: Topology) -> None:
    """Nodes one above the other in the spec's order (dot would shuffle them to save
    crossings): a reader finds node7 after node6, in every picture of the lab."""
    column = [
        _endpoint(b) for b in topo.boxes if b.kind == "engine" or (b.kind == "kv" and not b.parent)
    ]
    if len(column) < 2:
        return
    with dot.subgraph(name="nodes") as same:
        same.attr(rank="same")
        for upper, lower in itertools.pairwise(column):
            same.edge(upper, lower, style="invis")


def frame_id(node: str) -> str:
    return f"frame_{node}"


def _endpoint(box: Box) -> str:
    """Where links to `box` attach: its own shape, its node's table, or a row of it."""
    if box.parent is None:
        return box.id
    if box.kind == "engine":
        return frame_id(box.parent)
    return f"{frame_id(box.parent)}:{box.id}"


def _frame_of(endpoint: str) -> str:
    return endpoint.split(":", 1)[0]


def _parents(topo: Topology) -> list[str]:
    return list(dict.fromkeys(b.parent for b in topo.boxes if b.parent is not None))


def _frame_label(node: str, rows: list[Box]) -> str:
    """An HTML-like table: the node and its engine on top, one row per thing it runs."""
    engine = next((b for b in rows if b.kind == "engine"), None)
    status = engine.status if engine else None
    fill, line = PALETTE[status]
    title = f'<FONT POINT-SIZE="13"><B>{escape(node)}</B></FONT>'
    if engine is not None:
        title += "".join(f"<BR/>{escape(part)}" for part in engine.label.splitlines())
    cells = [f'<TR><TD BGCOLOR="{fill}" COLOR="{line}">{title}</TD></TR>']
    for box in rows:
        if box is engine:
            continue
        row_fill = PALETTE[box.status][0] if box.status else _ROW_FILL.get(box.kind, "#ffffff")
        row_line = PALETTE[box.status][1]
        text = "<BR/>".join(escape(part) for part in box.label.splitlines())
        size = "9" if box.kind == "probe" else "11"
        cells.append(
            f'<TR><TD PORT="{box.id}" BGCOLOR="{row_fill}" COLOR="{row_line}">'
            f'<FONT POINT-SIZE="{size}">{text}</FONT></TD></TR>'
        )
    width = "2" if status in ("fail", "error") else "1"
    return (
        f'<<TABLE BORDER="{width}" COLOR="{line}" BGCOLOR="#fafafa" STYLE="ROUNDED" '
        f'CELLBORDER="1" CELLSPACING="4" CELLPADDING="4">{"".join(cells)}</TABLE>>'
    )


def _box_attrs(box: Box) -> dict[str, str]:
    attrs = dict(_SHAPES[box.kind])
    fill, line = PALETTE[box.status]
    if box.kind in ("kv", "engine", "overlay", "probe"):
        attrs["fillcolor"] = fill
    attrs["color"] = line if box.status else attrs.get("color", PALETTE[None][1])
    if box.status in ("fail", "error"):
        attrs["penwidth"] = "2"
    if box.dashed:
        attrs["style"] = attrs["style"].replace("bold", "dashed")
    # A tooltip in the SVG: hovering a box says what verify found for it.
    attrs["tooltip"] = f"{box.label.splitlines()[0]}: {box.status or 'not tested'}"
    return attrs


def render(topo: Topology, fmt: str) -> bytes:
    """`topo` drawn by `dot` as `fmt` (svg or png). Raises OverlaylabError, never a
    traceback, when Graphviz is missing or fails."""
    if fmt not in FORMATS:
        raise OverlaylabError(f"cannot draw as {fmt!r}: the picture is {' or '.join(FORMATS)}")
    try:
        data: bytes = to_dot(topo).pipe(format=fmt, quiet=True)
    except graphviz.ExecutableNotFound:
        raise OverlaylabError(INSTALL_HINT) from None
    except graphviz.CalledProcessError as exc:
        stderr = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else ""
        raise OverlaylabError(f"Graphviz's dot failed (exit {exc.returncode}): {stderr}") from None
    return data


def inline_svg(topo: Topology) -> str:
    """The picture as an `<svg>` element to put inside an HTML page.

    dot's SVG starts with an XML declaration and a DOCTYPE naming a DTD by URL; neither
    belongs inside HTML (and the URL would look like a fetch), so only `<svg>...` is kept.
    """
    svg = render(topo, "svg").decode("utf-8")
    return svg[svg.index("<svg") :].strip()


def output_format(path: str | os.PathLike[str]) -> str:
    """The format a file name asks for, from its extension; a clear error otherwise."""
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix not in FORMATS:
        wanted = " or ".join(f".{f}" for f in FORMATS)
        got = f"'.{suffix}'" if suffix else "no extension"
        raise OverlaylabError(f"{path}: the picture is written as {wanted}, not {got}")
    return suffix
