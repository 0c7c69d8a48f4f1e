"""Probe containers: one per engine node per overlay, listening on TCP, labelled.

They are the lab's own eyes on each network: every connectivity check runs from
one of them, so what is measured is what a container on that node experiences.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import docker.errors

from overlaylab.context import LabContext
from overlaylab.layout import LABEL_CLUSTER, LABEL_ROLE
from overlaylab.spec.models import PROBE_IMAGE

PROBE_PORT = 7070


@dataclass(frozen=True)
class Probe:
    node: str
    network: str
    name: str
    address: str  # its address on `network`


def probe_name(network: str, node: str) -> str:
    return f"probe-{network}-{node}"


def _ensure_probe(ctx: LabContext, node: str, network: str) -> Probe:
    name = probe_name(network, node)
    with ctx.provider.engine(node) as client:
        try:
            container = client.containers.get(name)
            if container.status != "running":
                container.remove(force=True)
                raise docker.errors.NotFound(name)
        except docker.errors.NotFound:
            container = client.containers.run(
                PROBE_IMAGE,
                ["httpd", "-f", "-p", str(PROBE_PORT), "-h", "/www"],
                name=name,
                hostname=name,
                detach=True,
                network=network,
                labels={LABEL_CLUSTER: ctx.spec.name, LABEL_ROLE: "probe"},
            )
        container.reload()
        address = container.attrs["NetworkSettings"]["Networks"][network]["IPAddress"]
    return Probe(node, network, name, address)


def ensure_probes(ctx: LabContext) -> list[Probe]:
    pairs = [(n.name, net.name) for net in ctx.spec.networks for n in ctx.spec.engine_nodes]
    with ThreadPoolExecutor(max_workers=max(1, len(pairs))) as pool:
        return list(pool.map(lambda p: _ensure_probe(ctx, *p), pairs))


def exec_in(
    ctx: LabContext, node: str, container: str, argv: list[str], timeout: float = 10
) -> tuple[int, str]:
    """Run argv in a container; (exit code, combined output). Bounded by `timeout` seconds."""
    wrapped = ["timeout", str(int(max(1, timeout))), *argv]
    with ctx.provider.engine(node) as client:
        result = client.containers.get(container).exec_run(wrapped, demux=False)
    return result.exit_code, (result.output or b"").decode(errors="replace")


def remove_probes(ctx: LabContext) -> int:
    removed = 0
    for node in ctx.spec.engine_nodes:
        with ctx.provider.engine(node.name) as client:
            for c in client.containers.list(all=True, filters={"label": f"{LABEL_ROLE}=probe"}):
                c.remove(force=True)
                removed += 1
    return removed


def retry(action, timeout: float, interval: float = 0.3):  # type: ignore[no-untyped-def]
    """Call `action` until it returns (True, ...) or `timeout` passes; return the last result."""
    deadline = time.monotonic() + timeout
    while True:
        result = action()
        if result[0] or time.monotonic() >= deadline:
            return result
        time.sleep(interval)
