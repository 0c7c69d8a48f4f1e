"""The lab as a picture: KV node, lab switch, engine nodes, overlays, stack containers
and probes, built from the spec and, when verify ran, coloured by its results.

One model (`Topology`: boxes and links, here) is built first and drawn second
(report/drawing.py), so `invoke graph` (the spec alone) and `invoke verify --html`
(spec plus results) draw the same picture, and tests can look at what is drawn without
running Graphviz.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from overlaylab.spec.compose import UNREADABLE as COMPOSE_UNREADABLE
from overlaylab.spec.compose import read_compose_file
from overlaylab.spec.models import ClusterSpec, LocalProviderSpec, Node
from overlaylab.spec.paths import resolve_in_spec_dir
from overlaylab.verify.probes import SLOTS, probe_name
from overlaylab.verify.result import CheckResult, Status

BoxKind = Literal["host", "switch", "kv", "engine", "overlay", "probe", "service"]
LinkKind = Literal["lab", "runs", "overlay", "failing"]
# Worst first, as the report orders statuses: a node with any failure is drawn failing.
_SEVERITY: tuple[Status, ...] = ("error", "fail", "skip", "pass")


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
