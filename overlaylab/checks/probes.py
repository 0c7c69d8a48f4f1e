"""Probe containers: one per engine node per overlay, listening on TCP, labelled.

They are the lab's own eyes on each network: every connectivity check runs from
one of them, so what is measured is what a container on that node experiences.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import docker.errors

from overlaylab.context import LabContext
from overlaylab.layout import LABEL_CLUSTER, LABEL_ROLE
from overlaylab.spec.models import PROBE_IMAGE

PROBE_PORT = 7070  # TCP: busybox httpd serving PROBE_PAGE
PROBE_UDP_PORT = 7071  # UDP: socat echoing every datagram back
SOCAT = "/opt/host/bin/socat"
IPUTILS_PING = "/opt/host/bin/ping"
# httpd daemonizes itself; socat then becomes the container's main process.
PROBE_COMMAND = [
    "sh",
    "-c",
    f"httpd -p {PROBE_PORT} -h /www "
    # -T 2 ends each forked echo child: a UDP peer never sends EOF, cat would wait forever.
    f"&& exec {SOCAT} -T 0.2 UDP-RECVFROM:{PROBE_UDP_PORT},fork,reuseaddr EXEC:/bin/cat",
]
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


def _ensure_probe(ctx: LabContext, node: str, network: str, slot: str) -> Probe:
    name = probe_name(network, node, slot)
    with ctx.node(node).engine() as client:
        try:
            container = client.containers.get(name)
            if container.status != "running" or container.attrs["Config"]["Cmd"] != PROBE_COMMAND:
                container.remove(force=True)
                raise docker.errors.NotFound(name)
        except docker.errors.NotFound:
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

    def attempt(item: tuple[str, str, str]) -> Probe | None:
        try:
            return _ensure_probe(ctx, *item)
        except Exception as exc:  # docker, requests and OS errors alike
            problems.setdefault(item[0], f"{type(exc).__name__}: {exc}"[:300])
            return None

    with ThreadPoolExecutor(max_workers=max(1, min(16, len(wanted)))) as pool:
        probes = [p for p in pool.map(attempt, wanted) if p is not None]
    return probes, problems


def exec_in(
    ctx: LabContext, node: str, container: str, argv: list[str], timeout: float = 10
) -> tuple[int, str]:
    """Run argv in a container; (exit code, combined output). Bounded by `timeout` seconds."""
    wrapped = ["timeout", str(int(max(1, timeout))), *argv]
    with ctx.node(node).engine() as client:
        result = client.containers.get(container).exec_run(wrapped, demux=False)
    return result.exit_code, (result.output or b"").decode(errors="replace")
