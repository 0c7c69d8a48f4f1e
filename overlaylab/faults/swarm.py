"""Swarm mode's own miseries: a manager quorum lost (the raft has no leader, nothing can
be scheduled or changed), and a worker down (the swarm marks it down; what is placed
there cannot run anywhere else). Both stop engines through the node handle, as the
engine faults do; heal brings them back with `up` and waits for the swarm to see it."""

from __future__ import annotations

from typing import Any

import docker.errors
import requests

from overlaylab.context import LabContext
from overlaylab.faults.model import ActiveFault, FaultError, FaultKind, Options, Undo
from overlaylab.faults.services import (
    _heal_engines,
    _inject_engine_killed,
    _inject_engine_stopped,
    _private_engine,
)
from overlaylab.up.steps.swarm import by_node, managers, workers
from overlaylab.waiting import wait_until

SWARM = ("swarm-mode",)
SEEN_TIMEOUT = 60.0  # a manager marks a silent node down after a few missed heartbeats


def _nodes_seen(lab: LabContext) -> dict[str, dict[str, Any]] | None:
    """The swarm's nodes as the first manager that can list them sees them, or None
    (no leader: no manager can)."""
    for manager in managers(lab.spec):
        handle = lab.node(manager.name)
        if not handle.engine_ping(timeout=2):
            continue
        try:
            with handle.engine(timeout=10) as client:
                return by_node(lab.spec, [n.attrs for n in client.nodes.list()])
        except docker.errors.APIError:
            return None
    return None


# --- a manager quorum lost ---------------------------------------------------------------------


def _quorum_applies(lab: LabContext) -> str | None:
    if len(managers(lab.spec)) < 2:
        return "with one manager, losing it is an engine down, not a lost quorum"
    return _private_engine(lab)


def _quorum_default(lab: LabContext) -> list[str]:
    """The fewest managers whose loss leaves half or fewer up, never the spec's first
    (the one `up` makes the leader, and the one verify asks)."""
    names = [m.name for m in managers(lab.spec)]
    need = (len(names) + 1) // 2  # what is left must be half or fewer
    return names[1:][-need:]


def _check_managers(lab: LabContext, targets: list[str]) -> None:
    names = {m.name for m in managers(lab.spec)}
    others = [t for t in targets if t not in names]
    if others:
        raise FaultError(f"{', '.join(others)} is not a manager: quorum takes managers")
    if len(targets) * 2 < len(names):  # more than half are left: they keep a leader
        raise FaultError(
            f"losing {len(targets)} of {len(names)} managers keeps the quorum: name more"
        )


def _leaderless(lab: LabContext, targets: list[str]) -> bool:
    rest = [m.name for m in managers(lab.spec) if m.name not in targets]
    for name in rest:
        try:
            # A manager that lost its leader can take long to answer /info.
            with lab.node(name).engine(timeout=30) as client:
                error = (client.info().get("Swarm") or {}).get("Error", "")
        except (docker.errors.DockerException, requests.RequestException):
            continue  # not an answer either way: ask again
        if "leader" in error:
            return True
    return False


def _inject_quorum(lab: LabContext, targets: list[str], options: Options, undo: Undo) -> None:
    _check_managers(lab, targets)
    _inject_engine_killed(lab, targets, options, undo)
    # The remaining managers notice within their election timeout.
    if not wait_until(lambda: _leaderless(lab, targets), SEEN_TIMEOUT, interval=1):
        raise FaultError(f"the swarm still has a leader {SEEN_TIMEOUT:g}s after losing {targets}")


def _heal_quorum(lab: LabContext, active: ActiveFault) -> None:
    try:
        _heal_engines(lab, active)
    except FaultError:
        # Without a leader a restarted manager's dockerd answers only once it gives up
        # waiting for its swarm component, which can outlast up's engine wait: the
        # second `up` finds it running.
        _heal_engines(lab, active)
    if not wait_until(lambda: _nodes_seen(lab) is not None, SEEN_TIMEOUT, interval=1):
        raise FaultError(f"the swarm has no leader {SEEN_TIMEOUT:g}s after healing")


# --- a worker down --------------------------------------------------------------------------------


def _worker_applies(lab: LabContext) -> str | None:
    if not workers(lab.spec):
        return "the swarm has no worker"
    return _private_engine(lab)


def _worker_default(lab: LabContext) -> list[str]:
    """The worker the spec places the most stack services on (the last one on a tie):
    its loss shows in the replicas too."""
    names = [w.name for w in workers(lab.spec)]
    placed = [node for stack in lab.spec.stacks for node in stack.services.values()]
    return [max(reversed(names), key=placed.count)] if names else []


def _state_of(lab: LabContext, node: str) -> str:
    seen = _nodes_seen(lab) or {}
    return str((seen.get(node) or {}).get("Status", {}).get("State", ""))


def _inject_worker(lab: LabContext, targets: list[str], options: Options, undo: Undo) -> None:
    names = {w.name for w in workers(lab.spec)}
    others = [t for t in targets if t not in names]
    if others:
        raise FaultError(f"{', '.join(others)} is not a worker of the swarm")
    _inject_engine_stopped(lab, targets, options, undo)
    # The managers mark it down once its heartbeats stop.
    if not wait_until(
        lambda: all(_state_of(lab, n) == "down" for n in targets), SEEN_TIMEOUT, interval=1
    ):
        raise FaultError(f"the swarm did not mark {', '.join(targets)} down in {SEEN_TIMEOUT:g}s")


def _heal_worker(lab: LabContext, active: ActiveFault) -> None:
    _heal_engines(lab, active)
    nodes = active.undo.get("engines", [])
    if not wait_until(
        lambda: all(_state_of(lab, n) == "ready" for n in nodes), SEEN_TIMEOUT, interval=1
    ):
        raise FaultError(f"the swarm does not see {', '.join(nodes)} ready after healing")


KINDS = [
    FaultKind(
        name="quorum",
        misery="a swarm manager quorum lost (managers' engines killed): no leader, so "
        "nothing is scheduled and no service or node can change",
        parameters="NODE ... (managers; default: enough managers after the first to lose "
        "the quorum)",
        expected_cause="swarm_quorum_lost",
        also_causes=("dead_engines",),  # the managers it lost are engines down too
        modes=SWARM,
        inject_fn=_inject_quorum,
        heal_fn=_heal_quorum,
        max_targets=64,
        applies_fn=_quorum_applies,
        default_targets_fn=_quorum_default,
    ),
    FaultKind(
        name="worker-down",
        misery="a swarm worker down (its engine stopped): the swarm marks it down, and a "
        "service placed on it runs nowhere",
        parameters="NODE (a worker; default: the one the spec places the most services on)",
        expected_cause="dead_engines",
        modes=SWARM,
        inject_fn=_inject_worker,
        heal_fn=_heal_worker,
        applies_fn=_worker_applies,
        default_targets_fn=_worker_default,
    ),
]
