"""The KV store node: etcd (v2 API), zookeeper, or consul when its binary exists."""

from __future__ import annotations

from pathlib import Path

from overlaylab.context import LabContext
from overlaylab.errors import OverlaylabError, on_node
from overlaylab.netns import http_get, tcp_connect_ok
from overlaylab.waiting import wait_until

ZOOKEEPER_SERVER = Path("/usr/share/zookeeper/bin/zkServer.sh")
READY_TIMEOUT = 30.0


# The name each backend's server runs as in /proc/PID/comm (zkServer.sh execs java).
KV_BINARIES = {"etcd": "etcd", "zookeeper": "java", "consul": "consul"}


def kv_command(ctx: LabContext) -> tuple[str, list[str]]:
    """(binary name as seen in /proc/PID/comm, argv) for the spec's KV backend."""
    spec, layout = ctx.spec, ctx.layout
    assert spec.kv is not None
    node = spec.kv.node
    ip, port = str(spec.address_of(node)), spec.kv.client_port
    data = layout.node_dir(node) / spec.kv.backend
    if spec.kv.backend == "etcd":
        # Docker's libkv speaks only etcd's v2 API, which etcd 3.4 serves on request.
        url = f"http://{ip}:{port}"
        peer = "http://127.0.0.1:2380"  # single member: peers never leave the node
        return KV_BINARIES["etcd"], [
            "etcd",
            "--name",
            node,
            "--data-dir",
            str(data),
            "--enable-v2=true",
            "--listen-client-urls",
            url,
            "--advertise-client-urls",
            url,
            "--listen-peer-urls",
            peer,
            "--initial-advertise-peer-urls",
            peer,
            "--initial-cluster",
            f"{node}={peer}",
            "--logger=zap",
            "--log-outputs=stderr",
        ]
    if spec.kv.backend == "zookeeper":
        data.mkdir(parents=True, exist_ok=True)
        config = layout.node_dir(node) / "zoo.cfg"
        config.write_text(
            f"tickTime=2000\ndataDir={data}\nclientPort={port}\nclientPortAddress={ip}\n"
            "admin.enableServer=false\n4lw.commands.whitelist=ruok\n"
        )
        return KV_BINARIES["zookeeper"], [str(ZOOKEEPER_SERVER), "start-foreground", str(config)]
    return KV_BINARIES["consul"], [
        "consul",
        "agent",
        "-server",
        "-bootstrap",
        "-data-dir",
        str(data),
        "-bind",
        ip,
        "-client",
        ip,
        "-http-port",
        str(port),
        "-node",
        node,
    ]


def kv_ready(ctx: LabContext) -> tuple[bool, str]:
    spec = ctx.spec
    assert spec.kv is not None
    ns = ctx.layout.node_ns(spec.kv.node)
    ip, port = str(spec.address_of(spec.kv.node)), spec.kv.client_port
    if spec.kv.backend == "etcd":
        try:
            status, body = http_get(ns, ip, port, "/v2/keys/", timeout=1.0)
        except OSError as exc:
            return False, str(exc)
        if status == 404:
            return False, "etcd answers but does not serve the v2 API (needs --enable-v2=true)"
        return status == 200, f"HTTP {status}: {body[:200]}"
    return tcp_connect_ok(ns, ip, port, timeout=1.0)


def ensure_kv(ctx: LabContext) -> bool:
    if ctx.spec.kv is None:
        return False
    with on_node(ctx.spec.kv.node):
        return _converge_kv(ctx)


def _converge_kv(ctx: LabContext) -> bool:
    spec = ctx.spec
    assert spec.kv is not None
    node, service = spec.kv.node, spec.kv.backend
    binary, argv = kv_command(ctx)
    alive = ctx.provider.service_pid(node, service, binary) is not None
    if alive and kv_ready(ctx)[0]:
        ctx.progress.item(
            node, f"{service} already serving on {spec.address_of(node)}:{spec.kv.client_port}"
        )
        return False
    if alive:
        # Alive but not serving: a second one beside it would fight over its port and data.
        ctx.provider.stop_service(node, service, binary)
    ctx.provider.spawn(node, service, argv)
    why = ""

    def ready_or_died() -> str:
        """`ready`, `died`, or "" (falsy) while the server is still starting."""
        nonlocal why
        ready, why = kv_ready(ctx)
        if ready:
            return "ready"
        # No pid: it died (not just mid-exec), and waiting longer cannot help.
        return "" if ctx.provider.service_pid(node, service) else "died"

    if wait_until(ready_or_died, READY_TIMEOUT, interval=0.1) == "ready":
        ctx.progress.item(
            node, f"{service} serving on {spec.address_of(node)}:{spec.kv.client_port}"
        )
        return True
    raise OverlaylabError(
        f"{service} on {node} did not become ready ({why}).\n"
        f"  log {ctx.layout.log_file(node, service)}:\n"
        + "\n".join(f"  | {line}" for line in ctx.provider.log_tail(node, service).splitlines())
    )
