"""The overlay's data path: peer entries an engine lacks or holds stale, a protocol
filtered inside VXLAN, VXLAN itself blocked, an MTU too small."""

from __future__ import annotations

from overlaylab.verify.checks import connectivity, peers, swarm
from overlaylab.verify.diagnosis.evidence import (
    DATA_CHECKS,
    PROTOCOLS,
    Diagnosis,
    Evidence,
    unreached_schedules,
)
from overlaylab.verify.result import CheckResult


def _between(ev: Evidence, node: str, others: set[str], network: str) -> list[CheckResult]:
    """Cross-host data failures on `network` between `node` and any of `others`."""
    return [
        r
        for c in DATA_CHECKS
        for r in ev.unexplained(c)
        if r.path == "cross-host"
        and r.network == network
        and {r.source, r.target} & {node}
        and {r.source, r.target} - {node} <= others
    ]


def _schedule_failures(ev: Evidence, node: str) -> list[CheckResult]:
    """swarm.schedule runs whose probe container could not reach (or be reached by)
    `node`'s probes."""
    return [r for r in ev.unexplained(swarm.SCHEDULE) if node in r.details.get("unreached", [])]


def stale_peer_entries(ev: Evidence) -> list[Diagnosis]:
    """An engine that sends other containers' (or free) addresses to itself or to the
    wrong engine: one cause per engine, with what those entries break."""
    failed = [
        r for r in ev.unexplained(peers.PEERS) if r.details.get("stale") or r.details.get("wrong")
    ]
    found = []
    for node in sorted({r.target for r in failed} | _stale_in_schedules(ev)):
        mine = [r for r in failed if r.target == node]
        follows = [*mine, *_schedule_failures(ev, node)]
        for r in mine:
            follows += _between(ev, node, set(r.details.get("wrong_nodes", [])), r.network)
        # What showed it: its own peer entries, else a scheduling probe that found its
        # sandbox sending elsewhere (perhaps already filed under another node's entries).
        shown = [
            *mine,
            *follows,
            *(r for r in ev.failed(swarm.SCHEDULE) if node in r.details.get("stale_on", [])),
        ]
        evidence = shown[0].message
        found.append(
            Diagnosis(
                cause=f"stale overlay peer entries on {node} (recycled addresses); "
                f"restart {node}'s engine",
                detail=f"{evidence}. libnetwork gives a new container the address (and MAC) of "
                f"one that is gone; {node} still sends that MAC where the old one was, so the "
                f"new container cannot reach {node}'s containers, nor they it, although it "
                f"landed where it was scheduled. Restarting {node}'s engine rebuilds its overlay "
                "sandbox from what runs now (`invoke up` does).",
                nodes=[node],
                checks=ev.explain(follows),
            )
        )
    return found


def _stale_in_schedules(ev: Evidence) -> set[str]:
    """Nodes whose overlay sandbox swarm.schedule found sending its container elsewhere."""
    return {n for r in ev.unexplained(swarm.SCHEDULE) for n in r.details.get("stale_on", [])}


def _by_culprit(failed: list[CheckResult]) -> dict[str, list[CheckResult]]:
    """networks.peers gaps filed under the engine they follow from (as `up` decides
    whom to restart, overlaylab.overlay.peers.culprits): an engine whose sandboxes hold
    none of the others' containers joined late, and the others' gaps for its containers
    are the same event; else the one engine every gap involves; else each its own."""
    targets = sorted({r.target for r in failed})
    empty = [
        n
        for n in targets
        if all(
            len(r.details["missing"]) == r.details.get("remote") for r in failed if r.target == n
        )
    ]
    if empty:
        groups = {n: [r for r in failed if r.target == n] for n in empty}
        for r in failed:
            owners = [n for n in empty if n in r.details.get("missing_nodes", [])]
            if r.target not in empty and owners and set(r.details["missing_nodes"]) <= set(empty):
                groups[owners[0]].append(r)
        grouped = {id(r) for rs in groups.values() for r in rs}
        for r in failed:
            if id(r) not in grouped:
                groups.setdefault(r.target, []).append(r)
        return groups
    common = set.intersection(*({r.target, *r.details.get("missing_nodes", [])} for r in failed))
    if len(common) == 1:
        return {common.pop(): failed}
    return {n: [r for r in failed if r.target == n] for n in targets}


def missing_peer_entries(ev: Evidence) -> list[Diagnosis]:
    """Engines whose overlay sandbox lacks entries for other engines' containers. When
    every missing entry involves one node (its sandbox is empty, and the others only lack
    its containers), that node is the one cause."""
    failed = [r for r in ev.unexplained(peers.PEERS) if r.details.get("missing")]
    if not failed:
        return []
    groups = _by_culprit(failed)
    found = []
    for node, results in groups.items():
        own = [r for r in results if r.target == node]
        empty = bool(own) and all(len(r.details["missing"]) == r.details.get("remote") for r in own)
        others = {n for r in results for n in r.details.get("missing_nodes", [])} - {node}
        follows = [*results, *_schedule_failures(ev, node)]
        for r in results:
            follows += _between(ev, node, others | {r.target}, r.network)
        found.append(
            Diagnosis(
                cause=f"no overlay peer entries on {node}"
                if empty
                else f"overlay peer entries are missing for {node}",
                detail=f"{'; '.join(f'{r.subject}: {r.message}' for r in results[:3])}. The "
                "data path itself is open (gossip and VXLAN ports answer), but an engine sends "
                "overlay packets only to containers it has an entry for: "
                f"{results[0].hint}.",
                nodes=[node],
                checks=ev.explain(follows),
            )
        )
    return found


def _common_nodes(ev: Evidence, results: list[CheckResult]) -> list[str]:
    common = set(ev.engine_nodes)
    for r in results:
        common &= set(r.nodes)
    return sorted(common)


def _two_ends(ev: Evidence, named: list[str]) -> str:
    """What the detail adds when the lab's two engines are both named: the one path
    between hosts has two ends, and every failing test touches both."""
    if len(ev.engine_nodes) == 2 and sorted(named) == sorted(ev.engine_nodes):
        return (
            " With two engines there is one path between hosts, and its two ends look the "
            "same from here: look for the drop on each."
        )
    return ""


def _protocol(r: CheckResult) -> str:
    """The protocol a data result tested ('' for a full-size DF ping whose small ping
    crossed: that one is about size, not protocol)."""
    if r.check == connectivity.MTU_DF.id:
        return "icmp" if r.details.get("small_lost") else ""
    return PROTOCOLS.get(r.check, "")


def _passing(ev: Evidence, source: str, target: str, network: str) -> set[str]:
    """The protocols that crossed from source to target on network."""
    return {
        proto
        for check, proto in PROTOCOLS.items()
        for r in ev.results
        if r.check == check
        and r.status == "pass"
        and (r.source, r.target, r.network) == (source, target, network)
    }


def protocol_filtered(ev: Evidence) -> list[Diagnosis]:
    """Some protocols fail on paths where others pass: VXLAN carries those paths, so a
    filter matches the inner packets. Named per overlay, with where it sits. Paths on
    which nothing crosses are left to the VXLAN rule."""
    found = []
    failed = [r for c in DATA_CHECKS for r in ev.unexplained(c) if _protocol(r)]
    for network in sorted({r.network for r in failed if r.path == "cross-host"}):
        passing = {
            (r.source, r.target): _passing(ev, r.source, r.target, network)
            for r in failed
            if r.network == network and r.path == "cross-host"
        }
        cross = [
            r
            for r in failed
            if r.network == network and r.path == "cross-host" and passing[(r.source, r.target)]
        ]
        if not cross:
            continue
        filtered = sorted({_protocol(r) for r in cross})
        crossing = sorted(set.intersection(*(passing[(r.source, r.target)] for r in cross)))
        common = set.intersection(*({r.source, r.target} for r in cross))
        same_host = [
            r
            for r in failed
            if r.network == network
            and r.path == "same-host"
            and r.source in common
            and _protocol(r) in filtered
        ]
        inside = sorted({r.source for r in same_host})
        at = inside or sorted(common)
        where = f"at {', '.join(at)}" if at else "between the nodes"
        names = " and ".join(filtered)
        found.append(
            Diagnosis(
                cause=f"{names} {'is' if len(filtered) == 1 else 'are'} filtered on {network} "
                f"{where}: {', '.join(crossing) or 'other protocols'} cross, so VXLAN works",
                detail=f"on the paths where {names} {'fails' if len(filtered) == 1 else 'fail'}, "
                f"{', '.join(crossing)} pass: VXLAN "
                f"(udp/4789) carries them, so what drops {names} matches the packets inside it. "
                + (
                    f"same-host paths on {', '.join(inside)} fail too, so the filter is inside "
                    f"{', '.join(inside)}: its overlay sandbox for {network} (an ebtables rule, "
                    "or iptables with br_netfilter, on its bridge) or the containers' own "
                    "firewalls."
                    if inside
                    else "same-host paths pass, so look where overlay packets leave or enter "
                    f"the sandbox of {network} {where}: its bridge (ebtables) or the "
                    "containers' own firewalls."
                ),
                nodes=at,
                # Classic swarm's scheduling probe pings: it fails where ICMP is filtered.
                checks=ev.explain(
                    [
                        *cross,
                        *same_host,
                        *(unreached_schedules(ev, set(at)) if "icmp" in filtered else []),
                    ]
                ),
            )
        )
    return found


def data_plane_blocked(ev: Evidence) -> list[Diagnosis]:
    failed = [r for c in DATA_CHECKS for r in ev.unexplained(c) if r.path == "cross-host"]
    if not failed:
        return []
    # Full-size packets lost where small ones crossed (in the same test) are the MTU's
    # evidence; everything else that fails to cross is VXLAN's. Both can hold at once
    # (a small link on one node, udp/4789 dropped on another): each is named.
    too_big = [
        r
        for r in failed
        if r.check == connectivity.MTU_DF.id and r.details.get("small_packets_cross")
    ]
    rest = [r for r in failed if not any(r is t for t in too_big)]
    if all(r.check == connectivity.MTU_DF.id for r in rest):
        too_big, rest = failed, []  # no data check fails: every lost DF packet is the MTU
    found = []
    if too_big:
        found.append(
            Diagnosis(
                cause="full-size packets do not cross the overlay (MTU)",
                detail="small packets pass but full-size ones with don't-fragment are lost: "
                + too_big[0].hint
                + _two_ends(ev, _common_nodes(ev, too_big)),
                nodes=_common_nodes(ev, too_big),
                checks=ev.explain(too_big),
            )
        )
    if rest:
        common = _common_nodes(ev, rest)
        where = f"to and from {', '.join(common)}" if common else "between the nodes"
        found.append(
            Diagnosis(
                cause=f"overlay data (VXLAN, udp/4789) is blocked {where}",
                detail="the control plane works (engines, "
                + ("KV store, " if ev.spec.kv is not None else "")
                + "gossip and API ports answer) but overlay packets do not cross: udp/4789 "
                "is dropped on the way (a firewall on the node, or between the nodes). Names "
                "still resolve; connections fail." + _two_ends(ev, common),
                nodes=common,
                # Containers classic swarm placed cannot cross those paths either.
                checks=ev.explain(
                    [*rest, *unreached_schedules(ev, set(common) or _involved(rest))]
                ),
            )
        )
    return found


def _involved(results: list[CheckResult]) -> set[str]:
    return {n for r in results for n in (r.source, r.target) if n}
