"""One dockerd per engine node, configured from the spec through daemon.json."""

from __future__ import annotations

import contextlib
import hashlib
import json
import socket
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

from overlaylab.context import LabContext
from overlaylab.errors import OverlaylabError, on_node
from overlaylab.netns import tcp_connect_ok
from overlaylab.render import render
from overlaylab.spec.models import Node
from overlaylab.steps.tls import LabCA
from overlaylab.waiting import wait_until

READY_TIMEOUT = 30.0
SERF_TIMEOUT = 15.0
SERF_PORT = 7946
SERVICE = "dockerd"


def daemon_config(ctx: LabContext, node: Node) -> dict[str, Any]:
    """The node's daemon.json as a dict (rendered from templates/daemon.json.j2)."""
    spec, layout = ctx.spec, ctx.layout
    hosts = [f"unix://{layout.docker_socket(node.name)}"]
    if spec.engine.tls:
        hosts.append(f"tcp://{node.address}:{spec.engine.api_port}")
    text = render(
        "daemon.json.j2",
        node_dir=str(layout.node_dir(node.name)),
        hosts=hosts,
        tls=spec.engine.tls,
        tls_dir=str(layout.node_dir(node.name) / "tls"),
        cluster_store=spec.cluster_store_url(),
        cluster_advertise=spec.engine.cluster_advertise,
        cluster_store_opts=spec.engine.cluster_store_opts,
        labels=[f"{k}={v}" for k, v in sorted(node.labels.items())],
        extra=spec.engine.daemon,
        cgroup_parent=layout.cgroup_parent(node.name),
        mtu=spec.lab.mtu,
    )
    return json.loads(text)


def ensure_tls(ctx: LabContext) -> bool:
    if not ctx.spec.engine.tls:
        return False
    layout = ctx.layout
    ca = LabCA(layout.tls_dir, ctx.spec.name)
    made = ["a new CA"] if ca.ensure() else []
    for node in ctx.spec.engine_nodes:
        assert node.address is not None
        if ca.issue(
            layout.node_dir(node.name) / "tls",
            node.name,
            server=True,
            ips=[node.address],
            dns_names=[node.name, "localhost"],
        ):
            made.append(node.name)
    if ca.issue(layout.client_cert_dir, "overlaylab-client", server=False):
        made.append("the client")
    if made:
        ctx.progress.item("tls", f"certificates for {', '.join(made)} in {layout.tls_dir}")
    return bool(made)


def engine_ping(ctx: LabContext, node: str, timeout: float = 1.0) -> bool:
    """GET /_ping on the node's unix socket: cheap readiness without a client library."""
    path = str(ctx.layout.docker_socket(node))
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(path)
            sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            return sock.recv(64).startswith(b"HTTP/1.0 200") or False
    except OSError:
        return False


def _certificates_digest(tls_dir: Path) -> str:
    digest = hashlib.sha256()
    for name in ("ca.pem", "cert.pem", "key.pem"):
        with contextlib.suppress(FileNotFoundError):
            digest.update(name.encode() + (tls_dir / name).read_bytes())
    return digest.hexdigest()


def _ensure_engine(ctx: LabContext, node: Node) -> str:
    with on_node(node.name):
        return _converge_engine(ctx, node)


def _converge_engine(ctx: LabContext, node: Node) -> str:
    layout, provider = ctx.layout, ctx.provider
    config = daemon_config(ctx, node)
    config_path = layout.daemon_config(node.name)
    wanted = json.dumps(config, indent=2, sort_keys=True) + "\n"
    current = config_path.read_text() if config_path.exists() else None
    # dockerd reads its certificates once, at start: renewed ones need a restart.
    served_path = layout.node_dir(node.name) / "tls-served.sha256"
    certs = _certificates_digest(layout.node_dir(node.name) / "tls")
    served = served_path.read_text() if served_path.exists() else None
    alive = provider.service_pid(node.name, SERVICE, SERVICE) is not None
    if alive and current == wanted and served == certs and engine_ping(ctx, node.name):
        return "already running"
    verb = "started"
    if alive:
        provider.stop_service(node.name, SERVICE, SERVICE)
        verb = "restarted"
        if current != wanted:
            verb = "restarted (daemon.json changed)"
        elif served != certs:
            verb = "restarted (certificates renewed)"
    layout.node_dir(node.name).mkdir(parents=True, exist_ok=True)
    config_path.write_text(wanted)
    served_path.write_text(certs)
    provider.spawn(node.name, SERVICE, ["dockerd", "--config-file", str(config_path)])

    def ready_or_died() -> str:
        """`ready`, `died`, or "" (falsy) while dockerd is still starting."""
        if engine_ping(ctx, node.name):
            return "ready"
        # No pid: it died (not just mid-exec), and waiting longer cannot help.
        return "" if provider.service_pid(node.name, SERVICE) is not None else "died"

    if wait_until(ready_or_died, READY_TIMEOUT, interval=0.05) == "ready":
        return verb
    raise OverlaylabError(
        f"dockerd on {node.name} did not answer on {layout.docker_socket(node.name)}.\n"
        f"  log {layout.log_file(node.name, SERVICE)}:\n"
        + "\n".join(f"  | {line}" for line in provider.log_tail(node.name, SERVICE).splitlines())
    )


def _serf_listening(ctx: LabContext, node: Node) -> bool:
    return tcp_connect_ok(ctx.provider.netns(node.name), str(node.address), SERF_PORT, 0.5)[0]


def _ensure_engines_one_by_one(ctx: LabContext, nodes: list[Node]) -> dict[str, str]:
    """Start legacy-overlay engines one at a time, each once the previous one gossips.

    libnetwork joins the serf cluster through one neighbour, once, at start, retrying
    only when the KV node list changes. Engines started together join neighbours that
    are not listening yet and split into islands that never merge (seen with 10 nodes:
    {n8, n9} apart from the rest). Waiting for each one's serf port avoids it.
    """
    outcomes = {}
    for node in nodes:
        outcomes[node.name] = _ensure_engine(ctx, node)
        if outcomes[node.name] == "already running":
            continue  # it joined (or not) long ago: waiting cannot change that
        wait_until(partial(_serf_listening, ctx, node), SERF_TIMEOUT, interval=0.05)
    return outcomes


def ensure_engines(ctx: LabContext) -> bool:
    nodes = ctx.spec.engine_nodes
    if ctx.spec.engine.uses_cluster_store and ctx.spec.kv is not None:
        outcomes = _ensure_engines_one_by_one(ctx, nodes)
        for name, outcome in outcomes.items():
            ctx.progress.item(name, f"dockerd {outcome}")
        return any(o != "already running" for o in outcomes.values())
    with ThreadPoolExecutor(max_workers=len(nodes)) as pool:
        outcomes = dict(
            zip(
                [n.name for n in nodes],
                pool.map(lambda n: _ensure_engine(ctx, n), nodes),
                strict=True,
            )
        )
    for name, outcome in outcomes.items():
        ctx.progress.item(name, f"dockerd {outcome}")
    return any(o != "already running" for o in outcomes.values())
