"""Compose stacks, each service on the node the spec names: docker-compose v1 per node,
or `docker stack deploy` through a manager in swarm mode (swarm_stacks.py)."""

from __future__ import annotations

import hashlib
import os
import re
from concurrent.futures import ThreadPoolExecutor

import yaml

from overlaylab.context import LabContext
from overlaylab.errors import OverlaylabError, on_node
from overlaylab.spec.compose import load_compose, read_compose_text
from overlaylab.spec.models import ClusterSpec, Stack
from overlaylab.steps.classic_swarm import masters, swarm_env
from overlaylab.steps.compose_warm import COMPOSE
from overlaylab.steps.swarm import leader_of, service_name
from overlaylab.steps.swarm_stacks import converged, deploy_stack
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
    digest = hashlib.sha256(read_compose_text(ctx.resolve_spec_path(stack.file)).encode())
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


def _running(ctx: LabContext, stack: Stack, service: str, node: str) -> bool:
    with ctx.node(node).engine() as client:
        labels = service_labels(ctx.spec, stack, service)
        found = client.containers.list(filters={"label": labels})
    return any(c.status == "running" for c in found)


def _deploy(ctx: LabContext, stack: Stack, placements: list[tuple[str, str]]) -> None:
    if ctx.spec.orchestration.mode == "swarm-mode":
        deploy_stack(ctx, stack, compose_env(ctx, leader_of(ctx.spec).name))
        _wait_placed(ctx, stack, placements)
        return
    if stack.via == "swarm-master":
        _up_through_master(ctx, stack, placements)
        return
    with ThreadPoolExecutor(max_workers=len(placements)) as pool:
        list(pool.map(lambda p: _up_service(ctx, stack, *p), placements))


def _up_through_master(ctx: LabContext, stack: Stack, placements: list[tuple[str, str]]) -> None:
    """docker-compose against the classic swarm master, each service pinned to its node
    by swarm's `constraint:node==X` environment entry, in an override file."""
    source = ctx.resolve_spec_path(stack.file)
    version = str((load_compose(source) or {}).get("version", "1"))
    if not re.fullmatch(r"2(\.[0-3])?", version):
        raise OverlaylabError(
            f"stack {stack.name} (via: swarm-master): {source} is compose file version "
            f"{version}; swarm 1.2.9 speaks API 1.30, which compose allows for versions "
            '2.0 to 2.3: write it as version: "2.3", or use via: node'
        )
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
        ctx.compose.run(argv, env=env, timeout=COMPOSE_TIMEOUT)


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


def _up_service(ctx: LabContext, stack: Stack, service: str, node: str) -> None:
    argv = compose_argv(ctx, stack, "up", "-d", "--no-deps", service)
    with on_node(node):
        ctx.compose.run(argv, env=compose_env(ctx, node), timeout=COMPOSE_TIMEOUT)


def ensure_stacks(ctx: LabContext) -> bool:
    state = ctx.state
    done: dict[str, str] = state.get("stacks", {})
    changed = False
    for stack in ctx.spec.stacks:
        fingerprint = _fingerprint(ctx, stack)
        placements = sorted(stack.services.items())
        if done.get(stack.name) == fingerprint and all(
            _running(ctx, stack, svc, node) for svc, node in placements
        ):
            ctx.progress.item(stack.name, "up to date")
            continue
        _deploy(ctx, stack, placements)
        for service, node in placements:
            ctx.progress.item(node, f"{stack.name}/{service} running")
        done[stack.name] = fingerprint
        state.set("stacks", done)
        changed = True
    return changed
