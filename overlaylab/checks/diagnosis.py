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

from overlaylab.checks.result import CheckResult
from overlaylab.spec.models import ClusterSpec

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
)


@dataclass
class Diagnosis:
    cause: str
    detail: str
    nodes: list[str] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)

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
        if node not in ev.engine_nodes:
            continue
        explained = [
            result,
            *ev.involving(
                node,
                (
                    "underlay.api",
                    "underlay.gossip",
                    "underlay.members",
                    "probes.running",
                    "kv.registered",  # a dead engine's registration expires with its TTL
                ),
            ),
            *ev.untested_because(node, "engines.api"),
            *ev.untested_because(node, "probes.running"),
        ]
        found.append(
            Diagnosis(
                cause=f"the engine on {node} is down",
                detail=f"{result.message}. {result.hint}",
                nodes=[node],
                checks=ev.explain(explained),
            )
        )
    return found


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
        checks = ev.explain(ev.involving(node))
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
        explained += ev.involving(node, ("kv.registered", "underlay.gossip", "underlay.members"))
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


def gossip_blocked(ev: Evidence) -> list[Diagnosis]:
    failed = ev.unexplained("underlay.gossip")
    found = []
    for node in sorted({r.target for r in failed}):
        mine = [r for r in failed if r.target == node]
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


def data_plane_blocked(ev: Evidence) -> list[Diagnosis]:
    failed = [r for c in DATA_CHECKS for r in ev.unexplained(c) if r.path == "cross-host"]
    if not failed:
        return []
    common = set(ev.engine_nodes)
    for r in failed:
        common &= set(r.nodes)
    checks = ev.explain(failed)
    if checks == ["mtu.df"]:
        return [
            Diagnosis(
                cause="full-size packets do not cross the overlay (MTU)",
                detail="small packets pass but full-size ones with don't-fragment are lost: "
                + failed[0].hint,
                nodes=sorted(common),
                checks=checks,
            )
        ]
    where = f"to and from {', '.join(sorted(common))}" if common else "between the nodes"
    return [
        Diagnosis(
            cause=f"overlay data (VXLAN, udp/4789) is blocked {where}",
            detail="the control plane works (engines, KV store, gossip and API ports answer) but "
            "overlay packets do not cross: udp/4789 is dropped on the way (a firewall on "
            "the node, or between the nodes). Names still resolve; connections fail.",
            nodes=sorted(common),
            checks=checks,
        )
    ]


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

    return rule


RULES: list[Callable[[Evidence], list[Diagnosis]]] = [
    dead_engines,
    cut_off_nodes,
    kv_down,
    wrong_store,
    wrong_advertise,
    gossip_blocked,
    gossip_partition,
    probe_names_wrong,
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
    per_check("swarm.schedule", "{n} node(s) do not get what the swarm master schedules there"),
    per_check("swarm.replicas", "{n} swarm service(s) run fewer tasks than they ask for"),
    per_check("swarm.services", "{n} swarm service name(s) or VIP(s) answer wrongly"),
]


def diagnose(spec: ClusterSpec, results: list[CheckResult]) -> list[Diagnosis]:
    ev = Evidence(spec, results)
    found: list[Diagnosis] = []
    for rule in RULES:
        found += rule(ev)
    for check in sorted(
        {r.check for r in results if r.status == "fail" and id(r) not in ev.explained}
    ):
        found += per_check(check, "{n} " + check + " failure(s)")(ev)
    crashed = [r for r in results if r.status == "error" and id(r) not in ev.explained]
    if crashed:
        found.append(
            Diagnosis(
                cause=f"{len(crashed)} result(s) could not be tested",
                detail="; ".join(f"{r.check} ({r.subject}): {r.message}" for r in crashed[:3])
                + ": what they cover is untested, not healthy.",
                nodes=sorted({n for r in crashed for n in r.nodes}),
                checks=sorted({r.check for r in crashed}),
            )
        )
    return found
