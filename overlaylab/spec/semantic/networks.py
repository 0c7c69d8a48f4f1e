"""Rules on overlay networks: unique names, subnets and gateways, a control plane to carry them."""

from __future__ import annotations

import re
from pathlib import Path

from overlaylab.spec.models import DRIVER_MTU_OPTION, ClusterSpec
from overlaylab.spec.semantic.common import duplicates
from overlaylab.spec.semantic.report import Loc, Report

_WHOLE_NUMBER = re.compile(r"[0-9]+")


def check_networks(spec: ClusterSpec, spec_dir: Path, report: Report) -> None:
    names = [n.name for n in spec.networks]
    for index, first in duplicates(names):
        report.add(
            ("networks", index, "name"),
            f"duplicate network name {names[index]!r} (also networks[{first}]); "
            "network names must be unique",
        )
    for index, network in enumerate(spec.networks):
        _check_network_subnet(spec, index, report)
        if network.gateway is not None:
            _check_gateway(spec, index, report)
        mtu = network.options.get(DRIVER_MTU_OPTION)
        if mtu is not None and not _WHOLE_NUMBER.fullmatch(mtu):
            # dockerd refuses it at `network create` ("failed to parse"), mid-`up`.
            report.add(
                ("networks", index, "options", DRIVER_MTU_OPTION),
                f'{mtu!r} is not a whole number of bytes; write the MTU in quotes, e.g. "1450"',
            )


def _check_network_subnet(spec: ClusterSpec, index: int, report: Report) -> None:
    subnet = spec.networks[index].subnet
    if subnet is None:
        return
    loc: Loc = ("networks", index, "subnet")
    if subnet.overlaps(spec.lab.subnet):
        report.add(
            loc,
            f"{subnet} overlaps lab.subnet {spec.lab.subnet}; containers could not tell "
            "overlay peers from lab hosts; pick a disjoint range such as 10.0.9.0/24",
        )
    for other_index, other in enumerate(spec.networks[:index]):
        if other.subnet is not None and subnet.overlaps(other.subnet):
            report.add(
                loc,
                f"{subnet} overlaps networks[{other_index}] ({other.name}, {other.subnet}); "
                "give each overlay a disjoint subnet",
            )


def _check_gateway(spec: ClusterSpec, index: int, report: Report) -> None:
    network = spec.networks[index]
    loc: Loc = ("networks", index, "gateway")
    # docker network create refuses --gateway without --subnet, and outside it.
    if network.subnet is None:
        report.add(loc, "a gateway needs a subnet; add subnet: or drop gateway:")
    elif network.gateway not in network.subnet:
        report.add(loc, f"{network.gateway} is outside the network's subnet {network.subnet}")


def check_overlay_needs_control_plane(spec: ClusterSpec, spec_dir: Path, report: Report) -> None:
    # Without a KV store or swarm mode, `docker network create -d overlay` fails with
    # "This node is not a swarm manager".
    if spec.engine.uses_cluster_store or spec.orchestration.mode == "swarm-mode":
        return
    for index, network in enumerate(spec.networks):
        if network.driver == "overlay":
            report.add(
                ("networks", index, "driver"),
                "an overlay network needs engine.cluster-store (legacy overlay) or "
                "orchestration.mode: swarm-mode; set one of them",
            )
