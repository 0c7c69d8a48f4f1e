"""The lab's topology drawn: Graphviz's `dot` (the Debian package `graphviz`) turns the
model report/topology.py builds into SVG or PNG, coloured by verify's results.
"""

from __future__ import annotations

import itertools
import os
from html import escape
from pathlib import Path

import graphviz  # type: ignore[import-untyped]

from overlaylab.errors import OverlaylabError
from overlaylab.report.topology import Box, BoxKind, LinkKind, Topology
from overlaylab.verify.result import Status

# What the picture can be written as: `invoke graph -o FILE.<ext>`.
FORMATS = ("svg", "png")
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
