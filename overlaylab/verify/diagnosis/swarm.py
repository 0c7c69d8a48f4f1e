"""Swarm mode and classic swarm: quorum, gossip (networkdb), IPVS, the master's
scheduling."""

from __future__ import annotations

from overlaylab.verify.checks import connectivity, names, swarm, underlay
from overlaylab.verify.diagnosis.evidence import DATA_CHECKS, Diagnosis, Evidence


def swarm_quorum_lost(ev: Evidence) -> list[Diagnosis]:
    """Fewer than half of the swarm's managers up: no leader, so nothing about the swarm
    can be listed or changed. The managers that are down are the cause, not the one that
    counted them, and what no manager could list follows from it."""
    failed = [r for r in ev.unexplained(swarm.NODES) if r.details.get("quorum") is False]
    if not failed:
        return []
    quorum = failed[0]
    lost = list(quorum.details.get("lost", []))
    total = len(quorum.details.get("managers", []))
    follows = [r for r in ev.unexplained(swarm.NODES) if r.target in lost]
    untested = [
        r
        for r in ev.results
        if r.status == "error"
        and r.details.get("untested_because") == swarm.NODES.id
        and id(r) not in ev.explained
    ]
    up = total - len(lost)
    leaderless = quorum.details.get("leader") is None
    return [
        Diagnosis(
            cause=f"no leader: {up} of {total} managers up"
            if leaderless
            else f"no manager quorum: {up} of {total} managers reachable",
            detail=f"{quorum.message}. {quorum.hint}",
            nodes=lost,
            checks=ev.explain([*failed, *follows, *untested]),
        )
    ]


def swarm_gossip_blocked(ev: Evidence) -> list[Diagnosis]:
    """Swarm mode: peers that cannot open a node's gossip port (networkdb) soon declare it
    failed and drop what it told them: its containers' names, then their overlay peer
    entries. Every lookup of, and path to, that node's containers follows from it."""
    if ev.spec.orchestration.mode != "swarm-mode":
        return []
    failed = ev.unexplained(underlay.GOSSIP)
    follows = (*DATA_CHECKS, connectivity.DNS, names.RESOLVE, swarm.SERVICES)
    found = []
    for node in sorted({r.target for r in failed}):
        mine = [r for r in failed if r.target == node]
        mine += [
            r
            for c in follows
            for r in ev.unexplained(c)
            if node in (r.source, r.target) and r.path != "same-host"
        ]
        found.append(
            Diagnosis(
                cause=f"swarm gossip to {node} is blocked (tcp+udp 7946)",
                detail=f"the other nodes cannot open {node}'s gossip port (the swarm's "
                "networkdb) while its engine API answers: a firewall drops 7946. They "
                f"declare {node} failed and drop what it told them: the names of its "
                "containers and tasks first, then their overlay peer entries, so lookups "
                f"of them and then connections to them fail. Open tcp+udp 7946 on {node}.",
                nodes=[node],
                checks=ev.explain(mine),
            )
        )
    return found


def no_ipvs(ev: Evidence) -> list[Diagnosis]:
    """Swarm VIPs that do not answer on nodes whose kernel has no IPVS: one cause."""
    failed = [
        r
        for r in ev.unexplained(swarm.SERVICES)
        if "vip" in r.details and r.details.get("ipvs") is False
    ]
    if not failed:
        return []
    return [
        Diagnosis(
            cause=f"the kernel has no IPVS: {len(failed)} swarm VIP path(s) cannot work",
            detail=failed[0].hint,
            nodes=sorted({r.source for r in failed}),
            checks=ev.explain(failed),
        )
    ]


def placed_but_unreachable(ev: Evidence) -> list[Diagnosis]:
    """Classic swarm probes that landed where the master was told to put them but cannot
    reach some nodes: the master scheduled right; the overlay to those nodes fails."""
    failed = [r for r in ev.unexplained(swarm.SCHEDULE) if r.details.get("unreached")]
    if not failed:
        return []
    # A probe on the broken node reaches no one, and no one reaches it: name that node.
    common = set.intersection(*({r.target, *r.details["unreached"]} for r in failed))
    nodes = sorted(common or {n for r in failed for n in r.details["unreached"]})
    return [
        Diagnosis(
            cause=f"containers the swarm master placed right cannot reach {', '.join(nodes)}",
            detail=f"{'; '.join(f'{r.subject}: {r.message}' for r in failed[:3])}. Each landed "
            f"where its constraint said: what fails is the overlay between it and "
            f"{', '.join(nodes)} (see networks.peers and connectivity.* for those nodes).",
            nodes=nodes,
            checks=ev.explain(failed),
        )
    ]
