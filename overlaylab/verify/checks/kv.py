"""The KV store: reachable from every node, and every engine registered in it."""

from __future__ import annotations

import time
from collections.abc import Callable

from overlaylab.logtail import tail
from overlaylab.overlay.registrations import engine_registrations, registration_key
from overlaylab.providers.base import Node
from overlaylab.verify.check import Check
from overlaylab.verify.checks.underlay import connects
from overlaylab.verify.context import VerifyContext
from overlaylab.verify.result import CheckResult

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
    connected, why = connects(handle, kv_ip, port)
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


def registered(vctx: VerifyContext) -> list[CheckResult]:
    spec = vctx.lab.spec
    if spec.kv is None or not spec.engine.uses_cluster_store:
        return [CheckResult.skip("kv.registered", "kv", "no cluster-store in the spec")]
    found, why = engine_registrations(vctx.lab)
    results = []
    for node in spec.engine_nodes:
        key = registration_key(vctx.lab, node.name)
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
