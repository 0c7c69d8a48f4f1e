"""One dockerd per engine node, configured from the spec through daemon.json."""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

from overlaylab.context import LabContext
from overlaylab.errors import OverlaylabError, on_node
from overlaylab.gossip import serf_view
from overlaylab.providers.base import ENGINE_SERVICE, tail
from overlaylab.providers.base import Node as NodeHandle
from overlaylab.render import render
from overlaylab.spec.models import ClusterSpec, Node
from overlaylab.steps.tls import LabCA, NodeStore
from overlaylab.waiting import wait_until

READY_TIMEOUT = 30.0
SERF_TIMEOUT = 15.0
ISLAND_TIMEOUT = 3.0  # for every engine's gossip view to hold every engine
# Engines starting at once on a small machine: dockerd's start is CPU-bound, so more
# at a time only makes each one slower.
MAX_PARALLEL_STARTS = 8
SERF_PORT = 7946
SERVICE = ENGINE_SERVICE


def daemon_config(ctx: LabContext, node: Node) -> dict[str, Any]:
    """The node's daemon.json as a dict (rendered from templates/daemon.json.j2).

    Paths are the node's own, from its provider: a folder per engine when several
    share a machine, the host's usual places on a real host.
    """
    handle = ctx.node(node.name)
    return render_daemon_config(
        ctx.spec,
        node,
        docker_socket=str(handle.paths.docker_socket),
        tls_dir=str(handle.paths.tls_dir),
        node_dir=str(handle.paths.root) if handle.paths.private_engine else None,
        cgroup_parent=handle.cgroup_parent,
    )


def render_daemon_config(
    spec: ClusterSpec,
    node: Node,
    *,
    docker_socket: str,
    tls_dir: str,
    node_dir: str | None = None,
    cgroup_parent: str | None = None,
) -> dict[str, Any]:
    """daemon.json for `node` with these paths. Without `node_dir` and `cgroup_parent`
    dockerd keeps its own data paths and cgroups (a host's one engine)."""
    hosts = [f"unix://{docker_socket}"]
    if spec.engine.tls:
        hosts.append(f"tcp://{node.address}:{spec.engine.api_port}")
    where = {"node_dir": node_dir, "cgroup_parent": cgroup_parent}
    text = render(
        "daemon.json.j2",
        hosts=hosts,
        tls=spec.engine.tls,
        tls_dir=tls_dir,
        cluster_store=spec.cluster_store_url(),
        cluster_advertise=spec.engine.cluster_advertise,
        cluster_store_opts=spec.engine.cluster_store_opts,
        labels=[f"{k}={v}" for k, v in sorted(node.labels.items())],
        extra=spec.engine.daemon,
        mtu=spec.lab.mtu,
        **{key: value for key, value in where.items() if value is not None},
    )
    config: dict[str, Any] = json.loads(text)
    return config


def ensure_tls(ctx: LabContext) -> bool:
    if not ctx.spec.engine.tls:
        return False
    layout = ctx.layout
    ca = LabCA(layout.tls_dir, ctx.spec.name)
    made = ["a new CA"] if ca.ensure() else []
    for node in ctx.spec.engine_nodes:
        assert node.address is not None
        handle = ctx.node(node.name)
        if ca.issue(
            NodeStore(handle, handle.paths.tls_dir),
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


def _certificates_digest(handle: NodeHandle) -> str:
    digest = hashlib.sha256()
    for name in ("ca.pem", "cert.pem", "key.pem"):
        digest.update(name.encode() + (handle.read_file(handle.paths.tls_dir / name) or b""))
    return digest.hexdigest()


def _ensure_engine(ctx: LabContext, node: Node) -> str:
    with on_node(node.name):
        return _converge_engine(ctx, node)


def _converge_engine(ctx: LabContext, node: Node) -> str:
    handle = ctx.node(node.name)
    config_path = handle.paths.daemon_config
    wanted = json.dumps(daemon_config(ctx, node), indent=2, sort_keys=True) + "\n"
    current = handle.read_file(config_path)
    # dockerd reads its certificates once, at start: renewed ones need a restart.
    served_path = handle.paths.root / "tls-served.sha256"
    certs = _certificates_digest(handle)
    served = handle.read_file(served_path)
    alive = handle.service_alive(SERVICE, SERVICE)
    unchanged = current == wanted.encode() and served == certs.encode()
    if alive and unchanged and handle.engine_ping():
        return "already running"
    verb = "started"
    if alive:
        handle.stop_service(SERVICE, SERVICE)
        verb = "restarted"
        if current != wanted.encode():
            verb = "restarted (daemon.json changed)"
        elif served != certs.encode():
            verb = "restarted (certificates renewed)"
    handle.put_file(config_path, wanted.encode())
    handle.put_file(served_path, certs.encode())
    dockerd = ctx.spec.engine.dockerd or "dockerd"
    handle.start_service(SERVICE, [dockerd, "--config-file", str(config_path)])

    def ready_or_died() -> str:
        """`ready`, `died`, or "" (falsy) while dockerd is still starting."""
        if handle.engine_ping():
            return "ready"
        # Not alive: it died (not just mid-exec), and waiting longer cannot help.
        return "" if handle.service_alive(SERVICE) else "died"

    if wait_until(ready_or_died, READY_TIMEOUT, interval=0.05) == "ready":
        return verb
    raise OverlaylabError(
        f"dockerd on {node.name} did not answer on {handle.paths.docker_socket}.\n"
        f"  log {handle.service_log_location(SERVICE)}:\n"
        + "\n".join(f"  | {line}" for line in tail(handle.service_log(SERVICE)).splitlines())
    )


def _serf_listening(ctx: LabContext, node: Node) -> bool:
    return ctx.node(node.name).tcp_connect(str(node.address), SERF_PORT, 0.5)[0]


def _ensure_engines_one_by_one(ctx: LabContext, nodes: list[Node]) -> dict[str, str]:
    """Start legacy-overlay engines one at a time, each once the previous one gossips."""
    outcomes = {}
    for node in nodes:
        outcomes[node.name] = _ensure_engine(ctx, node)
        if outcomes[node.name] == "already running":
            continue  # it joined (or not) long ago: waiting cannot change that
        wait_until(partial(_serf_listening, ctx, node), SERF_TIMEOUT, interval=0.05)
    return outcomes


def _in_parallel(ctx: LabContext, nodes: list[Node]) -> dict[str, str]:
    if not nodes:
        return {}
    with ThreadPoolExecutor(max_workers=min(len(nodes), MAX_PARALLEL_STARTS)) as pool:
        started = pool.map(lambda n: _ensure_engine(ctx, n), nodes)
        return dict(zip([n.name for n in nodes], started, strict=True))


def _gossip_views(ctx: LabContext, nodes: list[Node]) -> dict[str, set[str]]:
    node_at = {str(n.address): n.name for n in nodes}
    return {
        n.name: serf_view(ctx.node(n.name).service_log(ENGINE_SERVICE) or "", node_at)
        for n in nodes
    }


def _islanders(ctx: LabContext, nodes: list[Node]) -> list[Node]:
    """Engines whose gossip cluster is not the first engine's, once views settle.

    Every engine of one cluster lists the same members; `[]` once every view holds
    every engine. Serf spreads a join in well under a second here, so views still
    apart after ISLAND_TIMEOUT are islands, not gossip in flight."""
    everyone = {n.name for n in nodes}
    views: dict[str, set[str]] = {}

    def settled() -> bool:
        views.update(_gossip_views(ctx, nodes))
        return all(view == everyone for view in views.values())

    if wait_until(settled, ISLAND_TIMEOUT, interval=0.1):
        return []
    main = views[nodes[0].name]
    return [n for n in nodes if n.name not in main or views[n.name] != main]


def _ensure_engines_gossiping(ctx: LabContext, nodes: list[Node]) -> dict[str, str]:
    """Start legacy-overlay engines fast without leaving any on a gossip island.

    libnetwork joins the serf cluster through ONE neighbour, picked at random among
    the engines the KV store lists, once, at start, and retries only when the KV node
    list changes. Engines started together can join each other before any of them has
    joined the rest, and form islands that never merge (seen with 10 nodes: {n8, n9}
    apart from the rest). So: the first engine alone; once its serf port listens, the
    rest together; then every engine's own gossip view is read, and the engines of an
    island are stopped and started again one at a time, each joining a cluster that
    already holds the first engine. What still cannot merge is left to verify."""
    first, rest = nodes[0], nodes[1:]
    outcomes = {first.name: _ensure_engine(ctx, first)}
    if outcomes[first.name] != "already running":
        wait_until(partial(_serf_listening, ctx, first), SERF_TIMEOUT, interval=0.05)
    outcomes.update(_in_parallel(ctx, rest))
    if all(outcome == "already running" for outcome in outcomes.values()):
        return outcomes  # joined (or not) long ago: underlay.members tells
    islanders = _islanders(ctx, nodes)
    if islanders:
        ctx.progress.item(
            "gossip",
            f"{', '.join(n.name for n in islanders)} formed a gossip island: "
            "restarting them one at a time",
        )
        for node in islanders:
            ctx.node(node.name).stop_service(SERVICE, SERVICE)
        merged = _ensure_engines_one_by_one(ctx, islanders)
        outcomes.update(
            {name: f"{verb} (rejoined the gossip cluster)" for name, verb in merged.items()}
        )
        still = _islanders(ctx, nodes)
        if still:
            # Not an error of `up`: a spec can make gossip impossible on purpose (an
            # advertised address peers cannot reach); underlay.members diagnoses it.
            ctx.progress.item(
                "gossip",
                f"{', '.join(n.name for n in still)} still outside the first engine's gossip "
                "cluster: `invoke verify` (underlay.*) tells why",
            )
    return outcomes


def ensure_engines(ctx: LabContext) -> bool:
    nodes = ctx.spec.engine_nodes
    if ctx.spec.engine.uses_cluster_store and ctx.spec.kv is not None:
        outcomes = _ensure_engines_gossiping(ctx, nodes)
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
