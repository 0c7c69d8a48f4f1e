"""Compose stacks, each service on the node the spec names: docker-compose v1 per node,
or `docker stack deploy` through a manager in swarm mode (swarm_stacks.py)."""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import yaml

from overlaylab.context import LabContext
from overlaylab.errors import OverlaylabError, on_node
from overlaylab.spec.compose import UNREADABLE as COMPOSE_UNREADABLE
from overlaylab.spec.compose import read_compose_file
from overlaylab.spec.models import ClusterSpec, Stack
from overlaylab.up.classic_swarm import masters, swarm_env
from overlaylab.up.compose_warm import COMPOSE
from overlaylab.up.run import UpRun
from overlaylab.up.steps.swarm import leader_of, service_name
from overlaylab.up.swarm_stacks import converged, deploy_stack
from overlaylab.waiting import wait_until

PLACE_TIMEOUT = 90.0
COMPOSE_TIMEOUT = 180.0


def compose_argv(ctx: LabContext, stack: Stack, *args: str) -> list[str]:
    compose_file = str(ctx.resolve_spec_path(stack.file))
    return [COMPOSE, "--no-ansi", "-p", stack.name, "-f", compose_file, *args]


# requests lets these replace a client's own CA file, which would make every lab
# engine's certificate "unverifiable" for compose: the lab CA must win.
_CA_OVERRIDES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


def compose_base_env() -> dict[str, str]:
    """This process's environment, less what would point compose at another engine."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DOCKER_", "COMPOSE_")) and k not in _CA_OVERRIDES
    }


def compose_env(ctx: LabContext, node: str) -> dict[str, str]:
    env = compose_base_env()
    env.update(ctx.node(node).docker_env())
    # Apps that register themselves (stacks/discovery) find the lab's registry here.
    registry = registry_url(ctx.spec)
    if registry:
        env["OVERLAYLAB_REGISTRY"] = registry
    return env


def registry_url(spec: ClusterSpec) -> str | None:
    """The lab's KV store as a service registry: consul://IP:PORT or etcd://IP:PORT."""
    if spec.kv is None or spec.kv.backend == "zookeeper":
        return None
    return f"{spec.kv.backend}://{spec.address_of(spec.kv.node)}:{spec.kv.client_port}"


def _fingerprint(ctx: LabContext, stack: Stack) -> str:
    digest = hashlib.sha256(read_compose_file(ctx.resolve_spec_path(stack.file)).text.encode())
    digest.update(repr(sorted(stack.services.items())).encode())
    return digest.hexdigest()


def service_labels(spec: ClusterSpec, stack: Stack, service: str) -> list[str]:
    """The labels that mark a stack service's containers on its engine."""
    if spec.orchestration.mode == "swarm-mode":
        return [
            f"com.docker.stack.namespace={stack.name}",
            f"com.docker.swarm.service.name={service_name(stack.name, service)}",
        ]
    return [f"com.docker.compose.project={stack.name}", f"com.docker.compose.service={service}"]


def read_compose(ctx: LabContext, stack: Stack) -> dict[str, Any]:
    """The stack's compose file as written (an unreadable one is up's to report)."""
    try:
        return read_compose_file(ctx.resolve_spec_path(stack.file)).mapping
    except COMPOSE_UNREADABLE:
        return {}


def _network_name(key: str, declared: dict[str, Any], project: str) -> str:
    """The engine's name of a compose network: an external one keeps its own name,
    one compose (or `docker stack deploy`) creates is prefixed with the project."""
    external = declared.get("external")
    if isinstance(external, dict) and external.get("name"):
        return str(external["name"])  # the compose 2.x/3.0-3.3 spelling
    if external or declared.get("name"):
        return str(declared.get("name") or key)
    return f"{project}_{key}"


def service_networks(
    compose: dict[str, Any], project: str, service: str, *, swarm: bool = False
) -> dict[str, list[str]]:
    """network -> the aliases a service's containers must carry there, as its compose
    file gives them. Compose v1 adds the service name as an alias on every network;
    swarm answers the service name with a VIP or its tasks instead."""
    definition = (compose.get("services") or {}).get(service) or {}
    if "network_mode" in definition:
        return {}  # host, none, container:X: no network of the project's
    declared = compose.get("networks") or {}
    asked = definition.get("networks") or ["default"]
    entries = asked.items() if isinstance(asked, dict) else ((n, None) for n in asked)
    found: dict[str, list[str]] = {}
    for key, options in entries:
        aliases = list((options or {}).get("aliases") or [])
        if not swarm:
            aliases = [service, *aliases]
        name = _network_name(str(key), declared.get(key) or {}, project)
        found[name] = list(dict.fromkeys(aliases))
    return found


def container_problems(attrs: dict[str, Any], wanted: dict[str, list[str]]) -> list[str]:
    """Why a stack container does not serve as its compose file says: not running
    (a paused container keeps its addresses and answers nothing), or missing from a
    network it is given there, or without the aliases it should answer to."""
    state = (attrs.get("State") or {}).get("Status", "")
    if state != "running":
        return [f"is {state}" if state else "has no state"]
    networks = (attrs.get("NetworkSettings") or {}).get("Networks") or {}
    problems = []
    missing = [n for n in wanted if n not in networks]
    if missing:
        problems.append(f"is not on {', '.join(missing)}")
    for network, aliases in wanted.items():
        have = (networks.get(network) or {}).get("Aliases") or []
        lost = [a for a in aliases if network in networks and a not in have]
        if lost:
            problems.append(f"is on {network} without its alias(es) {', '.join(lost)}")
    return problems


def _wanted_networks(ctx: LabContext, stack: Stack, service: str) -> dict[str, list[str]]:
    swarm = ctx.spec.orchestration.mode == "swarm-mode"
    return service_networks(read_compose(ctx, stack), stack.name, service, swarm=swarm)


def _placement_state(ctx: LabContext, stack: Stack, service: str, node: str) -> str:
    """ "running" (on the networks its compose file gives it, with their aliases),
    "missing", or the first problem of a container that is there but does not serve."""
    wanted = _wanted_networks(ctx, stack, service)
    with ctx.node(node).engine() as client:
        labels = service_labels(ctx.spec, stack, service)
        found = client.containers.list(filters={"label": labels})
        problems = [p for c in found for p in container_problems(c.attrs, wanted)]
    if not found:
        return "missing"
    return problems[0] if problems else "running"


def _remove_broken(ctx: LabContext, stack: Stack, service: str, node: str) -> None:
    """Remove the service's containers on `node` that do not serve as its compose file
    says: compose (`up` only starts what is missing; it leaves a paused container, or
    one cut from its network, as it is) and swarm (which restarts a removed task)
    then start it afresh."""
    wanted = _wanted_networks(ctx, stack, service)
    with ctx.node(node).engine() as client:
        labels = service_labels(ctx.spec, stack, service)
        for c in client.containers.list(filters={"label": labels}):
            if container_problems(c.attrs, wanted):
                c.remove(force=True)


def _deploy(ctx: LabContext, run: UpRun, stack: Stack, placements: list[tuple[str, str]]) -> None:
    if ctx.spec.orchestration.mode == "swarm-mode":
        deploy_stack(ctx, stack, compose_env(ctx, leader_of(ctx.spec).name))
        _wait_placed(ctx, stack, placements)
        return
    if stack.via == "swarm-master":
        _up_through_master(ctx, run, stack, placements)
        return
    with ThreadPoolExecutor(max_workers=len(placements)) as pool:
        list(pool.map(lambda p: _up_service(ctx, run, stack, *p), placements))


def _up_through_master(
    ctx: LabContext, run: UpRun, stack: Stack, placements: list[tuple[str, str]]
) -> None:
    """docker-compose against the classic swarm master, each service pinned to its node
    by swarm's `constraint:node==X` environment entry, in an override file of the
    stack's own compose version (validate holds it to 2.0-2.3, what swarm 1.2.9 takes)."""
    version = read_compose_file(ctx.resolve_spec_path(stack.file)).version(default="1")
    override = {
        "version": version,
        "services": {
            svc: {"environment": [f"constraint:node=={node}"]} for svc, node in placements
        },
    }
    path = ctx.layout.state_dir / "stacks" / f"{stack.name}.swarm-master.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(override, sort_keys=False))
    argv = [*compose_argv(ctx, stack), "-f", str(path), "up", "-d"]
    env = {**compose_env(ctx, placements[0][1]), **swarm_env(ctx)}
    with on_node(masters(ctx.spec)[0].name):
        run.compose.run(argv, env=env, timeout=COMPOSE_TIMEOUT)


def _wait_placed(ctx: LabContext, stack: Stack, placements: list[tuple[str, str]]) -> None:
    """Swarm schedules in its own time: wait until each service runs where placed."""
    late = list(placements)

    def all_running() -> bool:
        late[:] = [(svc, node) for svc, node in late if not converged(ctx, stack, svc, node)]
        return not late

    if not wait_until(all_running, PLACE_TIMEOUT, interval=0.5):
        where = ", ".join(f"{svc} on {node}" for svc, node in late)
        raise OverlaylabError(
            f"stack {stack.name}: not running after {PLACE_TIMEOUT:.0f}s: {where}. "
            f"`docker service ps {stack.name}_<service>` on a manager says why "
            "(an image missing on that node, a constraint no node meets)."
        )


def compose_runs(spec: ClusterSpec) -> int:
    """How many docker-compose commands ensure_stacks runs for a fresh lab."""
    if spec.orchestration.mode == "swarm-mode":
        return 0  # `docker stack deploy`
    return sum(1 if s.via == "swarm-master" else len(s.services) for s in spec.stacks)


def _up_service(ctx: LabContext, run: UpRun, stack: Stack, service: str, node: str) -> None:
    argv = compose_argv(ctx, stack, "up", "-d", "--no-deps", service)
    with on_node(node):
        run.compose.run(argv, env=compose_env(ctx, node), timeout=COMPOSE_TIMEOUT)


def ensure_stacks(ctx: LabContext, run: UpRun) -> bool:
    state = ctx.state
    done: dict[str, str] = state.get("stacks", {})
    changed = False
    for stack in ctx.spec.stacks:
        fingerprint = _fingerprint(ctx, stack)
        placements = sorted(stack.services.items())
        states = {(svc, node): _placement_state(ctx, stack, svc, node) for svc, node in placements}
        if done.get(stack.name) == fingerprint and set(states.values()) == {"running"}:
            ctx.progress.item(stack.name, "up to date")
            continue
        for (service, node), why in sorted(states.items()):
            if why not in ("running", "missing"):
                ctx.progress.item(node, f"{stack.name}/{service} {why}: starting it afresh")
                _remove_broken(ctx, stack, service, node)
        _deploy(ctx, run, stack, placements)
        for service, node in placements:
            ctx.progress.item(node, f"{stack.name}/{service} running")
        done[stack.name] = fingerprint
        state.set("stacks", done)
        changed = True
    return changed
