"""One dockerd per engine node, configured from the spec through daemon.json."""

from __future__ import annotations

import hashlib
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import docker.errors

from overlaylab import nodeconf
from overlaylab.context import LabContext
from overlaylab.errors import OverlaylabError, on_node
from overlaylab.logtail import QUOTE, tail
from overlaylab.providers.base import ENGINE_SERVICE
from overlaylab.providers.base import Node as NodeHandle
from overlaylab.spec.models import Node
from overlaylab.up.dead_engine import forget_dead_engine
from overlaylab.up.run import UpRun
from overlaylab.waiting import wait_until

READY_TIMEOUT = 30.0
# A swarm manager restarted while its swarm has no leader answers its API only once it
# gives up waiting for the swarm component (about 30 s and more, measured here): the
# first `up` after a lost quorum then failed where the second succeeded in 3 s.
MANAGER_READY_TIMEOUT = 90.0
# Seconds between two legacy-overlay engine starts: wider than the jitter of dockerd's
# first KV registration on a loaded 2-core machine (see _ensure_engines_gossiping).
STAGGER = 0.15
# Each engine joins exactly one other: with three or fewer, every way they can pick
# makes one cluster (two clusters need two pairs that picked each other), so they
# start at once.
START_TOGETHER = 3
STOP_TIMEOUT = 30.0  # for a dockerd with running containers to exit by itself
STOPPED_TIMEOUT = 10.0  # for a killed dockerd to be gone
SERVICE = ENGINE_SERVICE


def daemon_config(ctx: LabContext, node: Node) -> dict[str, Any]:
    """The node's daemon.json as a dict (overlaylab.nodeconf, as `invoke render` shows it).

    Paths are the node's own, from its provider: a folder per engine when several
    share a machine, the host's usual places on a real host.
    """
    handle = ctx.node(node.name)
    return nodeconf.daemon_config(ctx.spec, node, handle.paths, handle.cgroup_parent)


def _certificates_digest(handle: NodeHandle) -> str:
    digest = hashlib.sha256()
    for name in ("ca.pem", "cert.pem", "key.pem"):
        digest.update(name.encode() + (handle.read_file(handle.paths.tls_dir / name) or b""))
    return digest.hexdigest()


class StartSlots:
    """Hands out dockerd start times at least `gap` seconds apart, to threads in flight.

    Only real starts take a slot: an engine found running takes none, so a no-op `up`
    of a large lab does not wait out the stagger."""

    def __init__(self, gap: float) -> None:
        self.gap = gap
        self._lock = threading.Lock()
        self._next = 0.0
        self.given: list[float] = []  # the start times handed out, in order

    def take(self) -> None:
        with self._lock:
            now = time.monotonic()
            at = max(now, self._next)
            self._next = at + self.gap
            self.given.append(at)
        time.sleep(at - now)


# dockerd reads net.ipv4.ip_forward when it starts and keeps what it read: an engine
# started before forwarding is on in its node warns "IPv4 forwarding is disabled.
# Networking will not work." on every `docker run` until it restarts.
ENABLE_FORWARDING = ["sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward"]


def enable_forwarding(handle: NodeHandle) -> None:
    """Forwarding on in the node, before its engine starts (every provider: through the
    node handle, in the node's own network namespace)."""
    handle.run(ENABLE_FORWARDING, timeout=10)


def believes_forwarding(handle: NodeHandle) -> bool | None:
    """Does the running engine believe IPv4 forwarding is on? (`docker info`) None when
    its /info fails or does not answer: no engine to keep either."""
    try:
        with handle.engine(timeout=10) as client:
            return client.info().get("IPv4Forwarding") is not False
    except (docker.errors.DockerException, OSError):  # requests' errors are OSErrors
        return None


def _ensure_engine(ctx: LabContext, node: Node, slots: StartSlots | None = None) -> str:
    with on_node(node.name):
        return _converge_engine(ctx, node, slots)


def _converge_engine(ctx: LabContext, node: Node, slots: StartSlots | None = None) -> str:
    handle = ctx.node(node.name)
    config_path = handle.paths.daemon_config
    wanted = nodeconf.daemon_json(daemon_config(ctx, node))
    current = handle.read_file(config_path)
    # dockerd reads its certificates once, at start: renewed ones need a restart.
    served_path = handle.paths.root / "tls-served.sha256"
    certs = _certificates_digest(handle)
    served = handle.read_file(served_path)
    alive = handle.service_alive(SERVICE, SERVICE)
    if not alive:
        # Adopts a live engine the lab lost track of; clears a dead one's pid files.
        alive = forget_dead_engine(handle) and handle.service_alive(SERVICE, SERVICE)
    unchanged = current == wanted.encode() and served == certs.encode()
    answering = alive and handle.engine_ping()
    belief = believes_forwarding(handle) if answering else None
    if unchanged and belief:
        return "already running"
    verb = "started"
    if alive:
        handle.stop_service(SERVICE, SERVICE)
        verb = "restarted"
        if current != wanted.encode():
            verb = "restarted (daemon.json changed)"
        elif served != certs.encode():
            verb = "restarted (certificates renewed)"
        elif belief is False:
            verb = "restarted (it believed IPv4 forwarding was off)"
        elif answering:
            verb = "restarted (it answered /_ping but not /info)"
    handle.put_file(config_path, wanted.encode())
    handle.put_file(served_path, certs.encode())
    enable_forwarding(handle)
    dockerd = ctx.spec.engine.dockerd or "dockerd"
    if slots is not None:
        slots.take()
    handle.start_service(SERVICE, [dockerd, "--config-file", str(config_path)])

    def ready_or_died() -> str:
        """`ready`, `died`, or "" (falsy) while dockerd is still starting."""
        if handle.engine_ping():
            return "ready"
        # Not alive: it died (not just mid-exec), and waiting longer cannot help.
        return "" if handle.service_alive(SERVICE) else "died"

    manager = ctx.spec.orchestration.mode == "swarm-mode" and "manager" in node.roles
    patience = MANAGER_READY_TIMEOUT if manager else READY_TIMEOUT
    if wait_until(ready_or_died, patience, interval=0.05) == "ready":
        return verb
    raise OverlaylabError(
        f"dockerd on {node.name} did not answer on {handle.paths.docker_socket}.\n"
        f"  log {handle.service_log_location(SERVICE)}:\n"
        + tail(handle.service_log(SERVICE), quote=QUOTE)
    )


def start_in_parallel(ctx: LabContext, nodes: list[Node], gap: float = 0.0) -> dict[str, str]:
    """Converge engines together; real starts `gap` seconds apart."""
    if not nodes:
        return {}
    slots = StartSlots(gap)
    with ThreadPoolExecutor(max_workers=len(nodes)) as pool:
        started = pool.map(lambda n: _ensure_engine(ctx, n, slots), nodes)
        return dict(zip([n.name for n in nodes], started, strict=True))


def stop_engines(ctx: LabContext, nodes: list[Node]) -> None:
    with ThreadPoolExecutor(max_workers=len(nodes)) as pool:
        list(
            pool.map(lambda n: ctx.node(n.name).stop_service(SERVICE, SERVICE, STOP_TIMEOUT), nodes)
        )
    # A dockerd given time exits by itself and removes its pid file; one killed leaves
    # it, and a new one refuses to start while that pid still shows in /proc ("pid file
    # found, ensure docker is not running"). With containers to stop, and a legacy
    # overlay to leave, dockerd took more than 10 s to exit here.
    wait_until(
        lambda: not any(ctx.node(n.name).service_alive(SERVICE, SERVICE) for n in nodes),
        STOPPED_TIMEOUT,
        interval=0.1,
    )


def gossiping(ctx: LabContext) -> bool:
    """Legacy overlay: the engines find each other through the KV store and serf."""
    return ctx.spec.engine.uses_cluster_store and ctx.spec.kv is not None


def ensure_engines(ctx: LabContext, run: UpRun) -> bool:
    """Start (or restart) every engine whose daemon.json, certificates or process is not
    what the spec wants, and wait until each answers.

    Legacy-overlay engines start STAGGER apart once there are more than START_TOGETHER:
    libnetwork joins the serf cluster once, through ONE neighbour, the engine the KV
    store's node list named last before the engine's own registration showed up there
    (the list arrives as a Go set, so "last" is random within one read). dockerd
    registers about 0.5 s after it starts. Engines whose registrations land in the same
    read can pick each other and form an island that never merges (seen with 10
    engines started together: {n6..n10} apart from the rest). Staggered starts give
    every engine registrations that are already gossiping to pick from, while they
    still overlap. The engines started here are checked for islands by ensure_gossip,
    after the images step: gossip settles while images load."""
    nodes = ctx.spec.engine_nodes
    gossip = gossiping(ctx)
    outcomes = start_in_parallel(
        ctx, nodes, STAGGER if gossip and len(nodes) > START_TOGETHER else 0.0
    )
    for name, outcome in outcomes.items():
        ctx.progress.item(name, f"dockerd {outcome}")
    started = [name for name, outcome in outcomes.items() if outcome != "already running"]
    if gossip:
        run.engines_started.update(started)
    return bool(started)
