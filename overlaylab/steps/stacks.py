"""Compose stacks, each service on the node the spec names (docker-compose v1)."""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor

from overlaylab.context import LabContext
from overlaylab.errors import on_node
from overlaylab.runners import HostRunner
from overlaylab.spec.models import Stack

COMPOSE = "docker-compose"


def compose_argv(ctx: LabContext, stack: Stack, *args: str) -> list[str]:
    compose_file = str(ctx.resolve_spec_path(stack.file))
    return [COMPOSE, "--no-ansi", "-p", stack.name, "-f", compose_file, *args]


# requests lets these replace a client's own CA file, which would make every lab
# engine's certificate "unverifiable" for compose: the lab CA must win.
_CA_OVERRIDES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


def compose_env(ctx: LabContext, node: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DOCKER_", "COMPOSE_")) and k not in _CA_OVERRIDES
    }
    env.update(ctx.node(node).docker_env())
    return env


def _fingerprint(ctx: LabContext, stack: Stack) -> str:
    digest = hashlib.sha256(ctx.resolve_spec_path(stack.file).read_bytes())
    digest.update(repr(sorted(stack.services.items())).encode())
    return digest.hexdigest()


def _running(ctx: LabContext, stack: Stack, service: str, node: str) -> bool:
    with ctx.node(node).engine() as client:
        found = client.containers.list(
            filters={
                "label": [
                    f"com.docker.compose.project={stack.name}",
                    f"com.docker.compose.service={service}",
                ]
            }
        )
    return any(c.status == "running" for c in found)


def _up_service(ctx: LabContext, stack: Stack, service: str, node: str) -> None:
    argv = compose_argv(ctx, stack, "up", "-d", "--no-deps", service)
    with on_node(node):
        HostRunner().run(argv, env=compose_env(ctx, node), timeout=180)


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
        with ThreadPoolExecutor(max_workers=len(placements)) as pool:
            list(pool.map(lambda p, s=stack: _up_service(ctx, s, *p), placements))
        for service, node in placements:
            ctx.progress.item(node, f"{stack.name}/{service} running")
        done[stack.name] = fingerprint
        state.set("stacks", done)
        changed = True
    return changed
