"""What the rules read and what they say: the results as evidence, and a diagnosis.

Rules name checks by their definitions (the `Check` objects each check module
exports), never by id strings: renaming a check's id moves every rule with it, and a
rule cannot name a check that does not exist.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from overlaylab.spec.models import ClusterSpec
from overlaylab.verify.check import Check
from overlaylab.verify.checks import (
    connectivity,
    kv,
    names,
    networks,
    peers,
    ports,
    swarm,
    underlay,
)
from overlaylab.verify.result import CheckResult

# A check, by its definition; by its id only where the id comes from the results
# themselves (diagnose's catch-all for failures no rule names).
CheckRef = Check | str

DATA_CHECKS = (connectivity.ICMP, connectivity.TCP, connectivity.UDP, connectivity.MTU_DF)
# Everything a node being unreachable can break, for the rules that explain a node away.
NODE_DEPENDENT = (
    *DATA_CHECKS,
    underlay.API,
    underlay.GOSSIP,
    underlay.MEMBERS,
    kv.REACHABLE,
    kv.REGISTERED,
    ports.PUBLISHED,
    connectivity.DNS,
    names.RESOLVE,
    networks.PRESENT,
    peers.PEERS,
    swarm.SCHEDULE,
)
PROTOCOLS = {connectivity.ICMP.id: "icmp", connectivity.TCP.id: "tcp", connectivity.UDP.id: "udp"}


def unreached_schedules(ev: Evidence, nodes: set[str]) -> list[CheckResult]:
    """Classic swarm's scheduling probes that landed right but could not reach one of
    `nodes`, or that landed on one of them and reached no one: what a broken path to
    those nodes does to them too."""
    return [
        r
        for r in ev.unexplained(swarm.SCHEDULE)
        if r.details.get("unreached") and nodes & {r.target, *r.details["unreached"]}
    ]


def check_id(check: CheckRef) -> str:
    return check if isinstance(check, str) else check.id


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

    def failed(self, check: CheckRef) -> list[CheckResult]:
        wanted = check_id(check)
        return [r for r in self.results if r.check == wanted and r.status == "fail"]

    def ran(self, check: CheckRef) -> list[CheckResult]:
        wanted = check_id(check)
        return [r for r in self.results if r.check == wanted and r.status in ("pass", "fail")]

    def unexplained(self, check: CheckRef) -> list[CheckResult]:
        return [r for r in self.failed(check) if id(r) not in self.explained]

    def explain(self, results: list[CheckResult]) -> list[str]:
        """Mark results explained; return the ids of the checks they belong to."""
        self.explained |= {id(r) for r in results}
        return sorted({r.check for r in results})

    def involving(
        self, node: str, checks: tuple[CheckRef, ...] = NODE_DEPENDENT
    ) -> list[CheckResult]:
        return [r for c in checks for r in self.failed(c) if node in r.nodes]

    def untested_because(self, node: str, check: CheckRef) -> list[CheckResult]:
        """Results on `node` that could not be tested because `check` failed there."""
        return [
            r
            for r in self.results
            if r.status == "error"
            and r.details.get("untested_because") == check_id(check)
            and node in r.nodes
        ]

    @property
    def engine_nodes(self) -> list[str]:
        return [n.name for n in self.spec.engine_nodes]


Rule = Callable[[Evidence], list[Diagnosis]]


def blamed_nodes(results: list[CheckResult]) -> list[str]:
    """Where failures point: the one node they all target (a port firewalled on node1
    fails from node2 and node3 alike), else the one node they all start from, else
    every node involved."""
    for side in ("target", "source"):
        shared = {getattr(r, side) for r in results}
        if len(shared) == 1 and "" not in shared:
            return sorted(shared)
    return sorted({n for r in results for n in r.nodes})


def per_check(check: CheckRef, cause: str) -> Rule:
    """A rule for one check's failures not explained by a cause below them: one diagnosis
    for all of them, pointing where they point."""

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

    rule.__name__ = check_id(check)
    return rule


def unanswered_only_on(result: CheckResult, node: str) -> bool:
    """A names.resolve result: the stack name resolves to nothing from `node`, and
    rightly from everywhere else."""
    seen: dict[str, list[str]] = result.details.get("seen", {})
    wanted = sorted(result.details.get("answers", []))
    return seen.get(node) == [] and all(sorted(a) == wanted for n, a in seen.items() if n != node)


def connected_by_name(ev: Evidence, lookups: list[CheckResult]) -> list[CheckResult]:
    """The unexplained connectivity.tcp results on the paths of these failed name
    lookups: TCP connects by the probe's name, so it fails with the lookup."""
    paths = {(r.source, r.target, r.network, r.path) for r in lookups}
    return [
        r
        for r in ev.unexplained(connectivity.TCP)
        if (r.source, r.target, r.network, r.path) in paths
    ]
