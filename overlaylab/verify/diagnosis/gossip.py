"""Serf gossip (the legacy overlay's control plane): an engine that does not
gossip, a blocked port, a split cluster."""

from __future__ import annotations

from overlaylab.verify.checks import connectivity, names, peers, swarm, underlay
from overlaylab.verify.diagnosis.evidence import (
    DATA_CHECKS,
    Diagnosis,
    Evidence,
    unreached_schedules,
)


def engine_not_gossiping(ev: Evidence) -> list[Diagnosis]:
    """Gossip refused (nothing listens on 7946) by a node whose engine answers: its serf
    never started. libnetwork starts it only once it has read the engine list from the
    store, and the engine's log says what stopped it."""
    failed = [r for r in ev.unexplained(underlay.GOSSIP) if r.details.get("refused")]
    found = []
    for node in sorted({r.target for r in failed}):
        mine = [r for r in failed if r.target == node]
        complaint = next((r.details["complaint"] for r in mine if r.details.get("complaint")), "")
        follows = [
            *mine,
            *(r for r in ev.unexplained(underlay.MEMBERS) if node in r.nodes),
            *(r for r in ev.unexplained(peers.PEERS) if node in r.nodes),
            *(
                r
                for c in (*DATA_CHECKS, connectivity.DNS, names.RESOLVE)
                for r in ev.unexplained(c)
                if node in r.nodes and r.path != "same-host"
            ),
            # Classic swarm's scheduling probes: new containers, unknown across it.
            *unreached_schedules(ev, {node}),
        ]
        found.append(
            Diagnosis(
                cause=f"{node}'s engine does not gossip"
                + (f": {complaint}" if complaint else " (nothing listens on 7946)"),
                detail=f"connections to {node}:7946 are refused, not dropped: nothing listens "
                f"there while its engine answers. libnetwork starts serf only once it has "
                "read the engine list from the KV store"
                + (
                    f", and {node}'s engine says why it could not: {complaint}. Every key "
                    "under the discovery path (docker/nodes) must be an engine's host:port; "
                    f"remove the others, then `invoke up` restarts {node}'s engine."
                    if complaint
                    else f"; see {node}'s engine log. `invoke up` restarts the engine."
                )
                + f" Until then no other node learns of {node}'s containers, nor it of theirs.",
                nodes=[node],
                checks=ev.explain(follows),
            )
        )
    return found


def gossip_blocked(ev: Evidence) -> list[Diagnosis]:
    failed = ev.unexplained(underlay.GOSSIP)
    blocked = {r.target for r in failed}
    # Given a few seconds, the others declare a node they cannot gossip with failed, and
    # it them, and they drop the overlay peer entries it gave them: the gossip
    # views and peer entries that lack only blocked nodes (or are a blocked node's) follow.
    views = [
        r
        for r in ev.unexplained(underlay.MEMBERS)
        if r.target in blocked or set(r.details.get("missing", [])) <= blocked
    ]
    lacking = [
        r
        for r in ev.unexplained(peers.PEERS)
        if r.details.get("missing")
        and (r.target in blocked or set(r.details.get("missing_nodes", [])) <= blocked)
    ]
    found = []
    for node in sorted(blocked):
        mine = [r for r in failed if r.target == node]
        mine += [r for r in views if node in (r.target, *r.details.get("missing", []))]
        lost = [r for r in lacking if node in (r.target, *r.details.get("missing_nodes", []))]
        mine += lost
        # A container classic swarm starts now stays unknown across the blocked port: the
        # scheduling probes that cannot reach the node, or that landed there, show it.
        mine += unreached_schedules(ev, {node})
        # The others declared it failed (their views lack it), and libnetwork drops a
        # failed node's peer entries. networks.peers may still pass, since an engine asks
        # for missing entries on demand. Seen on a real lab 15 s into the fault: every
        # path to and from the node failed while networks.peers passed.
        declared_failed = any(node in r.details.get("missing", []) for r in views)
        if lost or declared_failed:  # without those entries, its paths fail too
            mine += [
                r
                for c in (*DATA_CHECKS, connectivity.DNS, names.RESOLVE)
                for r in ev.unexplained(c)
                if node in (r.source, r.target) and r.path != "same-host"
            ]
        found.append(
            Diagnosis(
                cause=f"serf gossip to {node} is blocked (tcp+udp 7946)",
                detail=f"the other nodes cannot open {node}'s gossip port while its engine API "
                "answers: a firewall drops 7946. Containers already known keep working; "
                f"containers started on {node} from now on stay unknown to the others.",
                nodes=[node],
                checks=ev.explain(mine),
            )
        )
    return found


def gossip_partition(ev: Evidence) -> list[Diagnosis]:
    failed = ev.unexplained(underlay.MEMBERS)
    if not failed:
        return []
    views = {r.target: frozenset(r.details.get("seen", [])) for r in ev.ran(underlay.MEMBERS)}
    islands = sorted({view for view in views.values() if view}, key=lambda v: (-len(v), sorted(v)))
    island_of = {node: view for node, view in views.items()}
    across = [
        r
        for c in (*DATA_CHECKS, connectivity.DNS, names.RESOLVE)
        for r in ev.unexplained(c)
        if r.source and r.target and island_of.get(r.source) != island_of.get(r.target)
    ]
    # Engines on other islands never exchange peer entries either.
    across += [
        r
        for r in ev.unexplained(peers.PEERS)
        if any(
            island_of.get(n) != island_of.get(r.target) for n in r.details.get("missing_nodes", [])
        )
    ]
    # Classic swarm's scheduling probe is a new container: one landed on one island is
    # never announced to the engines of another.
    across += [
        r
        for r in ev.unexplained(swarm.SCHEDULE)
        if any(island_of.get(n) != island_of.get(r.target) for n in r.details.get("unreached", []))
    ]
    described = " | ".join("{" + ", ".join(sorted(i)) + "}" for i in islands)
    return [
        Diagnosis(
            cause=f"the gossip cluster is split into {len(islands)} islands",
            detail=f"{described}: containers on different islands never learn of each other, so "
            f"overlay traffic between them fails although every port is open. "
            f"{failed[0].hint}",
            nodes=sorted(r.target for r in failed),
            checks=ev.explain([*failed, *across]),
        )
    ]
