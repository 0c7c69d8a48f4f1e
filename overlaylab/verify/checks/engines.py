"""Engines answer, and advertise what the spec says on an address peers can reach."""

from __future__ import annotations

import json
import re
import time

import docker.errors

from overlaylab.logtail import tail
from overlaylab.providers.base import ENGINE_SERVICE
from overlaylab.verify.check import Check
from overlaylab.verify.context import VerifyContext
from overlaylab.verify.result import CheckResult

PANIC = re.compile(r"^panic: .*$", re.M)


# vctx.cache key: node -> the engine's /info as engines.api read it (engines.advertise
# reads the same document: asked once per run).
ENGINE_INFO = "engine_info"
# vctx.cache key: engines that answered engines.api when this verify began but no longer
# answer at its end (see `died_during_verify`).
DIED_DURING_VERIFY = "engines.died_during_verify"


def died_during_verify(vctx: VerifyContext, results: list[CheckResult]) -> set[str]:
    """Nodes whose engine passed engines.api in this verify and does not answer now.

    An engine can die while verify runs, set off by verify itself (dockerd 20.10 on a
    ZooKeeper store panics once a container joins the overlay: verify's probes). What
    was measured before the death no longer holds, and what failed after it failed
    because of it: verify looks at the engines again before anything is diagnosed.
    """
    answered = {r.target for r in results if r.check == "engines.api" and r.status == "pass"}
    died = {n for n in answered if not vctx.lab.node(n).engine_ping(timeout=2)}
    vctx.cache[DIED_DURING_VERIFY] = died
    return died


def _what_verify_did(vctx: VerifyContext, node: str) -> str:
    """What verify was doing on `node` when its engine died: the probes, if any."""
    networks = ", ".join(n.name for n in vctx.lab.spec.networks) or "its overlays"
    problem = vctx.probe_problems.get(node)
    if problem:
        return f"started its probe containers on {networks} there (cut off: {problem})"
    if any(p.node == node for p in vctx.probes):
        return f"ran its probe containers on {networks} there"
    return "ran its checks"


def _panic_message(vctx: VerifyContext, node: str, panic: re.Match[str], text: str) -> str:
    frames = re.findall(r"^(github\.com/docker/\S+)\(", text[panic.end() :], re.M)[:3]
    where = f" in {frames[0]}" if frames else ""
    message = f"dockerd on {node} crashed: {panic.group(0)}{where}"
    if node in vctx.cache.get(DIED_DURING_VERIFY, ()):
        # The stack names the code path the trigger went through (e.g. an endpoint
        # created by a container joining an overlay): what set the crash off.
        path = " < ".join(f.rsplit("/", 1)[-1] for f in frames[1:])
        message += f" (called from {path})" if path else ""
        message += "; it answered when this verify began and died while verify "
        message += _what_verify_did(vctx, node)
    return message


def _death_reason(vctx: VerifyContext, node: str) -> tuple[str, str]:
    """(message, hint) for an engine that does not answer, read from its own log."""
    handle = vctx.lab.node(node)
    log_path = handle.service_log_location(ENGINE_SERVICE)
    text = handle.service_log(ENGINE_SERVICE) or ""
    panic = PANIC.search(text)
    alive = handle.service_alive(ENGINE_SERVICE, "dockerd")
    if panic:
        return (
            _panic_message(vctx, node, panic, text),
            f"the engine itself failed (see {log_path}); this is a bug in the engine, "
            "triggered by what the lab did last: note the backend and version, restart it "
            "with `invoke up`",
        )
    if node in vctx.cache.get(DIED_DURING_VERIFY, ()):
        return (
            f"dockerd on {node} {'stopped answering' if alive else 'exited'} during this "
            f"verify (it answered when verify began; verify {_what_verify_did(vctx, node)})",
            f"see its log: {log_path}; `invoke up` restarts it",
        )
    if not alive:
        return (
            f"dockerd on {node} is not running",
            f"it exited or was killed; `invoke up` restarts it (log: {log_path})",
        )
    return (
        f"dockerd on {node} runs but does not answer on its socket",
        f"it may be stuck starting: see {log_path}",
    )


def api(vctx: VerifyContext) -> list[CheckResult]:
    # Every engine at once: one waiting on a hung KV store takes seconds to answer /info
    # (3 s each here), and asked node after node, those seconds added up.
    vctx.cache.setdefault(ENGINE_INFO, {})
    nodes = [node.name for node in vctx.lab.spec.engine_nodes]
    return list(vctx.pool.map(lambda node: _api_of(vctx, node), nodes))


def _api_of(vctx: VerifyContext, node: str) -> CheckResult:
    started = time.monotonic()
    handle = vctx.lab.node(node)
    if handle.engine_ping(timeout=2):
        try:
            with handle.engine(timeout=10) as client:
                info = client.info()
        except (docker.errors.DockerException, OSError) as exc:  # requests': OSErrors
            # It answers its ping but not /info: what it holds is unknown (one node's
            # error, not the whole check's).
            return _info_error(node, exc)
        vctx.cache[ENGINE_INFO][node] = info
        return _answering(node, info, round(time.monotonic() - started, 3))
    message, hint = _death_reason(vctx, node)
    return CheckResult(
        check="engines.api",
        subject=node,
        status="fail",
        message=message,
        hint=hint,
        nodes=[node],
        target=node,
        output=tail(handle.service_log(ENGINE_SERVICE), 12),
        command=f"tail {handle.service_log_location('dockerd')}",
        details={"died_during_verify": node in vctx.cache.get(DIED_DURING_VERIFY, ())},
        seconds=round(time.monotonic() - started, 3),
    )


FORWARDING_HINT = (
    "the engine read net.ipv4.ip_forward = 0 when it started and goes on believing it "
    "(`docker run` warns 'IPv4 forwarding is disabled. Networking will not work.'), "
    "whatever the node's setting is now: `invoke up` turns forwarding on in the node "
    "and restarts the engine"
)


def _info_error(node: str, exc: Exception) -> CheckResult:
    return CheckResult(
        check="engines.api",
        subject=node,
        status="error",
        message=f"the engine answers /_ping but its /info fails: {type(exc).__name__}: {exc}",
        hint="what it runs is unknown, not healthy: see its log; `invoke up` restarts it",
        nodes=[node],
        target=node,
        details={"exception": type(exc).__name__, "error": str(exc)},
    )


def _answering(node: str, info: dict, seconds: float) -> CheckResult:
    """An engine that answers: it passes unless it believes IPv4 forwarding is off."""
    version = info.get("ServerVersion", "?")
    forwarding = info.get("IPv4Forwarding")
    believes_off = forwarding is False
    return CheckResult(
        check="engines.api",
        subject=node,
        status="fail" if believes_off else "pass",
        message=f"engine {version} answers but believes IPv4 forwarding is off"
        if believes_off
        else f"engine {version} answers",
        hint=FORWARDING_HINT if believes_off else "",
        nodes=[node],
        target=node,
        details={"version": version, "ipv4_forwarding": forwarding},
        seconds=seconds,
    )


def _info(vctx: VerifyContext, node: str) -> dict | None:
    """The engine's /info: as engines.api read it in this run, else asked now."""
    seen: dict | None = vctx.cache.get(ENGINE_INFO, {}).get(node)
    if seen is not None:
        return seen
    handle = vctx.lab.node(node)
    if not handle.engine_ping(timeout=2):
        return None
    with handle.engine(timeout=10) as client:
        return client.info()


def _configured_advertise(vctx: VerifyContext, node: str) -> str | None:
    """cluster-advertise as the engine's daemon.json gives it (None: unreadable)."""
    text = vctx.lab.node(node).read_file(vctx.lab.node(node).paths.daemon_config)
    try:
        value = json.loads(text or b"").get("cluster-advertise")
    except ValueError:
        return None
    return str(value) if value else None


def _advertise_hint(vctx: VerifyContext, node: str, advertise: str | None) -> str:
    """Why the engine advertises `advertise`: its own configuration when that is not the
    spec's (quoting the spec's value as the running one would send the reader to the
    wrong place), else the spec's interface."""
    wanted = vctx.lab.spec.engine.cluster_advertise
    host = (advertise or "").rsplit(":", 1)[0] or "the advertised address"
    configured = _configured_advertise(vctx, node)
    if configured is not None and configured != wanted:
        return (
            f"{host} is not the node's lab address: the engine runs with cluster-advertise "
            f"{configured} (its daemon.json), not the spec's {wanted}. `invoke up` rewrites "
            "daemon.json and restarts the engine."
        )
    return (
        f"{host} is not the node's lab address: cluster-advertise names the wrong interface "
        f"({wanted}). On VirtualBox-style hosts eth0 is NAT (10.0.2.15 on every VM, reachable "
        "from none); advertise the host-only/lab interface instead, e.g. "
        f"cluster-advertise: eth1:{vctx.lab.spec.engine.advertise_port}"
    )


def cluster_config(vctx: VerifyContext) -> list[CheckResult]:
    """cluster-store and cluster-advertise as the engine reports them, against the spec."""
    spec = vctx.lab.spec
    wanted_store = spec.cluster_store_url()
    results = []
    for node in spec.engine_nodes:
        info = _info(vctx, node.name)
        if info is None:
            results.append(
                CheckResult.untested(
                    "engines.advertise", node.name, "its engine does not answer", "engines.api"
                )
            )
            continue
        store = info.get("ClusterStore") or None
        advertise = info.get("ClusterAdvertise") or None
        problems, hints = [], []
        if store != wanted_store:
            problems.append(f"cluster-store is {store or 'unset'}, the spec says {wanted_store}")
            hints.append("the engine runs with another daemon config: `invoke up` rewrites it")
        expected = f"{node.address}:{spec.engine.advertise_port}" if wanted_store else None
        if expected and advertise != expected:
            problems.append(
                f"advertises {advertise or 'nothing'}, but peers reach this node at {node.address}"
            )
            hints.append(_advertise_hint(vctx, node.name, advertise))
        results.append(
            CheckResult(
                check="engines.advertise",
                subject=node.name,
                status="fail" if problems else "pass",
                message="; ".join(problems) or f"store {store}, advertises {advertise}",
                hint=" ".join(hints),
                nodes=[node.name],
                target=node.name,
                details={
                    "cluster_store": store,
                    "cluster_advertise": advertise,
                    "expected_advertise": expected,
                },
            )
        )
    return results


API = Check("engines.api", "engines", "every node's engine answers its API", api)

ADVERTISE = Check(
    "engines.advertise",
    "engines",
    "cluster-store and cluster-advertise match the spec and the node's lab address",
    cluster_config,
    after=(API,),  # it reads the /info that engines.api fetched
)

CHECKS = [API, ADVERTISE]
