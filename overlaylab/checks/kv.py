"""The KV store: reachable from every node, and every engine registered in it."""

from __future__ import annotations

import json
import time
from typing import Any

from overlaylab.checks.base import Check, VerifyContext
from overlaylab.checks.result import CheckResult
from overlaylab.providers.base import tail
from overlaylab.steps.kv import ZOOKEEPER_SERVER

# Debian's zookeeper package ships its CLI next to the server script.
ZOOKEEPER_CLI = ZOOKEEPER_SERVER.parent / "zkCli.sh"

DISCOVERY_PATH = "docker/nodes"  # libkv's default kv.path for engine discovery


def reachable(vctx: VerifyContext) -> list[CheckResult]:
    spec = vctx.lab.spec
    if spec.kv is None:
        return [CheckResult.skip("kv.reachable", "kv", "the spec has no KV store")]
    kv_ip, port = str(spec.address_of(spec.kv.node)), spec.kv.client_port
    results = []
    for node in spec.engine_nodes:
        started = time.monotonic()
        handle = vctx.lab.node(node.name)
        ok, why = handle.tcp_connect(kv_ip, port, timeout=2)
        results.append(
            CheckResult(
                check="kv.reachable",
                subject=f"{node.name} -> {spec.kv.backend} {kv_ip}:{port}",
                status="pass" if ok else "fail",
                message="connected" if ok else f"cannot connect: {why}",
                hint=""
                if ok
                else (
                    "the engines keep overlay state in the KV store: is "
                    f"{spec.kv.backend} running on {spec.kv.node} (`invoke status`), and can "
                    f"{node.name} reach the lab network (underlay.*)?"
                ),
                nodes=[node.name, spec.kv.node],
                source=node.name,
                target=spec.kv.node,
                details={"port": port},
                command=handle.tcp_probe_command(kv_ip, port),
                seconds=round(time.monotonic() - started, 3),
            )
        )
    return results


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


CHECKS = [
    Check("kv.reachable", "kv", "every engine node reaches the KV store's client port", reachable),
    Check(
        "kv.registered",
        "kv",
        "every engine is registered in the KV store's discovery path",
        registered,
    ),
]
