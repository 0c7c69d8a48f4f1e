"""The KV store: reachable from every node, and every engine registered in it."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from overlaylab.host_programs import ZOOKEEPER_SERVER
from overlaylab.logtail import tail
from overlaylab.providers.base import Node
from overlaylab.verify.check import Check
from overlaylab.verify.context import VerifyContext
from overlaylab.verify.result import CheckResult

# Debian's zookeeper package ships its CLI next to the server script.
ZOOKEEPER_CLI = ZOOKEEPER_SERVER.parent / "zkCli.sh"

DISCOVERY_PATH = "docker/nodes"  # libkv's default kv.path for engine discovery


# ZooKeeper's four-letter health word (whitelisted in the lab's zoo.cfg): "imok" back.
# bash's /dev/tcp, as the node has no ZooKeeper client that answers in under a second.
RUOK_SCRIPT = 'exec 3<>"/dev/tcp/$1/$2" || exit 3; printf ruok >&3; head -c 4 <&3'
ANSWER_TIMEOUT = 2.0  # seconds a store has to answer a health request


def _http_health(
    handle: Node, ip: str, port: int, path: str, healthy: Callable[[str], bool]
) -> tuple[bool, str]:
    try:
        status, body = handle.http_get(ip, port, path, timeout=ANSWER_TIMEOUT)
    except OSError as exc:
        return False, f"no answer to GET {path} within {ANSWER_TIMEOUT:g} s ({exc})"
    said = " ".join(body.split())[:120]
    if status == 200 and healthy(body):
        return True, f"GET {path}: {said}"
    return False, f"GET {path} answered HTTP {status}: {said or 'nothing'}"


def _zookeeper_health(handle: Node, ip: str, port: int) -> tuple[bool, str]:
    seconds = str(int(ANSWER_TIMEOUT))
    argv = ["timeout", seconds, "bash", "-c", RUOK_SCRIPT, "ruok", ip, str(port)]
    result = handle.run(argv, check=False, timeout=ANSWER_TIMEOUT + 5)
    if result.stdout == "imok":
        return True, "ruok: imok"
    if result.returncode == 124:
        return False, f"no answer to ruok within {seconds} s"
    said = result.stdout.strip() or tail(result.stderr, 1) or f"exit {result.returncode}"
    return False, f"ruok answered {said!r}, not imok (is ruok in 4lw.commands.whitelist?)"


def store_answers(handle: Node, backend: str, ip: str, port: int) -> tuple[bool, str]:
    """Does the store answer a health request in its own protocol, from `handle`'s node?

    An open port is not a working store: a stopped (SIGSTOP) or wedged server still
    accepts connections (the kernel completes the handshake) and never answers."""
    if backend == "etcd":
        return _http_health(handle, ip, port, "/health", lambda b: '"true"' in b)
    if backend == "consul":
        return _http_health(
            handle, ip, port, "/v1/status/leader", lambda b: bool(b.strip().strip('"'))
        )
    return _zookeeper_health(handle, ip, port)


def _reachable_from(vctx: VerifyContext, node: str) -> CheckResult:
    spec = vctx.lab.spec
    assert spec.kv is not None
    kv_ip, port, backend = str(spec.address_of(spec.kv.node)), spec.kv.client_port, spec.kv.backend
    started = time.monotonic()
    handle = vctx.lab.node(node)
    connected, why = handle.tcp_connect(kv_ip, port, timeout=2)
    answered, said = store_answers(handle, backend, kv_ip, port) if connected else (False, "")
    if answered:
        message, hint = f"connected; {said}", ""
    elif connected:
        message = f"connected, but {backend} does not answer: {said}"
        hint = (
            f"{backend} on {spec.kv.node} accepts connections but does not serve them: the "
            "process is stopped, hung or overloaded (its log, `invoke status`); the engines "
            "cannot read or write overlay state until it answers"
        )
    else:
        message = f"cannot connect: {why}"
        hint = (
            "the engines keep overlay state in the KV store: is "
            f"{backend} running on {spec.kv.node} (`invoke status`), and can "
            f"{node} reach the lab network (underlay.*)?"
        )
    return CheckResult(
        check="kv.reachable",
        subject=f"{node} -> {backend} {kv_ip}:{port}",
        status="pass" if answered else "fail",
        message=message,
        hint=hint,
        nodes=[node, spec.kv.node],
        source=node,
        target=spec.kv.node,
        details={"port": port, "connected": connected, "answered": answered},
        command=handle.tcp_probe_command(kv_ip, port),
        seconds=round(time.monotonic() - started, 3),
    )


def reachable(vctx: VerifyContext) -> list[CheckResult]:
    spec = vctx.lab.spec
    if spec.kv is None:
        return [CheckResult.skip("kv.reachable", "kv", "the spec has no KV store")]
    # Side by side: a store that does not answer costs each node the full wait.
    return vctx.map(lambda node: [_reachable_from(vctx, node)], [n.name for n in spec.engine_nodes])


def _discovery_path(vctx: VerifyContext) -> str:
    spec = vctx.lab.spec
    assert spec.kv is not None
    prefix = spec.kv.path.strip("/")
    return "/".join(p for p in (prefix, DISCOVERY_PATH) if p)


def _http_registrations(vctx: VerifyContext, url_path: str) -> tuple[Any, str]:
    """(the JSON body, "") or (None, why not), from the store's HTTP API on the KV node."""
    spec = vctx.lab.spec
    assert spec.kv is not None
    kv_node = vctx.lab.node(spec.kv.node)
    address = str(spec.address_of(spec.kv.node))
    try:
        status, body = kv_node.http_get(address, spec.kv.client_port, url_path, timeout=2)
    except OSError as exc:
        return None, f"{spec.kv.backend} does not answer: {exc}"
    if status == 404:
        return [], f"HTTP 404 for {url_path} (no engine ever registered)"
    if status != 200:
        return None, f"HTTP {status} for {url_path}"
    return json.loads(body), ""


def _etcd_registrations(vctx: VerifyContext) -> tuple[set[str] | None, str]:
    body, why = _http_registrations(vctx, f"/v2/keys/{_discovery_path(vctx)}/")
    if body is None or body == []:
        return (None if body is None else set()), why
    nodes = body.get("node", {}).get("nodes", [])
    return {n["key"].rsplit("/", 1)[-1] for n in nodes}, ""


def _consul_registrations(vctx: VerifyContext) -> tuple[set[str] | None, str]:
    body, why = _http_registrations(vctx, f"/v1/kv/{_discovery_path(vctx)}/?keys")
    if body is None:
        return None, why
    return {key.rstrip("/").rsplit("/", 1)[-1] for key in body}, why


def _zookeeper_registrations(vctx: VerifyContext) -> tuple[set[str] | None, str]:
    """zkCli on the KV node (ZooKeeper has no HTTP API for its znodes)."""
    spec = vctx.lab.spec
    assert spec.kv is not None
    server = f"{spec.address_of(spec.kv.node)}:{spec.kv.client_port}"
    znode = "/" + _discovery_path(vctx)
    result = vctx.lab.node(spec.kv.node).run(
        [str(ZOOKEEPER_CLI), "-server", server, "ls", znode], check=False, timeout=30
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("[")]
    if "NoNode" in result.stdout + result.stderr:
        return set(), f"no znode {znode} (no engine ever registered)"
    if result.returncode != 0 or not lines:
        return None, f"zkCli ls {znode} failed (exit {result.returncode}): {tail(result.stderr)}"
    return {k.strip() for k in lines[-1].strip("[]").split(",") if k.strip()}, ""


REGISTRATIONS = {
    "etcd": _etcd_registrations,
    "consul": _consul_registrations,
    "zookeeper": _zookeeper_registrations,
}


def registered(vctx: VerifyContext) -> list[CheckResult]:
    spec = vctx.lab.spec
    if spec.kv is None or not spec.engine.uses_cluster_store:
        return [CheckResult.skip("kv.registered", "kv", "no cluster-store in the spec")]
    found, why = REGISTRATIONS[spec.kv.backend](vctx)
    results = []
    for node in spec.engine_nodes:
        key = f"{node.address}:{spec.engine.advertise_port}"
        if found is None:
            status, message = "fail", why
        elif key in found:
            status, message = "pass", f"registered as {key}"
        else:
            others = ", ".join(sorted(found)) or "none"
            status, message = "fail", f"{key} is not registered (registered: {others})"
        results.append(
            CheckResult(
                check="kv.registered",
                subject=node.name,
                status=status,
                message=message,
                hint=""
                if status == "pass"
                else (
                    "each engine registers its cluster-advertise address under docker/nodes "
                    "every heartbeat (20 s): a missing entry means the engine cannot reach the "
                    "store, or advertises another address (engines.advertise)"
                ),
                nodes=[node.name],
                target=node.name,
                details={"registered": sorted(found or [])},
            )
        )
    return results


REACHABLE = Check(
    "kv.reachable",
    "kv",
    "every engine node reaches the KV store, and it answers a health request",
    reachable,
)

REGISTERED = Check(
    "kv.registered",
    "kv",
    "every engine is registered in the KV store's discovery path",
    registered,
)

CHECKS = [REACHABLE, REGISTERED]
