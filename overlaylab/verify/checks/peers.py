"""networks.peers: every engine's overlay sandbox sends each container of the other
engines to that container's engine (see overlaylab.overlay.peers)."""

from __future__ import annotations

from overlaylab.overlay.peers import Peers, describe, survey
from overlaylab.verify.check import Check
from overlaylab.verify.context import VerifyContext
from overlaylab.verify.probes import probe_name
from overlaylab.verify.result import CheckResult

HINT_MISSING = (
    "libnetwork learns where other engines' containers are over serf, once, when each "
    "joins: an engine whose gossip started late (or was cut off) never hears of the "
    "containers already running, and sends their traffic nowhere. Restarting the engine "
    "makes it learn them again (`invoke up` does)"
)
HINT_STALE = (
    "an entry left by a container that is gone: libnetwork gives the next container its "
    "address and MAC, so that container is unreachable from here. Restarting the engine "
    "rebuilds its sandbox from what runs now (`invoke up` does)"
)


def _result(peers: Peers) -> CheckResult:
    subject = f"{peers.node} on {peers.network}"
    if peers.unread:
        return CheckResult(
            check="networks.peers",
            subject=subject,
            status="error",
            message=f"its overlay sandbox could not be read: {peers.unread}",
            hint="what it holds is untested, not healthy",
            nodes=[peers.node],
            target=peers.node,
            network=peers.network,
            command=peers.command,
        )
    wrong = sorted({m.address for m, _ in peers.wrong})
    # The nodes whose containers this sandbox gets wrong are involved too.
    elsewhere = sorted({m.node for m in peers.missing} | {m.node for m, _ in peers.wrong})
    return CheckResult(
        check="networks.peers",
        subject=subject,
        status="pass" if peers.ok else "fail",
        message=describe(peers)
        or f"sends each of the {len(peers.remote)} container(s) of other engines to its engine",
        hint="" if peers.ok else (HINT_STALE if peers.stale or peers.wrong else HINT_MISSING),
        nodes=sorted({peers.node, *elsewhere}),
        target=peers.node,
        network=peers.network,
        command=peers.command,
        details={
            "remote": len(peers.remote),
            "missing": [m.address for m in peers.missing],
            "missing_nodes": sorted({m.node for m in peers.missing}),
            "wrong": wrong,
            "wrong_nodes": sorted({m.node for m, _ in peers.wrong}),
            "stale": [address or mac for mac, address in peers.stale],
            "vtep": peers.own_vtep,
        },
    )


def peer_entries(vctx: VerifyContext) -> list[CheckResult]:
    spec = vctx.lab.spec
    if not spec.engine.uses_cluster_store:
        return [
            CheckResult.skip(
                "networks.peers",
                "overlay sandboxes",
                "no legacy overlay (cluster-store): swarm mode keeps its peers in its own "
                "network database",
            )
        ]
    up, results = [], []
    for node in spec.engine_nodes:
        if vctx.lab.node(node.name).engine_ping(timeout=2):
            up.append(node.name)
        else:
            results.append(
                CheckResult.untested(
                    "networks.peers", node.name, "its engine does not answer", "engines.api"
                )
            )
    # A missing entry counts once the node's own probe asked for it (see ASK_SCRIPT).
    found = survey(spec, vctx.lab.node, up, asker=lambda node, net: probe_name(net, node))
    return results + [_result(p) for p in found]


PEERS = Check(
    "networks.peers",
    "networks",
    "every engine's overlay sandbox sends each container of the others to its engine",
    peer_entries,
    reads_probes=True,
)

CHECKS = [PEERS]
