"""Swarm mode: the swarm as its manager sees it.

- swarm.nodes (swarm mode): every engine node is in the swarm, Ready, active, in the
  role the spec gives it, at its lab address; every manager reachable, and a quorum
  of them.
- swarm.replicas: every service of the lab's stacks runs as many tasks as it asks for.

What the stacks' services answer is swarm_services.py's; classic swarm is
classic_swarm.py's; swarm.py defines the group's checks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import docker.errors

from overlaylab.up.steps.swarm import (
    SWARM_PORT,
    by_node,
    leader_of,
    managers,
    service_name,
    swarm_address,
    swarm_state,
)
from overlaylab.verify.context import VerifyContext
from overlaylab.verify.result import CheckResult

NOT_SWARM = "orchestration.mode is not swarm-mode"


# What a manager answers for the swarm's state while fewer than half of the managers
# are up: the raft cannot elect a leader. That is a finding (swarm.nodes reports it).
NO_LEADER = "does not have a leader"


def _leader_view(vctx: VerifyContext, what: str) -> tuple[Any, str, str]:
    """(leader's engine data via `what`, "", "") or (None, why not, the check whose
    finding that follows from)."""
    leader = leader_of(vctx.lab.spec)
    handle = vctx.lab.node(leader.name)
    if not handle.engine_ping(timeout=2):
        return None, f"the manager {leader.name}'s engine does not answer", "engines.api"
    try:
        with handle.engine(timeout=10) as client:
            if what == "nodes":
                return [n.attrs for n in client.nodes.list()], "", ""
            return {s.name: s.attrs for s in client.services.list()}, "", ""
    except docker.errors.APIError as exc:
        if NO_LEADER in str(exc.explanation):
            return None, f"the swarm has no leader to list its {what}", "swarm.nodes"
        return None, f"{leader.name} cannot list swarm {what}: {exc.explanation}", "engines.api"


def nodes(vctx: VerifyContext) -> list[CheckResult]:
    spec = vctx.lab.spec
    leader = leader_of(spec).name
    listed, why, because = _leader_view(vctx, "nodes")
    if listed is None:
        untested = [
            CheckResult.untested("swarm.nodes", n.name, why, because=because)
            for n in spec.engine_nodes
        ]
        return untested + ([_no_leader(vctx, leader)] if because == "swarm.nodes" else [])
    seen = by_node(spec, listed)
    results = [
        _judge_node(n.name, str(n.address), n.roles, seen.get(n.name), leader)
        for n in spec.engine_nodes
    ]
    results.append(_quorum(seen, leader, [m.name for m in managers(spec)]))
    return results


def _judge_node(
    name: str, address: str, roles: Sequence[str], attrs: dict[str, Any] | None, leader: str
) -> CheckResult:
    role = "manager" if "manager" in roles else "worker"
    problems = []
    if attrs is None:
        problems.append(f"no node of the swarm {leader} manages joined with {address}")
    else:
        state = attrs["Status"].get("State")
        if state != "ready":
            problems.append(f"state {state} ({attrs['Status'].get('Message', '')})")
        if attrs["Spec"].get("Availability") != "active":
            problems.append(f"availability {attrs['Spec'].get('Availability')}")
        if attrs["Spec"].get("Role") != role:
            problems.append(f"role {attrs['Spec'].get('Role')}, the spec says {role}")
        seen_address = swarm_address(attrs)
        if seen_address != address:
            problems.append(f"address {seen_address}, its lab address is {address}")
        if role == "manager":
            reach = (attrs.get("ManagerStatus") or {}).get("Reachability")
            if reach != "reachable":
                problems.append(f"manager reachability {reach}")
    return CheckResult(
        check="swarm.nodes",
        subject=f"{name} ({role})",
        status="fail" if problems else "pass",
        message="; ".join(problems) or f"ready, active, {role}, at {address}",
        hint=""
        if not problems
        else (
            f"the manager must reach {name} on {SWARM_PORT}/tcp, 7946/tcp+udp and 4789/udp "
            f"at its lab address; `docker node ls` on {leader} shows the swarm, and "
            "`invoke up` joins a node that left"
        ),
        nodes=[name],
        source=leader,
        target=name,
        details={"state": (attrs or {}).get("Status", {}), "role": role},
    )


QUORUM_HINT = (
    "the swarm's raft needs more than half of its managers up to keep a leader: without "
    "one nothing is scheduled and no service or node can change (running tasks keep "
    "running). Bring the managers back (`invoke up` restarts their engines); with an "
    "even number of managers, one more keeps the quorum when one is lost"
)


def _quorum(seen: dict[str, Any], leader: str, wanted: list[str]) -> CheckResult:
    reachable = [
        name
        for name in wanted
        if (seen.get(name, {}).get("ManagerStatus") or {}).get("Reachability") == "reachable"
    ]
    lost = sorted(set(wanted) - set(reachable))
    ok = len(reachable) > len(wanted) / 2
    return CheckResult(
        check="swarm.nodes",
        subject="quorum",
        status="pass" if ok else "fail",
        message=f"{len(reachable)} of {len(wanted)} managers reachable"
        + (f" ({', '.join(lost)} not)" if lost else ""),
        hint="" if ok else QUORUM_HINT,
        # The managers it lacks are the ones to look at, not the one that counted them.
        nodes=lost or [leader],
        source=leader,
        target=lost[0] if len(lost) == 1 else "",
        details={"quorum": ok, "leader": leader, "managers": wanted, "lost": lost},
    )


def _manager_down(vctx: VerifyContext, name: str) -> str:
    """Why a manager does not count for the quorum ("" when it is up in the swarm)."""
    handle = vctx.lab.node(name)
    if not handle.engine_ping(timeout=2):
        return "its engine does not answer"
    with handle.engine(timeout=10) as client:
        state = swarm_state(client)
    if state.get("LocalNodeState") != "active" or not state.get("ControlAvailable"):
        return f"not a manager of the swarm (state {state.get('LocalNodeState')})"
    return ""


def _no_leader(vctx: VerifyContext, leader: str) -> CheckResult:
    """The managers answer that the swarm has no leader: count the ones that are up."""
    wanted = [m.name for m in managers(vctx.lab.spec)]
    why = {name: _manager_down(vctx, name) for name in wanted}
    lost = sorted(name for name, reason in why.items() if reason)
    return CheckResult(
        check="swarm.nodes",
        subject="quorum",
        status="fail",
        message=f"no leader: {len(wanted) - len(lost)} of {len(wanted)} managers up"
        + "".join(f"; {name}: {why[name]}" for name in lost),
        hint=QUORUM_HINT,
        nodes=lost or wanted,
        source=leader,
        target=lost[0] if len(lost) == 1 else "",
        details={"quorum": False, "leader": None, "managers": wanted, "lost": lost},
    )


def stack_services(
    vctx: VerifyContext, check: str
) -> tuple[dict[str, Any] | None, list[CheckResult]]:
    """The manager's services for a check on the stacks' services, listed once per
    verify run; or the results that say why the check does not run."""
    spec = vctx.lab.spec
    if spec.orchestration.mode != "swarm-mode":
        return None, [CheckResult.skip(check, "swarm", NOT_SWARM)]
    if not spec.stacks:
        return None, [CheckResult.skip(check, "stacks", "the spec has no stacks")]
    found, why, because = vctx.once("swarm_services", lambda: _leader_view(vctx, "services"))
    if found is None:
        leader = leader_of(spec).name
        return None, [CheckResult.untested(check, leader, why, because=because)]
    return found, []


def replicas(vctx: VerifyContext) -> list[CheckResult]:
    services, refused = stack_services(vctx, "swarm.replicas")
    if services is None:
        return refused
    spec = vctx.lab.spec
    leader = leader_of(spec).name
    results = []
    with vctx.lab.node(leader).engine(timeout=10) as client:
        for stack in spec.stacks:
            for service, node in sorted(stack.services.items()):
                full = service_name(stack.name, service)
                attrs = services.get(full)
                if attrs is None:
                    results.append(_replica_result(full, node, leader, None, 0, "not deployed"))
                    continue
                mode = attrs["Spec"].get("Mode", {})
                desired = (mode.get("Replicated") or {}).get("Replicas", 1)
                tasks = client.api.tasks(filters={"service": full, "desired-state": "running"})
                running = sum(1 for t in tasks if t["Status"]["State"] == "running")
                errors = sorted(
                    {t["Status"].get("Err", "") for t in tasks if t["Status"].get("Err")}
                )
                results.append(
                    _replica_result(full, node, leader, desired, running, "; ".join(errors))
                )
    return results


def _replica_result(
    service: str, node: str, leader: str, desired: int | None, running: int, why: str
) -> CheckResult:
    ok = desired is not None and running >= desired
    return CheckResult(
        check="swarm.replicas",
        subject=service,
        status="pass" if ok else "fail",
        message=f"{running}/{desired} tasks running"
        if desired is not None
        else f"service {service} is {why}",
        hint=""
        if ok
        else f"`docker service ps {service} --no-trunc` on {leader} says why; {why}".rstrip("; "),
        nodes=[node],
        source=leader,
        target=node,
    )
