"""Probe containers: one per engine node per overlay, listening on TCP, labelled.

They are the lab's own eyes on each network: every connectivity check runs from
one of them, so what is measured is what a container on that node experiences.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

import docker.errors
from docker.models.containers import Container

from overlaylab.context import LabContext
from overlaylab.layout import LABEL_CLUSTER, LABEL_ROLE, probe_name
from overlaylab.probe_tools import UDP_ECHO
from overlaylab.spec.models import PROBE_IMAGE
from overlaylab.up.steps.images import ensure_probe_image

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


def _outdated(container: Container) -> bool:
    return container.status != "running" or container.attrs["Config"]["Cmd"] != PROBE_COMMAND


@dataclass(frozen=True)
class _Found:
    """What one look at a probe found: it runs the current command, or it was
    outdated and is removed now, or there was none."""

    probe: Probe | None = None
    removed: bool = False


def _probe_of(container: Container, node: str, network: str, slot: str) -> Probe:
    address = container.attrs["NetworkSettings"]["Networks"][network]["IPAddress"]
    return Probe(node, network, probe_name(network, node, slot), address, slot)


def _look(ctx: LabContext, node: str, network: str, slot: str) -> _Found:
    """The probe if it runs the current command; one that stopped or runs another is
    removed."""
    with ctx.node(node).engine() as client:
        try:
            container = client.containers.get(probe_name(network, node, slot))
        except docker.errors.NotFound:
            return _Found()
        if _outdated(container):
            container.remove(force=True)
            return _Found(removed=True)
        return _Found(probe=_probe_of(container, node, network, slot))


def _start_probe(ctx: LabContext, node: str, network: str, slot: str) -> Probe:
    """Start the probe (none runs: `_look` found none, or removed an outdated one)."""
    name = probe_name(network, node, slot)
    with ctx.node(node).engine() as client:
        ensure_probe_image(ctx, node, client)  # an older image lacks the command's tools
        container = client.containers.run(
            PROBE_IMAGE,
            PROBE_COMMAND,
            name=name,
            hostname=name,
            detach=True,
            network=network,
            labels={LABEL_CLUSTER: ctx.spec.name, LABEL_ROLE: "probe"},
            # Its PID 1 sets no SIGTERM handler, so the kernel drops SIGTERM and a
            # stopping engine waited 10 s for every probe (12.5 s per engine stop).
            # A probe holds nothing worth a graceful end.
            stop_signal="SIGKILL",
        )
        container.reload()
        return _probe_of(container, node, network, slot)


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
        found = dict(zip(wanted, pool.map(lambda item: attempt(_look, item), wanted), strict=True))
        if any(f is not None and f.removed for f in found.values()):
            time.sleep(OUTDATED_SETTLE)
        # One probe at a time per engine, the engines side by side: while dockerd 20.10
        # started several overlay containers at once, it once failed a start with "dial
        # tcp <kv>: network is unreachable" on a node whose route to the store was fine.
        missing = [item for item, f in found.items() if f is None or f.probe is None]
        started = pool.map(
            lambda node: [(i, attempt(_start_probe, i)) for i in missing if i[0] == node],
            names,
        )
        probe_for = {item: f.probe for item, f in found.items() if f is not None and f.probe}
        for pairs in started:
            probe_for.update({item: probe for item, probe in pairs if probe is not None})
    # Listed as always: by node, then network and slot.
    ordered = [item for node in names for item in wanted if item[0] == node]
    return [probe_for[item] for item in ordered if item in probe_for], problems


def exec_in(
    ctx: LabContext, node: str, container: str, argv: list[str], timeout: float = 10
) -> tuple[int, str]:
    """Run argv in a container; (exit code, combined output). Bounded by `timeout` seconds."""
    wrapped = ["timeout", str(int(max(1, timeout))), *argv]
    with ctx.node(node).engine() as client:
        result = client.containers.get(container).exec_run(wrapped, demux=False)
    return result.exit_code, (result.output or b"").decode(errors="replace")


@dataclass(frozen=True)
class ProbeTest:
    """One test run inside `source`: `argv` passes when `passed(code, output)` says so."""

    id: str  # unique within a run; letters, digits, '.', '-' and '_'
    source: Probe
    argv: list[str]
    passed: Callable[[int, str], bool]
    timeout: int = 3

    def argument(self) -> str:
        return f"{self.id} {self.timeout} {shlex.join(self.argv)}"
