"""The rules in the order they run, and the run itself: from the bottom of the stack up,
each rule explaining what no rule before it explained."""

from __future__ import annotations

from overlaylab.spec.models import ClusterSpec
from overlaylab.verify.checks import (
    advertise,
    discovery,
    isolation,
    names,
    networks,
    ports,
    probes_running,
    stacks,
    swarm,
)
from overlaylab.verify.diagnosis.evidence import Diagnosis, Evidence, Rule, per_check
from overlaylab.verify.diagnosis.gossip import (
    engine_not_gossiping,
    gossip_blocked,
    gossip_partition,
)
from overlaylab.verify.diagnosis.kv import kv_down, kv_unreachable_from, wrong_store
from overlaylab.verify.diagnosis.names import probe_names_wrong
from overlaylab.verify.diagnosis.overlay import (
    data_plane_blocked,
    missing_peer_entries,
    protocol_filtered,
    stale_peer_entries,
)
from overlaylab.verify.diagnosis.stacks import registered_gwbridge, stack_containers_not_serving
from overlaylab.verify.diagnosis.swarm import (
    no_ipvs,
    placed_but_unreachable,
    swarm_gossip_blocked,
    swarm_quorum_lost,
)
from overlaylab.verify.diagnosis.underlay import (
    cut_off_nodes,
    dead_engines,
    forwarding_off,
    wrong_advertise,
)
from overlaylab.verify.result import CheckResult

RULES: list[Rule] = [
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
    per_check(
        probes_running.RUNNING, "{n} node(s) run no probes: no path to or from them is tested"
    ),
    per_check(networks.PRESENT, "{n} overlay(s) are not the same network on every engine"),
    stack_containers_not_serving,
    per_check(stacks.RUNNING, "{n} stack service(s) do not run where the spec places them"),
    per_check(names.RESOLVE, "{n} stack names resolve wrongly from other hosts"),
    per_check(advertise.ADDRESS, "{n} app(s) would advertise an address their peers cannot reach"),
    registered_gwbridge,
    per_check(discovery.ENDPOINTS, "{n} registered endpoint(s) do not answer from other hosts"),
    per_check(ports.PUBLISHED, "{n} published port(s) do not answer"),
    per_check(isolation.OVERLAYS, "overlays that should be isolated are joined ({n} paths)"),
    no_ipvs,
    per_check(swarm.NODES, "{n} swarm node(s) are not as the spec says"),
    placed_but_unreachable,
    per_check(swarm.SCHEDULE, "{n} node(s) do not get what the swarm master schedules there"),
    per_check(swarm.REPLICAS, "{n} swarm service(s) run fewer tasks than they ask for"),
    per_check(swarm.SERVICES, "{n} swarm service name(s) or VIP(s) answer wrongly"),
]


def _named(rule: Rule, ev: Evidence) -> list[Diagnosis]:
    try:
        found = rule(ev)
    except Exception as exc:  # a rule's bug must not take the report (and verify) with it
        return [
            Diagnosis(
                cause=f"the diagnosis rule {rule.__name__} could not run",
                detail=f"{type(exc).__name__}: {exc}. The failures it reads stay in the "
                "report; the causes below are named without it.",
                rule="rule_crashed",
            )
        ]
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
