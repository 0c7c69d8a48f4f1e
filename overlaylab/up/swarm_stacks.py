"""Stacks in swarm mode: `docker stack deploy` of a compose v3 file, through a manager.

The spec places each service on a node; that becomes a placement constraint
(`node.labels.overlaylab.node == <node>`, a label the swarm step sets). Without IPVS in
the kernel, a service's virtual IP answers nothing ("No route to host") and the
ingress routing mesh cannot forward, so unless the compose file says otherwise each
service gets `endpoint_mode: dnsrr` (its name resolves to its tasks' addresses) and
its published ports `mode: host` (published on the node that runs the task). The
file deployed is written to the lab's state folder; the spec's file is not changed.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import yaml

from overlaylab.context import LabContext
from overlaylab.errors import OverlaylabError, on_node
from overlaylab.providers.host_runner import HostRunner
from overlaylab.spec.compose import UNREADABLE as COMPOSE_UNREADABLE
from overlaylab.spec.compose import read_compose_file
from overlaylab.spec.models import Stack
from overlaylab.up.steps.swarm import NODE_LABEL, leader_of, service_name

_SHORT_PORT = re.compile(r"^(?:(\d+):)?(\d+)(?:/(tcp|udp))?$")
DEPLOY_TIMEOUT = 180


def has_ipvs(ctx: LabContext, node: str) -> bool:
    """Does the node's kernel do IPVS (what swarm's VIPs and routing mesh need)?"""
    probe = "[ -e /proc/net/ip_vs ] || [ -d /sys/module/ip_vs ]"
    return ctx.node(node).run(["sh", "-c", probe], check=False).returncode == 0


def _host_mode_port(port: Any) -> Any:
    if isinstance(port, dict):
        return {"mode": "host", **port}
    match = _SHORT_PORT.match(str(port))
    if match is None:
        return port  # a range or an address: left to the CLI as written
    published, target, protocol = match.groups()
    long: dict[str, Any] = {"target": int(target), "protocol": protocol or "tcp", "mode": "host"}
    if published:
        long["published"] = int(published)
    return long


def deployed_compose(compose: dict[str, Any], stack: Stack, ipvs: bool) -> dict[str, Any]:
    """The compose file as deployed: placements from the spec, and without IPVS, DNS
    round robin and host-mode ports wherever the file does not choose."""
    services = compose.get("services") or {}
    for name, node in sorted(stack.services.items()):
        service = services.setdefault(name, {})
        deploy = service.setdefault("deploy", {})
        placement = deploy.setdefault("placement", {})
        constraints = list(placement.get("constraints") or [])
        wanted = f"node.labels.{NODE_LABEL} == {node}"
        if wanted not in constraints:
            constraints.append(wanted)
        placement["constraints"] = constraints
        if not ipvs and "endpoint_mode" not in deploy:
            deploy["endpoint_mode"] = "dnsrr"
            service["ports"] = [_host_mode_port(p) for p in service.get("ports") or []]
            if not service["ports"]:
                del service["ports"]
    return compose


def deploy_file(ctx: LabContext, stack: Stack) -> Path:
    """The stack's compose file as deployed, written to the lab's state folder. Its
    version is validate's to check (`docker stack deploy` reads only 3.x)."""
    source = ctx.resolve_spec_path(stack.file)
    try:
        compose = read_compose_file(source).mapping
    except COMPOSE_UNREADABLE as exc:
        raise OverlaylabError(f"stack {stack.name}: cannot read {source}: {exc}") from exc
    leader = leader_of(ctx.spec).name
    ipvs = has_ipvs(ctx, leader)
    if not ipvs:
        ctx.progress.item(
            stack.name,
            f"no IPVS in {leader}'s kernel: services without an endpoint_mode get dnsrr "
            "and host-mode ports (a VIP would answer nothing)",
        )
    deployed = deployed_compose(compose, stack, ipvs)
    target = ctx.layout.state_dir / "stacks" / f"{stack.name}.yml"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(yaml.safe_dump(deployed, sort_keys=False))
    return target


def deploy_stack(ctx: LabContext, stack: Stack, env: dict[str, str]) -> None:
    docker = shutil.which("docker")
    if docker is None:
        raise OverlaylabError(
            "swarm-mode stacks are deployed with `docker stack deploy`, and the docker CLI "
            "is not on PATH: apt-get install -y docker.io"
        )
    argv = [docker, "stack", "deploy", "--prune", "--resolve-image", "never"]
    argv += ["-c", str(deploy_file(ctx, stack)), stack.name]
    with on_node(leader_of(ctx.spec).name):
        HostRunner().run(argv, env=env, timeout=DEPLOY_TIMEOUT)


def converged(ctx: LabContext, stack: Stack, service: str, node: str) -> bool:
    """Every task swarm wants running for the service runs, on `node`, and as many as
    the service asks for. A deploy that changes a service replaces its tasks: the old
    one still runs while the new one starts, so a running container alone proves
    nothing; and a replacement waits in desired state "ready" (not "running") until
    the task it replaces has stopped, so the running ones alone can be too few."""
    name = service_name(stack.name, service)
    with ctx.node(leader_of(ctx.spec).name).engine() as client:
        hosts = {
            n["ID"]: (n["Spec"].get("Labels") or {}).get(NODE_LABEL) for n in client.api.nodes()
        }
        mode = client.api.inspect_service(name)["Spec"].get("Mode") or {}
        tasks = client.api.tasks(filters={"service": name, "desired-state": "running"})
    wanted = (mode.get("Replicated") or {}).get("Replicas", len(tasks))
    return (
        bool(tasks)
        and len(tasks) >= wanted
        and all(
            t["Status"]["State"] == "running" and hosts.get(t.get("NodeID", "")) == node
            for t in tasks
        )
    )
