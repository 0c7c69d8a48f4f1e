"""Rules on nodes: unique names, engine nodes, addresses in the lab subnet, the host's own."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from overlaylab.spec.models import ClusterSpec
from overlaylab.spec.semantic.common import duplicates, host_address, node_names
from overlaylab.spec.semantic.report import Loc, Report


def check_node_names(spec: ClusterSpec, spec_dir: Path, report: Report) -> None:
    for index, first in duplicates(node_names(spec)):
        report.add(
            ("nodes", index, "name"),
            f"duplicate node name {spec.nodes[index].name!r} (also nodes[{first}]); "
            "node names must be unique",
        )


def check_engine_nodes(spec: ClusterSpec, spec_dir: Path, report: Report) -> None:
    if not spec.engine_nodes:
        report.add(
            ("nodes",),
            "no node runs an engine; give at least one node a role other than kv, "
            "e.g. roles: [engine]",
        )


def check_addresses(spec: ClusterSpec, spec_dir: Path, report: Report) -> None:
    subnet = spec.lab.subnet
    host = host_address(spec)
    addresses = [n.address for n in spec.nodes]
    for index, first in duplicates(addresses):
        if addresses[index] is None:
            continue
        report.add(
            ("nodes", index, "address"),
            f"address {addresses[index]} is already used by nodes[{first}] "
            f"({spec.nodes[first].name}); every node needs its own address",
        )
    for index, node in enumerate(spec.nodes):
        address = node.address
        loc: Loc = ("nodes", index, "address")
        if address is None:  # load_spec fills these in; nothing to check otherwise
            continue
        if address not in subnet:
            report.add(
                loc,
                f"{address} is outside lab.subnet {subnet}; use an address inside it "
                "or change lab.subnet",
            )
        elif address in _reserved(subnet):
            kind = "network" if address == subnet.network_address else "broadcast"
            report.add(
                loc,
                f"{address} is the {kind} address of lab.subnet {subnet}; "
                f"use a host address between {subnet.network_address + 1} and "
                f"{subnet.broadcast_address - 1}",
            )
        elif host is not None and address == host:
            report.add(
                loc,
                f"{address} is the host's own address on the lab switch "
                "(provider.host_address); pick another address or move host_address",
            )


def _reserved(subnet: ipaddress.IPv4Network) -> tuple[ipaddress.IPv4Address, ...]:
    # /31 and /32 have no network or broadcast address (RFC 3021).
    if subnet.prefixlen > 30:
        return ()
    return (subnet.network_address, subnet.broadcast_address)


def check_host_address(spec: ClusterSpec, spec_dir: Path, report: Report) -> None:
    host = host_address(spec)
    subnet = spec.lab.subnet
    if host is not None and host not in subnet:
        report.add(
            ("provider", "host_address"),
            f"{host} is outside lab.subnet {subnet}; use an address inside it",
        )
