"""From many failing results to the few causes behind them.

One cut cable fails dozens of pairs; a reader wants one sentence. Each rule looks for
the signature of one known cause in the results (which checks fail, for which
nodes, while which others pass) and explains it. Rules are ordered from the bottom
of the stack up, and failures a rule explains are not explained again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from overlaylab.checks.result import CheckResult
from overlaylab.spec.models import ClusterSpec

DATA_CHECKS = ("connectivity.icmp", "connectivity.tcp", "connectivity.udp", "mtu.df")


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
        return [r for r in self.results if r.check == check and r.failed]

    def ran(self, check: str) -> list[CheckResult]:
        return [r for r in self.results if r.check == check and r.status != "skip"]

    def explain(self, results: list[CheckResult]) -> None:
        self.explained |= {id(r) for r in results}

    def unexplained(self, check: str) -> list[CheckResult]:
        return [r for r in self.failed(check) if id(r) not in self.explained]

    @property
    def engine_nodes(self) -> list[str]:
        return [n.name for n in self.spec.engine_nodes]


def _involving(results: list[CheckResult], node: str) -> list[CheckResult]:
    return [r for r in results if node in r.nodes]


def dead_engines(ev: Evidence) -> list[Diagnosis]:
    found = []
    for result in ev.failed("engines.api"):
        node = result.subject
        found.append(
            Diagnosis(
                cause=f"the engine on {node} is down",
                detail=f"{result.message}. {result.hint}",
                nodes=[node],
                checks=["engines.api"],
            )
        )
        ev.explain(
            [
                result,
                *_involving(ev.failed("underlay.api"), node),
                *_involving(ev.failed("underlay.gossip"), node),
            ]
        )
    return found


def cut_off_nodes(ev: Evidence) -> list[Diagnosis]:
    api = ev.ran("underlay.api")
    found = []
    for node in ev.engine_nodes:
        mine = _involving(api, node)
        if not mine or not all(r.failed for r in mine):
            continue
        others_ok = (
            any(r.status == "pass" for r in api if node not in r.nodes) or len(ev.engine_nodes) == 2
        )
        kv_fail = [r for r in ev.failed("kv.reachable") if r.nodes[0] == node]
        if not others_ok:
            continue
        explained = [*mine, *kv_fail, *_involving(ev.failed("underlay.gossip"), node)]
        for check in (
            *DATA_CHECKS,
            "ports.published",
            "connectivity.dns",
            "names.resolve",
            "networks.present",
        ):
            explained += _involving(ev.failed(check), node)
        ev.explain(explained)
        found.append(
            Diagnosis(
                cause=f"{node} is cut off the lab network",
                detail=f"no other node reaches {node} and {node} reaches none of them"
                + (" nor the KV store" if kv_fail else "")
                + ": its link to the lab switch, the switch port or a firewall on it drops "
                "everything. Every failure that involves it follows from this.",
                nodes=[node],
                checks=sorted({r.check for r in explained}),
            )
        )
    return found


def kv_down(ev: Evidence) -> list[Diagnosis]:
    ran = ev.ran("kv.reachable")
    failed = [r for r in ev.unexplained("kv.reachable")]
    if not ran or len(failed) != len(ran) or ev.spec.kv is None:
        return []
    explained = [*failed, *ev.failed("kv.registered"), *ev.failed("networks.present")]
    ev.explain(explained)
    kv = ev.spec.kv
    return [
        Diagnosis(
            cause=f"the KV store ({kv.backend} on {kv.node}) is down or unreachable",
            detail="no engine reaches it: engines cannot register, and cannot list or create "
            "global (overlay) networks. Containers already running keep talking over the "
            "overlay; new ones cannot join it. `invoke up` restarts the store.",
            nodes=[kv.node],
            checks=sorted({r.check for r in explained}),
        )
    ]


def wrong_advertise(ev: Evidence) -> list[Diagnosis]:
    failed = ev.unexplained("engines.advertise")
    if not failed:
        return []
    nodes = [r.subject for r in failed]
    explained = [*failed]
    for node in nodes:
        explained += _involving(ev.failed("kv.registered"), node)
        explained += _involving(ev.failed("underlay.gossip"), node)
        for check in DATA_CHECKS:
            explained += [
                r
                for r in _involving(ev.failed(check), node)
                if r.details.get("path") == "cross-host"
            ]
    ev.explain(explained)
    advertised = sorted({str(r.details.get("cluster_advertise")) for r in failed})
    return [
        Diagnosis(
            cause=f"{len(nodes)} engine(s) advertise an address their peers cannot reach",
            detail=f"{', '.join(nodes)} advertise {', '.join(advertised)}: "
            f"{failed[0].hint} Cross-host overlay traffic and gossip fail as a result.",
            nodes=nodes,
            checks=sorted({r.check for r in explained}),
        )
    ]


def gossip_blocked(ev: Evidence) -> list[Diagnosis]:
    failed = ev.unexplained("underlay.gossip")
    found = []
    targets = sorted({r.nodes[1] for r in failed if len(r.nodes) > 1})
    for node in targets:
        mine = [r for r in failed if r.subject.split(" -> ")[1].startswith(f"{node}:")]
        ev.explain(mine)
        found.append(
            Diagnosis(
                cause=f"serf gossip to {node} is blocked (tcp+udp 7946)",
                detail=f"the other nodes cannot open {node}'s gossip port while its engine API "
                "answers: a firewall drops 7946. Containers already known keep working; "
                f"containers started on {node} from now on stay unknown to the others.",
                nodes=[node],
                checks=["underlay.gossip"],
            )
        )
    return found


def data_plane_blocked(ev: Evidence) -> list[Diagnosis]:
    failed = [
        r for c in DATA_CHECKS for r in ev.unexplained(c) if r.details.get("path") == "cross-host"
    ]
    if not failed:
        return []
    common = set(ev.engine_nodes)
    for r in failed:
        common &= set(r.nodes)
    only_mtu = all(r.check == "mtu.df" for r in failed)
    ev.explain(failed)
    if only_mtu:
        return [
            Diagnosis(
                cause="full-size packets do not cross the overlay (MTU)",
                detail="small packets pass but full-size ones with don't-fragment are lost: "
                + failed[0].hint,
                nodes=sorted(common),
                checks=["mtu.df"],
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
            checks=sorted({r.check for r in failed}),
        )
    ]


def per_check(check: str, cause: str) -> Callable[[Evidence], list[Diagnosis]]:
    def rule(ev: Evidence) -> list[Diagnosis]:
        failed = ev.unexplained(check)
        if not failed:
            return []
        ev.explain(failed)
        subjects = "; ".join(r.subject for r in failed[:3]) + (
            f" (+{len(failed) - 3} more)" if len(failed) > 3 else ""
        )
        return [
            Diagnosis(
                cause=cause.format(n=len(failed)),
                detail=f"{subjects}: {failed[0].hint}",
                nodes=sorted({n for r in failed for n in r.nodes}),
                checks=[check],
            )
        ]

    return rule


RULES: list[Callable[[Evidence], list[Diagnosis]]] = [
    dead_engines,
    cut_off_nodes,
    kv_down,
    wrong_advertise,
    gossip_blocked,
    data_plane_blocked,
    per_check("networks.present", "{n} overlay(s) are not the same network on every engine"),
    per_check("connectivity.dns", "{n} probe name lookups fail"),
    per_check("names.resolve", "{n} stack names resolve wrongly from other hosts"),
    per_check(
        "advertise.address", "{n} app(s) would advertise an address their peers cannot reach"
    ),
    per_check("ports.published", "{n} published port(s) do not answer"),
    per_check("isolation.overlays", "overlays that should be isolated are joined ({n} paths)"),
]


def diagnose(spec: ClusterSpec, results: list[CheckResult]) -> list[Diagnosis]:
    ev = Evidence(spec, results)
    found: list[Diagnosis] = []
    for rule in RULES:
        found += rule(ev)
    leftovers = [r for r in results if r.failed and id(r) not in ev.explained]
    for check in sorted({r.check for r in leftovers}):
        found += per_check(check, "{n} " + check + " failure(s)")(ev)
    return found
