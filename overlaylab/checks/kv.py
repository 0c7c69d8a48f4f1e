"""The KV store: reachable from every node, and every engine registered in it."""

from __future__ import annotations

import json
import time

from overlaylab.checks.base import Check, VerifyContext
from overlaylab.checks.result import CheckResult

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


def _etcd_registrations(vctx: VerifyContext) -> tuple[set[str] | None, str]:
    spec = vctx.lab.spec
    assert spec.kv is not None
    kv_node = vctx.lab.node(spec.kv.node)
    prefix = spec.kv.path.strip("/")
    path = "/".join(p for p in (prefix, DISCOVERY_PATH) if p)
    try:
        status, body = kv_node.http_get(
            str(spec.address_of(spec.kv.node)),
            spec.kv.client_port,
            f"/v2/keys/{path}/",
            timeout=2,
        )
    except OSError as exc:
        return None, f"etcd does not answer: {exc}"
    if status != 200:
        return set(), f"HTTP {status} for /v2/keys/{path}/ (no engine ever registered)"
    nodes = json.loads(body).get("node", {}).get("nodes", [])
    return {n["key"].rsplit("/", 1)[-1] for n in nodes}, ""


def registered(vctx: VerifyContext) -> list[CheckResult]:
    spec = vctx.lab.spec
    if spec.kv is None or not spec.engine.uses_cluster_store:
        return [CheckResult.skip("kv.registered", "kv", "no cluster-store in the spec")]
    if spec.kv.backend != "etcd":
        return [
            CheckResult.skip(
                "kv.registered",
                spec.kv.backend,
                f"reading registrations from {spec.kv.backend} is not "
                "implemented (etcd only); kv.reachable still ran",
            )
        ]
    found, why = _etcd_registrations(vctx)
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
