"""The stack containers a spec deploys, found on their engines by their labels (compose's,
or swarm's in swarm mode)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import docker.errors

from overlaylab.up.steps.stacks import (
    container_problems,
    read_compose,
    service_labels,
    service_networks,
)
from overlaylab.up.steps.swarm import leader_of
from overlaylab.verify.context import VerifyContext


@dataclass(frozen=True)
class StackContainer:
    stack: str
    service: str
    node: str
    name: str  # container name
    short_id: str
    networks: dict[str, str]  # network -> address
    aliases: dict[str, list[str]]  # network -> aliases compose set
    ports: list[tuple[int, int, str]]  # (host port, container port, proto)
    swarm_service: str = ""  # the swarm service of a swarm-mode task (<stack>_<service>)
    state: str = "running"  # the engine's State.Status: paused, restarting, ...
    # Networks its compose file gives it (with the aliases it must carry there), and why
    # it does not serve as that file says (not running, not on one of them).
    wanted: dict[str, list[str]] = field(default_factory=dict)
    problems: tuple[str, ...] = ()
    exposed: tuple[int, ...] = ()  # TCP ports its image (or compose `expose`) declares

    @property
    def serving(self) -> bool:
        return not self.problems


def stack_containers(vctx: VerifyContext) -> list[StackContainer]:
    """Every stack container, from the engines; asked once per verify run."""
    return vctx.once("stack_containers", lambda: _find_stack_containers(vctx))


def unreachable_stack_nodes(vctx: VerifyContext) -> set[str]:
    """Nodes with stack placements whose engine did not answer the lookup."""
    stack_containers(vctx)
    return vctx.cache["stack_nodes_down"]


def _find_stack_containers(vctx: VerifyContext) -> list[StackContainer]:
    found: list[StackContainer] = []
    down: set[str] = vctx.cache.setdefault("stack_nodes_down", set())
    swarm = vctx.lab.spec.orchestration.mode == "swarm-mode"
    current = _current_tasks(vctx) if swarm else None
    for stack in vctx.lab.spec.stacks:
        compose = read_compose(vctx.lab, stack)
        for service, node in sorted(stack.services.items()):
            handle = vctx.lab.node(node)
            if node in down or not handle.engine_ping(timeout=2):
                down.add(node)
                continue
            wanted = service_networks(compose, stack.name, service, swarm=swarm)
            with handle.engine(timeout=10) as client:
                labels = service_labels(vctx.lab.spec, stack, service)
                containers = client.containers.list(filters={"label": labels})
                for c in containers:
                    if current is not None and c.labels.get(TASK_LABEL) not in current:
                        continue  # a task swarm is stopping (an update, a removed service)
                    nets = c.attrs["NetworkSettings"]["Networks"] or {}
                    found.append(
                        StackContainer(
                            stack=stack.name,
                            service=service,
                            node=node,
                            name=c.name,
                            short_id=c.id[:12],
                            networks={n: v.get("IPAddress", "") for n, v in nets.items()},
                            aliases={n: list(v.get("Aliases") or []) for n, v in nets.items()},
                            ports=_published(c.attrs),
                            swarm_service=c.labels.get("com.docker.swarm.service.name", ""),
                            state=(c.attrs.get("State") or {}).get("Status", ""),
                            wanted=wanted,
                            problems=tuple(container_problems(c.attrs, wanted)),
                            exposed=_exposed(c.attrs),
                        )
                    )
    return found


TASK_LABEL = "com.docker.swarm.task.id"


def _current_tasks(vctx: VerifyContext) -> set[str] | None:
    """IDs of the swarm tasks the manager wants running; None when it cannot say."""
    leader = vctx.lab.node(leader_of(vctx.lab.spec).name)
    if not leader.engine_ping(timeout=2):
        return None
    try:
        with leader.engine(timeout=10) as client:
            return {t["ID"] for t in client.api.tasks(filters={"desired-state": "running"})}
    except docker.errors.APIError:
        return None


def _exposed(attrs: dict[str, Any]) -> tuple[int, ...]:
    declared = (attrs.get("Config") or {}).get("ExposedPorts") or {}
    return tuple(sorted({int(k.split("/")[0]) for k in declared if k.endswith("/tcp")}))


def _published(attrs: dict[str, Any]) -> list[tuple[int, int, str]]:
    """(host port, container port, proto) the container is to publish. Its
    configuration says so; the live bindings vanish with its network (a container cut
    from its only network publishes nothing), and a port that should answer then
    must be tested, not dropped."""
    ports = []
    for source in (
        (attrs.get("HostConfig") or {}).get("PortBindings"),
        (attrs.get("NetworkSettings") or {}).get("Ports"),
    ):
        for key, bindings in (source or {}).items():
            cport, proto = key.split("/")
            for b in bindings or []:
                if b.get("HostPort"):
                    ports.append((int(b["HostPort"]), int(cport), proto))
    return sorted(set(ports))
