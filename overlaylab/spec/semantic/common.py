"""What several rules ask of a spec: node names, a node by name, duplicates, versions."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator

from overlaylab.spec.models import ClusterSpec, Node
from overlaylab.spec.semantic.report import suggest


def node_names(spec: ClusterSpec) -> list[str]:
    return [n.name for n in spec.nodes]


def find_node(spec: ClusterSpec, name: str) -> Node | None:
    return next((n for n in spec.nodes if n.name == name), None)


def unknown_node(spec: ClusterSpec, name: str) -> str:
    names = node_names(spec)
    return f"no node is named {name!r}{suggest(name, names)} (nodes: {', '.join(names)})"


def version_of(text: str) -> tuple[int, int]:
    major, minor = text.split(".")
    return int(major), int(minor)


def duplicates(values: Iterable[object]) -> Iterator[tuple[int, int]]:
    """Yield (index, index of first occurrence) for each repeated value."""
    first: dict[object, int] = {}
    for index, value in enumerate(values):
        if value in first:
            yield index, first[value]
        else:
            first[value] = index


def host_address(spec: ClusterSpec) -> ipaddress.IPv4Address | None:
    """The host's own address on the lab switch, when the provider gives it one."""
    provider = spec.provider
    if provider.type == "local" and provider.host_link:
        return provider.host_address
    return None
