"""From many failing results to the few causes behind them.

One cut cable fails dozens of pairs; a reader wants one sentence. Each rule looks for
the signature of one known cause in the results (which checks fail, for which nodes,
while which others pass) and explains it. Rules run from the bottom of the stack up,
and a failure a rule has explained is not explained again. Only results with status
`fail` are evidence: an `error` means a check itself crashed, which says nothing
about the network, so errors are reported on their own, unless they are results
left untested because of a failure a rule explains (a dead engine's probes).

Rules read the results' structured fields (source, target, network, path), never
the human `subject`, so rewording a check cannot change a diagnosis.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from overlaylab.spec.models import ClusterSpec
from overlaylab.verify.result import CheckResult

DATA_CHECKS = ("connectivity.icmp", "connectivity.tcp", "connectivity.udp", "mtu.df")
# Everything a node being unreachable can break, for the rules that explain a node away.
NODE_DEPENDENT = (
    *DATA_CHECKS,
    "underlay.api",
    "underlay.gossip",
    "underlay.members",
    "kv.reachable",
    "kv.registered",
    "ports.published",
    "connectivity.dns",
    "names.resolve",
    "networks.present",
    "networks.peers",
)
PROTOCOLS = {"connectivity.icmp": "icmp", "connectivity.tcp": "tcp", "connectivity.udp": "udp"}


@dataclass
class Diagnosis:
    cause: str
    detail: str
    nodes: list[str] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)
    # Which rule named it (a rule function's name, or the check id of a one-cause-per-check
    # rule): what `invoke fault` expects of a fault, matched without reading the wording.
    rule: str = ""

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass
class Evidence:
    spec: ClusterSpec
    results: list[CheckResult]
    explained: set[int] = field(default_factory=set)  # ids of results already explained

    def failed(self, check: str) -> list[CheckResult]:
        return [r for r in self.results if r.check == check and r.status == "fail"]

    def ran(self, check: str) -> list[CheckResult]:
        return [r for r in self.results if r.check == check and r.status in ("pass", "fail")]

    def unexplained(self, check: str) -> list[CheckResult]:
        return [r for r in self.failed(check) if id(r) not in self.explained]

    def explain(self, results: list[CheckResult]) -> list[str]:
        """Mark results explained; return the ids of the checks they belong to."""
        self.explained |= {id(r) for r in results}
        return sorted({r.check for r in results})

    def involving(self, node: str, checks: tuple[str, ...] = NODE_DEPENDENT) -> list[CheckResult]:
        return [r for c in checks for r in self.failed(c) if node in r.nodes]

    def untested_because(self, node: str, check: str) -> list[CheckResult]:
        """Results on `node` that could not be tested because `check` failed there."""
        return [
            r
            for r in self.results
            if r.status == "error"
            and r.details.get("untested_because") == check
            and node in r.nodes
        ]

    @property
    def engine_nodes(self) -> list[str]:
        return [n.name for n in self.spec.engine_nodes]


def dead_engines(ev: Evidence) -> list[Diagnosis]:
    found = []
    for result in ev.failed("engines.api"):
        node = result.target
        if node not in ev.engine_nodes or result.details.get("ipv4_forwarding") is False:
            continue  # an engine that answers is not down (forwarding_off explains it)
        follows: tuple[str, ...] = (
            "underlay.api",
            "underlay.gossip",
            "underlay.members",
            "probes.running",
            "kv.registered",  # a dead engine's registration expires with its TTL
        )
        died_now = bool(result.details.get("died_during_verify"))
        if died_now:
            # Its probes ran until it died: what they measured through it failed with it
            # (the store is reached from the node itself, which stays up).
            follows += tuple(c for c in NODE_DEPENDENT if c not in (*follows, "kv.reachable"))
        explained = [
            result,
            *ev.involving(node, follows),
            *ev.untested_because(node, "engines.api"),
            *ev.untested_because(node, "probes.running"),
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
    """Swarm mode: what a node lost to the swarm (its engine dead, or the node cut off)
    does there. The managers mark the node down, a service placed there runs no task,
    and its name answers nothing. A lost quorum is not among them: it is a finding of
    its own (swarm_quorum_lost)."""
    if ev.spec.orchestration.mode != "swarm-mode":
        return []
    return [
        r
        for check in ("swarm.nodes", "swarm.replicas", "swarm.services")
        for r in ev.unexplained(check)
        if r.target == node and "quorum" not in r.details
    ]


def forwarding_off(ev: Evidence) -> list[Diagnosis]:
    """Engines that answer but believe IPv4 forwarding is off: one cause for all."""
    failed = [r for r in ev.unexplained("engines.api") if r.details.get("ipv4_forwarding") is False]
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
    for result in ev.ran("kv.reachable"):
        if result.source == node:
            return result.status == "pass"
    return None


def cut_off_nodes(ev: Evidence) -> list[Diagnosis]:
    api = ev.ran("underlay.api")
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


def kv_down(ev: Evidence) -> list[Diagnosis]:
    ran = ev.ran("kv.reachable")
    failed = ev.unexplained("kv.reachable")
    if not ran or len(failed) != len(ran) or ev.spec.kv is None:
        return []
    kv = ev.spec.kv
    checks = ev.explain([*failed, *ev.failed("kv.registered"), *ev.failed("networks.present")])
    if all(r.details.get("connected") for r in failed):
        # Every node opens its port and none gets an answer: the store itself is stuck.
        return [
            Diagnosis(
                cause=f"the KV store ({kv.backend} on {kv.node}) does not answer",
                detail=f"{failed[0].message}. It accepts connections but answers no request "
                "(the process is stopped, hung or overloaded): engines cannot register, and "
                "cannot list or create global (overlay) networks. Containers already running "
                "keep talking over the overlay; new ones cannot join it. `invoke up` stops the "
                "store and starts it again.",
                nodes=[kv.node],
                checks=checks,
            )
        ]
    return [
        Diagnosis(
            cause=f"the KV store ({kv.backend} on {kv.node}) is down or unreachable",
            detail="no engine reaches it: engines cannot register, and cannot list or create "
            "global (overlay) networks. Containers already running keep talking over the "
            "overlay; new ones cannot join it. `invoke up` restarts the store.",
            nodes=[kv.node],
            checks=checks,
        )
    ]


def kv_unreachable_from(ev: Evidence) -> list[Diagnosis]:
    """The store answers some engine nodes and not others: it runs, so what lies between
    it and those nodes (a firewall on its port, a route) cuts them from it."""
    ran = ev.ran("kv.reachable")
    failed = ev.unexplained("kv.reachable")
    if not failed or len(failed) == len(ran) or ev.spec.kv is None:
        return []
    kv = ev.spec.kv
    found = []
    for result in failed:
        node = result.source
        # Its engine lists global networks from the store: they are missing there.
        follows = [
            r
            for check in ("kv.registered", "networks.present")
            for r in ev.unexplained(check)
            if r.nodes == [node] or (check == "kv.registered" and node in r.nodes)
        ]
        found.append(
            Diagnosis(
                cause=f"{node} cannot reach the KV store ({kv.backend} on {kv.node})",
                detail=f"{result.message}, while the other engine nodes reach it: the store "
                f"runs, and something between {node} and {kv.node}:{kv.client_port} (a "
                f"firewall, a route) drops {node}'s requests. {node}'s engine cannot "
                "register (its registration expires), nor list or create overlays (they "
                "are missing there); its containers already on them keep working.",
                nodes=[node],
                checks=ev.explain([result, *follows]),
            )
        )
    return found


def wrong_store(ev: Evidence) -> list[Diagnosis]:
    """Engines running with another cluster-store than the spec's are in another cluster:
    the lab's overlays, and every container on them, are missing there."""
    wanted = ev.spec.cluster_store_url()
    failed = [
        r
        for r in ev.unexplained("engines.advertise")
        if "cluster_store" in r.details and r.details["cluster_store"] != wanted
    ]
    if not failed:
        return []
    nodes = sorted(r.target for r in failed)
    follows = (*NODE_DEPENDENT, "probes.running", "stacks.running")
    explained = [*failed, *(r for node in nodes for r in ev.involving(node, follows))]
    stores = sorted({str(r.details["cluster_store"]) for r in failed})
    return [
        Diagnosis(
            cause=f"{len(nodes)} engine(s) run with another cluster store than the spec's",
            detail=f"{', '.join(nodes)} use {', '.join(stores)}, the spec says {wanted}: the "
            "lab's overlays live in the spec's store, so they do not exist on those engines, "
            "and no container there can join them. `invoke up` rewrites daemon.json and "
            "restarts the engines.",
            nodes=nodes,
            checks=ev.explain(explained),
        )
    ]


def wrong_advertise(ev: Evidence) -> list[Diagnosis]:
    failed = [
        r
        for r in ev.unexplained("engines.advertise")
        if r.details.get("cluster_advertise") != r.details.get("expected_advertise")
    ]
    if not failed:
        return []
    nodes = [r.target for r in failed]
    explained = [*failed]
    for node in nodes:
        explained += ev.involving(
            node, ("kv.registered", "underlay.gossip", "underlay.members", "networks.peers")
        )
        explained += [r for r in ev.involving(node, DATA_CHECKS) if r.path == "cross-host"]
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


def engine_not_gossiping(ev: Evidence) -> list[Diagnosis]:
    """Gossip refused (nothing listens on 7946) by a node whose engine answers: its serf
    never started. libnetwork starts it only once it has read the engine list from the
    store, and the engine's log says what stopped it."""
    failed = [r for r in ev.unexplained("underlay.gossip") if r.details.get("refused")]
    found = []
    for node in sorted({r.target for r in failed}):
        mine = [r for r in failed if r.target == node]
        complaint = next((r.details["complaint"] for r in mine if r.details.get("complaint")), "")
        follows = [
            *mine,
            *(r for r in ev.unexplained("underlay.members") if node in r.nodes),
            *(r for r in ev.unexplained("networks.peers") if node in r.nodes),
            *(
                r
                for c in (*DATA_CHECKS, "connectivity.dns", "names.resolve")
                for r in ev.unexplained(c)
                if node in r.nodes and r.path != "same-host"
            ),
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
    failed = ev.unexplained("underlay.gossip")
    blocked = {r.target for r in failed}
    # Given a few seconds, the others declare a node they cannot gossip with failed, and
    # it them, and they drop the overlay peer entries it gave them: the gossip
    # views and peer entries that lack only blocked nodes (or are a blocked node's) follow.
    views = [
        r
        for r in ev.unexplained("underlay.members")
        if r.target in blocked or set(r.details.get("missing", [])) <= blocked
    ]
    peers = [
        r
        for r in ev.unexplained("networks.peers")
        if r.details.get("missing")
        and (r.target in blocked or set(r.details.get("missing_nodes", [])) <= blocked)
    ]
    found = []
    for node in sorted(blocked):
        mine = [r for r in failed if r.target == node]
        mine += [r for r in views if node in (r.target, *r.details.get("missing", []))]
        lost = [r for r in peers if node in (r.target, *r.details.get("missing_nodes", []))]
        mine += lost
        if lost:  # without those entries, paths between it and the others fail too
            mine += [
                r
                for c in (*DATA_CHECKS, "connectivity.dns", "names.resolve")
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


def swarm_gossip_blocked(ev: Evidence) -> list[Diagnosis]:
    """Swarm mode: peers that cannot open a node's gossip port (networkdb) soon declare it
    failed and drop what it told them: its containers' names, then their overlay peer
    entries. Every lookup of, and path to, that node's containers follows from it."""
    if ev.spec.orchestration.mode != "swarm-mode":
        return []
    failed = ev.unexplained("underlay.gossip")
    follows = (*DATA_CHECKS, "connectivity.dns", "names.resolve", "swarm.services")
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


def swarm_quorum_lost(ev: Evidence) -> list[Diagnosis]:
    """Fewer than half of the swarm's managers up: no leader, so nothing about the swarm
    can be listed or changed. The managers that are down are the cause, not the one that
    counted them, and what no manager could list follows from it."""
    failed = [r for r in ev.unexplained("swarm.nodes") if r.details.get("quorum") is False]
    if not failed:
        return []
    quorum = failed[0]
    lost = list(quorum.details.get("lost", []))
    total = len(quorum.details.get("managers", []))
    follows = [r for r in ev.unexplained("swarm.nodes") if r.target in lost]
    untested = [
        r
        for r in ev.results
        if r.status == "error"
        and r.details.get("untested_because") == "swarm.nodes"
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


def gossip_partition(ev: Evidence) -> list[Diagnosis]:
    failed = ev.unexplained("underlay.members")
    if not failed:
        return []
    views = {r.target: frozenset(r.details.get("seen", [])) for r in ev.ran("underlay.members")}
    islands = sorted({view for view in views.values() if view}, key=lambda v: (-len(v), sorted(v)))
    island_of = {node: view for node, view in views.items()}
    across = [
        r
        for c in (*DATA_CHECKS, "connectivity.dns", "names.resolve")
        for r in ev.unexplained(c)
        if r.source and r.target and island_of.get(r.source) != island_of.get(r.target)
    ]
    # Engines on other islands never exchange peer entries either.
    across += [
        r
        for r in ev.unexplained("networks.peers")
        if any(
            island_of.get(n) != island_of.get(r.target) for n in r.details.get("missing_nodes", [])
        )
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
    return [r for r in ev.unexplained("swarm.schedule") if node in r.details.get("unreached", [])]


def stale_peer_entries(ev: Evidence) -> list[Diagnosis]:
    """An engine that sends other containers' (or free) addresses to itself or to the
    wrong engine: one cause per engine, with what those entries break."""
    failed = [
        r
        for r in ev.unexplained("networks.peers")
        if r.details.get("stale") or r.details.get("wrong")
    ]
    found = []
    for node in sorted({r.target for r in failed} | _stale_in_schedules(ev)):
        mine = [r for r in failed if r.target == node]
        follows = [*mine, *_schedule_failures(ev, node)]
        for r in mine:
            follows += _between(ev, node, set(r.details.get("wrong_nodes", [])), r.network)
        evidence = mine[0].message if mine else _schedule_failures(ev, node)[0].message
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
    return {n for r in ev.unexplained("swarm.schedule") for n in r.details.get("stale_on", [])}


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
    failed = [r for r in ev.unexplained("networks.peers") if r.details.get("missing")]
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


def probe_names_wrong(ev: Evidence) -> list[Diagnosis]:
    """A probe name that resolves wrongly (a stale record) also fails TCP, which connects
    by name, while everything by address passes: that is DNS, not the data plane."""
    failed = ev.unexplained("connectivity.dns")
    if not failed:
        return []
    pairs = {(r.source, r.target, r.network, r.path) for r in failed}
    by_name = [
        r
        for r in ev.unexplained("connectivity.tcp")
        if (r.source, r.target, r.network, r.path) in pairs
    ]
    stale = [r for r in failed if r.details.get("resolved")]
    detail = (
        f"{'; '.join(r.subject for r in failed[:3])}: {failed[0].message}. "
        + (
            "A name that resolves to another address is a stale record of a removed "
            "container; connections by name go there. "
            if stale
            else ""
        )
        + failed[0].hint
    )
    return [
        Diagnosis(
            cause=f"{len(failed)} probe name lookups fail",
            detail=detail,
            nodes=blamed_nodes(failed),
            checks=ev.explain([*failed, *by_name]),
        )
    ]


def _common_nodes(ev: Evidence, results: list[CheckResult]) -> list[str]:
    common = set(ev.engine_nodes)
    for r in results:
        common &= set(r.nodes)
    return sorted(common)


def _protocol(r: CheckResult) -> str:
    """The protocol a data result tested ('' for a full-size DF ping whose small ping
    crossed: that one is about size, not protocol)."""
    if r.check == "mtu.df":
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
                checks=ev.explain([*cross, *same_host]),
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
    too_big = [r for r in failed if r.check == "mtu.df" and r.details.get("small_packets_cross")]
    rest = [r for r in failed if not any(r is t for t in too_big)]
    if all(r.check == "mtu.df" for r in rest):
        too_big, rest = failed, []  # no data check fails: every lost DF packet is the MTU
    found = []
    if too_big:
        found.append(
            Diagnosis(
                cause="full-size packets do not cross the overlay (MTU)",
                detail="small packets pass but full-size ones with don't-fragment are lost: "
                + too_big[0].hint,
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
                "still resolve; connections fail.",
                nodes=common,
                checks=ev.explain(rest),
            )
        )
    return found


def registered_gwbridge(ev: Evidence) -> list[Diagnosis]:
    """Apps whose registered address is their docker_gwbridge leg: one cause for all."""
    failed = [r for r in ev.unexplained("discovery.endpoints") if r.details.get("gwbridge")]
    if not failed:
        return []
    return [
        Diagnosis(
            cause=f"{len(failed)} app(s) registered their docker_gwbridge address for "
            "discovery: peers on other hosts cannot reach it",
            detail=f"{failed[0].subject}: {failed[0].message}. {failed[0].hint}",
            nodes=sorted({r.target for r in failed if r.target}),
            checks=ev.explain(failed),
        )
    ]


def no_ipvs(ev: Evidence) -> list[Diagnosis]:
    """Swarm VIPs that do not answer on nodes whose kernel has no IPVS: one cause."""
    failed = [
        r
        for r in ev.unexplained("swarm.services")
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
    failed = [r for r in ev.unexplained("swarm.schedule") if r.details.get("unreached")]
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


def stack_containers_not_serving(ev: Evidence) -> list[Diagnosis]:
    """A stack container that is there but does not serve (paused, cut from a network
    its compose file gives it): one cause per service, with what it broke downstream
    (its published ports, its names, the results left untested because of it)."""
    found = []
    for result in ev.unexplained("stacks.running"):
        broken = {c: p for c, p in (result.details.get("containers") or {}).items() if p}
        if not broken:
            continue  # no container at all: the per-check rule below says so
        node, service = result.target, result.details.get("service")
        downstream = [
            *(
                r
                for r in ev.unexplained("ports.published")
                if r.target == node and r.details.get("service") == service
            ),
            *(r for r in ev.unexplained("names.resolve") if r.details.get("container") in broken),
            *ev.untested_because(node, "stacks.running"),
        ]
        what = "; ".join(f"{c} {', '.join(p)}" for c, p in sorted(broken.items()))
        found.append(
            Diagnosis(
                cause=f"{service} on {node} does not serve: {what}",
                detail=result.hint,
                nodes=[node],
                checks=ev.explain([result, *downstream]),
            )
        )
    return found


def blamed_nodes(results: list[CheckResult]) -> list[str]:
    """Where failures point: the one node they all target (a port firewalled on node1
    fails from node2 and node3 alike), else the one node they all start from, else
    every node involved."""
    for side in ("target", "source"):
        shared = {getattr(r, side) for r in results}
        if len(shared) == 1 and "" not in shared:
            return sorted(shared)
    return sorted({n for r in results for n in r.nodes})


def per_check(check: str, cause: str) -> Callable[[Evidence], list[Diagnosis]]:
    def rule(ev: Evidence) -> list[Diagnosis]:
        failed = ev.unexplained(check)
        if not failed:
            return []
        subjects = "; ".join(r.subject for r in failed[:3]) + (
            f" (+{len(failed) - 3} more)" if len(failed) > 3 else ""
        )
        return [
            Diagnosis(
                cause=cause.format(n=len(failed)),
                detail=f"{subjects}: "
                + " ".join(
                    filter(
                        None, (f"{failed[0].message}." if failed[0].message else "", failed[0].hint)
                    )
                ),
                nodes=blamed_nodes(failed),
                checks=ev.explain(failed),
            )
        ]

    rule.__name__ = check
    return rule


RULES: list[Callable[[Evidence], list[Diagnosis]]] = [
    dead_engines,
    forwarding_off,
    cut_off_nodes,
    kv_down,
    kv_unreachable_from,
    swarm_quorum_lost,
    wrong_store,
    wrong_advertise,
    swarm_gossip_blocked,
    engine_not_gossiping,
    gossip_blocked,
    gossip_partition,
    stale_peer_entries,
    missing_peer_entries,
    probe_names_wrong,
    protocol_filtered,
    data_plane_blocked,
    per_check("probes.running", "{n} node(s) run no probes: no path to or from them is tested"),
    per_check("networks.present", "{n} overlay(s) are not the same network on every engine"),
    stack_containers_not_serving,
    per_check("stacks.running", "{n} stack service(s) do not run where the spec places them"),
    per_check("names.resolve", "{n} stack names resolve wrongly from other hosts"),
    per_check(
        "advertise.address", "{n} app(s) would advertise an address their peers cannot reach"
    ),
    registered_gwbridge,
    per_check("discovery.endpoints", "{n} registered endpoint(s) do not answer from other hosts"),
    per_check("ports.published", "{n} published port(s) do not answer"),
    per_check("isolation.overlays", "overlays that should be isolated are joined ({n} paths)"),
    no_ipvs,
    per_check("swarm.nodes", "{n} swarm node(s) are not as the spec says"),
    placed_but_unreachable,
    per_check("swarm.schedule", "{n} node(s) do not get what the swarm master schedules there"),
    per_check("swarm.replicas", "{n} swarm service(s) run fewer tasks than they ask for"),
    per_check("swarm.services", "{n} swarm service name(s) or VIP(s) answer wrongly"),
]


def _named(rule: Callable[[Evidence], list[Diagnosis]], ev: Evidence) -> list[Diagnosis]:
    found = rule(ev)
    for diagnosis in found:
        diagnosis.rule = diagnosis.rule or rule.__name__
    return found


def diagnose(spec: ClusterSpec, results: list[CheckResult]) -> list[Diagnosis]:
    ev = Evidence(spec, results)
    found: list[Diagnosis] = []
    for rule in RULES:
        found += _named(rule, ev)
    for check in sorted(
        {r.check for r in results if r.status == "fail" and id(r) not in ev.explained}
    ):
        found += _named(per_check(check, "{n} " + check + " failure(s)"), ev)
    crashed = [r for r in results if r.status == "error" and id(r) not in ev.explained]
    if crashed:
        found.append(
            Diagnosis(
                cause=f"{len(crashed)} result(s) could not be tested",
                detail="; ".join(f"{r.check} ({r.subject}): {r.message}" for r in crashed[:3])
                + ": what they cover is untested, not healthy.",
                nodes=sorted({n for r in crashed for n in r.nodes}),
                checks=sorted({r.check for r in crashed}),
                rule="untested",
            )
        )
    return found
