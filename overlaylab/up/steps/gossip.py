"""The `gossip` step: no engine this `up` started is left on a serf island, and no running
engine keeps wrong VXLAN peer entries (legacy overlay only)."""

from __future__ import annotations

from overlaylab.context import LabContext
from overlaylab.layout import probe_name
from overlaylab.overlay.gossip import serf_view
from overlaylab.overlay.peers import culprits, describe, survey
from overlaylab.providers.base import ENGINE_SERVICE
from overlaylab.spec.models import Node
from overlaylab.up.run import UpRun
from overlaylab.up.steps.engines import (
    STAGGER,
    gossiping,
    start_in_parallel,
    stop_engines,
)
from overlaylab.waiting import wait_until

ISLAND_TIMEOUT = 3.0  # for every engine's gossip view to hold every engine
REPAIR_ROUNDS = 3


def ensure_gossip(ctx: LabContext, run: UpRun) -> bool:
    """No engine this `up` started is left on a gossip island.

    Each engine's own gossip view is read: the engines outside the largest cluster are
    stopped and started again (staggered) up to REPAIR_ROUNDS times. What still cannot
    merge is named and left to verify. Engines that were running already joined (or
    not) long ago: underlay.members tells. Those among them whose overlay sandboxes
    lack or misplace the others' containers are restarted first (_repair_peer_entries):
    gossip learns peers once, and only a restart makes an engine learn them again."""
    if not gossiping(ctx):
        return False
    rebuilt = _repair_peer_entries(ctx, run)
    if not run.engines_started:
        return rebuilt
    nodes = ctx.spec.engine_nodes
    islanders = _islanders(ctx, nodes)
    repaired = False
    for _ in range(REPAIR_ROUNDS):
        if not islanders:
            break
        ctx.progress.item(
            "gossip",
            f"{', '.join(n.name for n in islanders)} outside the largest gossip cluster: "
            "restarting them",
        )
        stop_engines(ctx, islanders)
        for name, verb in start_in_parallel(ctx, islanders, STAGGER).items():
            ctx.progress.item(name, f"dockerd {verb} (rejoined the gossip cluster)")
        repaired = True
        islanders = _islanders(ctx, nodes)
    if islanders:
        # Not an error of `up`: a spec can make gossip impossible on purpose (an
        # advertised address peers cannot reach); underlay.members diagnoses it.
        ctx.progress.item(
            "gossip",
            f"{', '.join(n.name for n in islanders)} still outside the largest gossip "
            "cluster: `invoke verify` (underlay.*) tells why",
        )
    else:
        ctx.progress.item("gossip", f"all {len(nodes)} engines in one cluster")
    return repaired or rebuilt


def _gossip_views(ctx: LabContext, nodes: list[Node]) -> dict[str, set[str]]:
    node_at = {str(n.address): n.name for n in nodes}
    return {
        n.name: serf_view(ctx.node(n.name).service_log(ENGINE_SERVICE) or "", node_at)
        for n in nodes
    }


def _islanders(ctx: LabContext, nodes: list[Node]) -> list[Node]:
    """Engines outside the largest gossip cluster, once views settle.

    Every engine of one cluster lists the same members; `[]` once every view holds
    every engine. Serf spreads a join in well under a second here, so views still
    apart after ISLAND_TIMEOUT are islands, not gossip in flight. The largest cluster
    stays: an engine started again joins one registered engine picked at random, most
    likely one of the largest cluster, so restarting the fewest merges fastest."""
    everyone = {n.name for n in nodes}
    views: dict[str, set[str]] = {}

    def settled() -> bool:
        views.update(_gossip_views(ctx, nodes))
        return all(view == everyone for view in views.values())

    if wait_until(settled, ISLAND_TIMEOUT, interval=0.1):
        return []
    first = nodes[0].name
    main = max(views.values(), key=lambda view: (len(view), first in view))
    return [n for n in nodes if n.name not in main or views[n.name] != main]


def _repair_peer_entries(ctx: LabContext, run: UpRun) -> bool:
    """Engines that were running already, whose overlay sandbox lacks the VXLAN peer
    entries of the others' containers or keeps stale ones, are restarted: an engine
    learns its peers once, over gossip, and keeps what it learned (see
    overlaylab.overlay.peers). Engines this `up` started are still learning."""
    running = [
        n.name
        for n in ctx.spec.engine_nodes
        if n.name not in run.engines_started and ctx.node(n.name).engine_ping()
    ]
    if len(running) < 2:
        return False
    # The probes verify keeps on every node ask for what is missing (see ASK_SCRIPT):
    # an engine that would learn a peer on demand is not restarted for it.
    found = survey(ctx.spec, ctx.node, running, asker=lambda node, net: probe_name(net, node))
    restart = culprits(found)
    if not restart:
        return False
    for name in restart:
        own = [p for p in found if p.node == name and not p.ok]
        what = (
            "stale overlay peer entries"
            if any(p.stale or p.wrong for p in own)
            else (
                "no overlay peer entries"
                if own and all(len(p.missing) == len(p.remote) for p in own)
                else "overlay peer entries missing for its containers"
            )
        )
        said = "; ".join(describe(p) for p in own) or "the others lack its containers"
        ctx.progress.item(name, f"{what} ({said}): restarting its engine")
    nodes = [ctx.spec.node(name) for name in restart]
    stop_engines(ctx, nodes)
    for name, verb in start_in_parallel(ctx, nodes, STAGGER).items():
        ctx.progress.item(name, f"dockerd {verb} (rebuilds its overlay peer entries)")
    run.engines_started.update(restart)
    return True
