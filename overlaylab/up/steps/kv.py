"""The KV store node: etcd (v2 API), zookeeper, or consul when its binary exists."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from overlaylab.context import LabContext
from overlaylab.errors import OverlaylabError, on_node
from overlaylab.logtail import QUOTE, tail
from overlaylab.nodeconf import ZOOKEEPER_CONFIG, kv_argv, zookeeper_config
from overlaylab.providers.kv_program import program_on_node
from overlaylab.spec.models import KVStore
from overlaylab.up.run import UpRun
from overlaylab.waiting import wait_until

READY_TIMEOUT = 30.0


def kv_command(ctx: LabContext) -> tuple[str, list[str]]:
    """(binary name as seen in /proc/PID/comm, argv) for the spec's KV backend
    (overlaylab.nodeconf); places the files the server needs (zookeeper's zoo.cfg) on
    the KV node first."""
    spec = ctx.spec
    assert spec.kv is not None
    handle = ctx.node(spec.kv.node)
    node_dir = Path(handle.paths.root)
    if spec.kv.backend == "zookeeper":
        config = zookeeper_config(spec, node_dir).encode()
        handle.put_file(handle.paths.root / ZOOKEEPER_CONFIG, config)
    return kv_argv(spec, node_dir)


def kv_ready(ctx: LabContext) -> tuple[bool, str]:
    spec = ctx.spec
    assert spec.kv is not None
    kv_node = ctx.node(spec.kv.node)
    ip, port = str(spec.address_of(spec.kv.node)), spec.kv.client_port
    if spec.kv.backend == "etcd":
        try:
            status, body = kv_node.http_get(ip, port, "/v2/keys/", timeout=1.0)
        except OSError as exc:
            return False, str(exc)
        if status == 404:
            return False, "etcd answers but does not serve the v2 API (needs --enable-v2=true)"
        return status == 200, f"HTTP {status}: {body[:200]}"
    if spec.kv.backend == "consul":
        # Consul answers HTTP before it has elected itself; its KV refuses writes until then.
        try:
            status, body = kv_node.http_get(ip, port, "/v1/status/leader", timeout=1.0)
        except OSError as exc:
            return False, str(exc)
        leader = body.strip().strip('"')
        return status == 200 and bool(leader), f"HTTP {status}, leader {leader or 'none yet'}"
    return kv_node.tcp_connect(ip, port, timeout=1.0)


def ensure_kv(ctx: LabContext, run: UpRun) -> bool:
    if ctx.spec.kv is None:
        return False
    with on_node(ctx.spec.kv.node):
        changed = _converge_kv(ctx)
        extra = discovery_context(ctx)
        if extra is not None:  # classic swarm's own consul beside the engines' store
            changed = _converge_kv(extra) or changed
        return changed


def discovery_context(ctx: LabContext) -> LabContext | None:
    """The lab seen with classic swarm's discovery store as its KV store, when that is a
    second store on the KV node (`orchestration.discovery: consul`); else None."""
    spec = ctx.spec
    if spec.kv is None or spec.orchestration.mode != "classic-swarm":
        return None
    if spec.orchestration.discovery != "consul" or spec.kv.backend == "consul":
        return None
    consul = KVStore(backend="consul", node=spec.kv.node)
    return replace(ctx, spec=spec.model_copy(update={"kv": consul}))


def _converge_kv(ctx: LabContext) -> bool:
    spec = ctx.spec
    assert spec.kv is not None
    node, service = spec.kv.node, spec.kv.backend
    handle = ctx.node(node)
    binary, argv = kv_command(ctx)
    alive = handle.service_alive(service, binary)
    if alive and kv_ready(ctx)[0]:
        ctx.progress.item(
            node, f"{service} already serving on {spec.address_of(node)}:{spec.kv.client_port}"
        )
        return False
    if alive:
        # Alive but not serving: a second one beside it would fight over its port and data.
        handle.stop_service(service, binary)
    handle.start_service(service, [program_on_node(handle, argv[0], ctx.progress.item), *argv[1:]])
    why = ""

    def ready_or_died() -> str:
        """`ready`, `died`, or "" (falsy) while the server is still starting."""
        nonlocal why
        ready, why = kv_ready(ctx)
        if ready:
            return "ready"
        # No pid: it died (not just mid-exec), and waiting longer cannot help.
        return "" if handle.service_alive(service) else "died"

    if wait_until(ready_or_died, READY_TIMEOUT, interval=0.1) == "ready":
        ctx.progress.item(
            node, f"{service} serving on {spec.address_of(node)}:{spec.kv.client_port}"
        )
        return True
    raise OverlaylabError(
        f"{service} on {node} did not become ready ({why}).\n"
        f"  log {handle.service_log_location(service)}:\n"
        + tail(handle.service_log(service), quote=QUOTE)
    )
