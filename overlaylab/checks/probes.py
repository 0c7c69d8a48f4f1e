"""Probe containers: one per engine node per overlay, listening on TCP, labelled.

They are the lab's own eyes on each network: every connectivity check runs from
one of them, so what is measured is what a container on that node experiences.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

import docker.errors
from docker.models.containers import Container

from overlaylab.context import LabContext
from overlaylab.layout import LABEL_CLUSTER, LABEL_ROLE
from overlaylab.probe_tools import UDP_ECHO
from overlaylab.spec.models import PROBE_IMAGE
from overlaylab.steps.images import ensure_probe_image

T = TypeVar("T")

PROBE_PORT = 7070  # TCP: busybox httpd serving PROBE_PAGE
PROBE_UDP_PORT = 7071  # UDP: probe_tools' udp-echo answering every datagram
IPUTILS_PING = "/opt/host/bin/ping"
# httpd daemonizes itself; the UDP echo then becomes the container's main process.
PROBE_COMMAND = ["sh", "-c", f"httpd -p {PROBE_PORT} -h /www && exec {UDP_ECHO} {PROBE_UDP_PORT}"]
# Seconds for the removal of outdated probes to reach every engine by gossip.
OUTDATED_SETTLE = 2.0
# Two probes per node and network: the second one makes same-host paths testable.
SLOTS = ("a", "b")


@dataclass(frozen=True)
class Probe:
    node: str
    network: str
    name: str
    address: str  # its address on `network`
    slot: str = "a"


def probe_name(network: str, node: str, slot: str = "a") -> str:
    return f"probe-{network}-{node}" + ("" if slot == "a" else f"-{slot}")


def _outdated(container: Container) -> bool:
    return container.status != "running" or container.attrs["Config"]["Cmd"] != PROBE_COMMAND


def _remove_if_outdated(ctx: LabContext, node: str, network: str, slot: str) -> bool:
    """Remove the probe if it stopped or runs another command; True if it did."""
    with ctx.node(node).engine() as client:
        try:
            container = client.containers.get(probe_name(network, node, slot))
        except docker.errors.NotFound:
            return False
        if not _outdated(container):
            return False
        container.remove(force=True)
        return True


def _ensure_probe(ctx: LabContext, node: str, network: str, slot: str) -> Probe:
    name = probe_name(network, node, slot)
    with ctx.node(node).engine() as client:
        try:
            container = client.containers.get(name)
            if _outdated(container):
                container.remove(force=True)
                raise docker.errors.NotFound(name)
        except docker.errors.NotFound:
            ensure_probe_image(ctx, node, client)  # an older image lacks the command's tools
            container = client.containers.run(
                PROBE_IMAGE,
                PROBE_COMMAND,
                name=name,
                hostname=name,
                detach=True,
                network=network,
                labels={LABEL_CLUSTER: ctx.spec.name, LABEL_ROLE: "probe"},
            )
        container.reload()
        address = container.attrs["NetworkSettings"]["Networks"][network]["IPAddress"]
    return Probe(node, network, name, address, slot)


def ensure_probes(
    ctx: LabContext, nodes: list[str] | None = None
) -> tuple[list[Probe], dict[str, str]]:
    """Start (or find) the probes on `nodes` (default: every engine node).

    Returns the probes that run and, per node, why its probes could not be had: a
    dead engine must become a finding in the report, not a crash of verify.
    """
    names = nodes if nodes is not None else [n.name for n in ctx.spec.engine_nodes]
    wanted = [(n, net.name, s) for net in ctx.spec.networks for n in names for s in SLOTS]
    problems: dict[str, str] = {}

    def attempt(step: Callable[..., T], item: tuple[str, str, str]) -> T | None:
        try:
            return step(ctx, *item)
        except Exception as exc:  # docker, requests and OS errors alike
            problems.setdefault(item[0], f"{type(exc).__name__}: {exc}"[:300])
            return None

    with ThreadPoolExecutor(max_workers=max(1, min(16, len(wanted)))) as pool:
        # Outdated probes all go before any new one starts. The legacy overlay spreads
        # endpoint joins and leaves by gossip, unordered: a new probe given the address
        # an old one on another node just freed could be "left" after it "joined".
        # Probes replaced all at once on 10 engines left 33 of 190 paths dead; with this
        # order still 41 of 200, so it narrows the race without closing it (the README
        # says to remake the lab then). A fresh lab is not affected.
        removed = list(pool.map(lambda item: attempt(_remove_if_outdated, item), wanted))
        if any(removed):
            time.sleep(OUTDATED_SETTLE)
        # One probe at a time per engine, the engines side by side: while dockerd 20.10
        # started several overlay containers at once, it once failed a start with "dial
        # tcp <kv>: network is unreachable" on a node whose route to the store was fine.
        per_node = pool.map(
            lambda node: [attempt(_ensure_probe, item) for item in wanted if item[0] == node],
            names,
        )
        probes = [p for found in per_node for p in found if p is not None]
    return probes, problems


def exec_in(
    ctx: LabContext, node: str, container: str, argv: list[str], timeout: float = 10
) -> tuple[int, str]:
    """Run argv in a container; (exit code, combined output). Bounded by `timeout` seconds."""
    wrapped = ["timeout", str(int(max(1, timeout))), *argv]
    with ctx.node(node).engine() as client:
        result = client.containers.get(container).exec_run(wrapped, demux=False)
    return result.exit_code, (result.output or b"").decode(errors="replace")
