"""Overlay networks: created once, then seen (same id) on every engine node."""

from __future__ import annotations

import docker
import docker.errors
from docker.types import IPAMConfig, IPAMPool

from overlaylab.context import LabContext
from overlaylab.errors import OverlaylabError, on_node
from overlaylab.layout import LABEL_CLUSTER
from overlaylab.spec.models import ClusterSpec, OverlayNetwork
from overlaylab.up.run import UpRun
from overlaylab.up.steps.swarm import managers
from overlaylab.waiting import wait_until

CREATE_TIMEOUT = 30.0  # the engine's KV session may still be forming right after start
PROPAGATION_TIMEOUT = 30.0
ALLOCATION_TIMEOUT = 10.0  # a swarm-mode overlay's driver shows once the manager allocated it


def _find(client: docker.DockerClient, name: str) -> dict | None:
    for net in client.api.networks(names=[name]):
        if net["Name"] == name:
            return _allocated(client, net["Id"])
    return None


def _allocated(client: docker.DockerClient, net_id: str) -> dict:
    """The network as inspected once the engine has filled in its driver.

    A swarm-mode overlay is created in the swarm's store and allocated a moment
    later; inspected in between, its Driver is empty (seen on a loaded machine),
    which would read as a network of another driver."""
    info: dict = client.api.inspect_network(net_id)
    if info.get("Driver"):
        return info

    def settled() -> dict | None:
        nonlocal info
        info = client.api.inspect_network(net_id)
        return info if info.get("Driver") else None

    return wait_until(settled, ALLOCATION_TIMEOUT, interval=0.1) or info


def _subnet_of(info: dict) -> str | None:
    configs = (info.get("IPAM") or {}).get("Config") or []
    return configs[0].get("Subnet") if configs else None


def _mismatch(net: OverlayNetwork, info: dict) -> str | None:
    if info.get("Driver") != net.driver:
        return f"driver is {info.get('Driver')}, the spec says {net.driver}"
    if net.subnet is not None and _subnet_of(info) != str(net.subnet):
        return f"subnet is {_subnet_of(info)}, the spec says {net.subnet}"
    return None


def _create(ctx: LabContext, client: docker.DockerClient, net: OverlayNetwork) -> dict:
    ipam = None
    if net.subnet is not None:
        pool = IPAMPool(subnet=str(net.subnet), gateway=str(net.gateway) if net.gateway else None)
        ipam = IPAMConfig(pool_configs=[pool])
    refusals: list[docker.errors.APIError] = []

    def attempt() -> dict | None:
        try:
            created = client.api.create_network(
                net.name,
                driver=net.driver,
                options=net.options or None,
                ipam=ipam,
                internal=net.internal,
                labels={LABEL_CLUSTER: ctx.spec.name, **net.labels},
                attachable=net.attachable if ctx.spec.orchestration.mode == "swarm-mode" else None,
                check_duplicate=True,
            )
            return _allocated(client, created["Id"])
        except docker.errors.APIError as exc:
            refusals.append(exc)
            return None

    info = wait_until(attempt, CREATE_TIMEOUT, interval=0.25)
    if info is None:  # every attempt was refused
        raise OverlaylabError(
            f"network {net.name}: the engine refused to create it: {refusals[-1].explanation}"
        ) from refusals[-1]
    return info


def _where(spec: ClusterSpec) -> list[str]:
    """Engines that create the networks (the first) and must then list them (all).

    A legacy overlay is global: every engine of the KV store lists it. A swarm-mode
    overlay is made on a manager and shows on the managers; a worker lists it only
    once a container of its own uses it, so only managers are waited for."""
    if spec.orchestration.mode == "swarm-mode":
        return [n.name for n in managers(spec)]
    return [n.name for n in spec.engine_nodes]


def _clash(net: OverlayNetwork, net_id: str, first: str, node: str, info: dict) -> str:
    other = f"driver {info.get('Driver') or '?'}, subnet {_subnet_of(info) or '?'}"
    scope = info.get("Scope") or "?"
    return (
        f"network {net.name} on {node} is another network than on {first}: {node} lists "
        f"{info['Id'][:12]} ({other}, scope {scope}), {first} made {net_id[:12]}. "
        f"Either a network of that name was created on {node} by hand (remove it there: "
        f"`docker network rm {info['Id'][:12]}`), or {node}'s engine is on another cluster "
        "store than the others (`invoke status` shows each engine's)."
    )


def ensure_networks(ctx: LabContext, run: UpRun) -> bool:
    spec = ctx.spec
    nodes = _where(spec)
    changed = False
    for net in spec.networks:
        with on_node(nodes[0]), ctx.node(nodes[0]).engine() as first:
            info = _find(first, net.name)
            if info is None:
                info = _create(ctx, first, net)
                changed = True
                ctx.progress.item(
                    nodes[0], f"created {net.driver} network {net.name} ({_subnet_of(info)})"
                )
        problem = _mismatch(net, info)
        if problem:
            raise OverlaylabError(
                f"network {net.name} already exists but {problem}. Remove it "
                f"(`invoke down` then `invoke up`) or make the spec match."
            )
        _wait_everywhere(ctx, net, info["Id"], nodes)
    return changed


def _wait_everywhere(ctx: LabContext, net: OverlayNetwork, net_id: str, nodes: list[str]) -> None:
    """Wait until every engine lists the network `nodes[0]` has; an engine that lists
    another network of that name is a clash, named at once (no wait helps it)."""
    missing = list(nodes)

    def present_everywhere() -> bool:
        for node in list(missing):
            with on_node(node), ctx.node(node).engine() as client:
                info = _find(client, net.name)
            if info is None:
                continue
            if info["Id"] != net_id:
                raise OverlaylabError(_clash(net, net_id, nodes[0], node, info))
            missing.remove(node)
        return not missing

    if not wait_until(present_everywhere, PROPAGATION_TIMEOUT, interval=0.1):
        raise OverlaylabError(
            f"network {net.name} ({net_id[:12]}) did not appear on {', '.join(missing)} within "
            f"{PROPAGATION_TIMEOUT:.0f}s: those engines do not share the KV store. Check "
            "their cluster-store/cluster-advertise (`invoke status`) and dockerd logs."
        )
    ctx.progress.item(net.name, f"present on {len(nodes)} engines ({net_id[:12]})")
