"""Engines and the lab network: an engine down or misconfigured, a node cut off."""

from __future__ import annotations

from overlaylab.verify.check import Check
from overlaylab.verify.checks import engines, kv, peers, probes_running, swarm, underlay
from overlaylab.verify.diagnosis.evidence import (
    DATA_CHECKS,
    NODE_DEPENDENT,
    Diagnosis,
    Evidence,
    unreached_schedules,
)
from overlaylab.verify.result import CheckResult


def dead_engines(ev: Evidence) -> list[Diagnosis]:
    found = []
    for result in ev.failed(engines.API):
        node = result.target
        if node not in ev.engine_nodes or result.details.get("ipv4_forwarding") is False:
            continue  # an engine that answers is not down (forwarding_off explains it)
        follows: tuple[Check, ...] = (
            underlay.API,
            underlay.GOSSIP,
            underlay.MEMBERS,
            probes_running.RUNNING,
            kv.REGISTERED,  # a dead engine's registration expires with its TTL
        )
        died_now = bool(result.details.get("died_during_verify"))
        if died_now:
            # Its probes ran until it died: what they measured through it failed with it
            # (the store is reached from the node itself, which stays up).
            follows += tuple(c for c in NODE_DEPENDENT if c not in (*follows, kv.REACHABLE))
        explained = [
            result,
            *ev.involving(node, follows),
            *ev.untested_because(node, engines.API),
            *ev.untested_because(node, probes_running.RUNNING),
            *_swarm_follows(ev, node),
        ]
        found.append(
            Diagnosis(
                cause=f"the engine on {node} " + ("died during verify" if died_now else "is down"),
                detail=f"{result.message}. {result.hint}",
                nodes=[node],
                checks=ev.explain(explained),
            )
        )
    return found


def _swarm_follows(ev: Evidence, node: str) -> list[CheckResult]:
    """What a node lost to the swarm (its engine dead, or the node cut off) does.

    Swarm mode: the managers mark the node down, a service placed there runs no task,
    and its name answers nothing. A lost quorum is not among them: it is a finding of
    its own (swarm_quorum_lost). Classic swarm: the master starts nothing on the node,
    and waits on an engine it cannot reach, meanwhile answering no start on any node
    (seen here: with one agent cut off, every start through the master hung until its
    refresh gave that engine up)."""
    if ev.spec.orchestration.mode == "classic-swarm":
        return [
            r for r in ev.unexplained(swarm.SCHEDULE) if r.target == node or r.details.get("hung")
        ]
    if ev.spec.orchestration.mode != "swarm-mode":
        return []
    return [
        r
        for check in (swarm.NODES, swarm.REPLICAS, swarm.SERVICES)
        for r in ev.unexplained(check)
        if r.target == node and "quorum" not in r.details
    ]


def forwarding_off(ev: Evidence) -> list[Diagnosis]:
    """Engines that answer but believe IPv4 forwarding is off: one cause for all."""
    failed = [r for r in ev.unexplained(engines.API) if r.details.get("ipv4_forwarding") is False]
    if not failed:
        return []
    nodes = sorted(r.target for r in failed)
    return [
        Diagnosis(
            cause=f"{len(nodes)} engine(s) believe IPv4 forwarding is off",
            detail=f"{', '.join(nodes)}: {failed[0].hint}",
            nodes=nodes,
            checks=ev.explain(failed),
        )
    ]


def _kv_reachable_from(ev: Evidence, node: str) -> bool | None:
    for result in ev.ran(kv.REACHABLE):
        if result.source == node:
            return result.status == "pass"
    return None


def cut_off_nodes(ev: Evidence) -> list[Diagnosis]:
    api = ev.ran(underlay.API)
    found = []
    for node in ev.engine_nodes:
        mine = [r for r in api if node in r.nodes]
        if not mine or not all(r.status == "fail" for r in mine):
            continue
        others_ok = any(r.status == "pass" for r in api if node not in r.nodes)
        if not others_ok:
            # Two nodes (or everything failing): the one that also lost the KV store is the
            # one cut off; with no such evidence, name no one rather than guess.
            peers_reach_kv = all(_kv_reachable_from(ev, n) for n in ev.engine_nodes if n != node)
            if not (_kv_reachable_from(ev, node) is False and peers_reach_kv):
                continue
        kv_lost = _kv_reachable_from(ev, node) is False
        checks = ev.explain([*ev.involving(node), *_swarm_follows(ev, node)])
        found.append(
            Diagnosis(
                cause=f"{node} is cut off the lab network",
                detail=f"no other node reaches {node} and {node} reaches none of them"
                + (" nor the KV store" if kv_lost else "")
                + ": its link to the lab switch, the switch port or a firewall on it drops "
                "everything. Every failure that involves it follows from this.",
                nodes=[node],
                checks=checks,
            )
        )
    return found


def wrong_advertise(ev: Evidence) -> list[Diagnosis]:
    failed = [
        r
        for r in ev.unexplained(engines.ADVERTISE)
        if r.details.get("cluster_advertise") != r.details.get("expected_advertise")
    ]
    if not failed:
        return []
    nodes = [r.target for r in failed]
    explained = [*failed]
    for node in nodes:
        explained += ev.involving(
            node, (kv.REGISTERED, underlay.GOSSIP, underlay.MEMBERS, peers.PEERS)
        )
        explained += [r for r in ev.involving(node, DATA_CHECKS) if r.path == "cross-host"]
    # Classic swarm's scheduling probes cross the same paths.
    explained += unreached_schedules(ev, set(nodes))
    advertised = sorted({str(r.details.get("cluster_advertise")) for r in failed})
    checks = ev.explain(explained)
    return [
        Diagnosis(
            cause=f"{len(nodes)} engine(s) advertise an address their peers cannot reach",
            detail=f"{', '.join(nodes)} advertise {', '.join(advertised)}: "
            f"{failed[0].hint} Cross-host overlay traffic and gossip fail as a result.",
            nodes=nodes,
            checks=checks,
        )
    ]
