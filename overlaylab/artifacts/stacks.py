"""Each stack's compose file and its placement: which node runs each service, and the
Docker endpoint its `docker-compose up` runs against (what `up` does, one service
per engine, with compose v1)."""

from __future__ import annotations

import shlex
from pathlib import PurePosixPath
from typing import Any

from overlaylab import nodeconf
from overlaylab.layout import LabLayout
from overlaylab.spec.compose import read_compose_file
from overlaylab.spec.loader import LoadedSpec
from overlaylab.spec.models import ClusterSpec, DockerMachineSpec, LocalProviderSpec, Stack
from overlaylab.spec.paths import resolve_in_spec_dir
from overlaylab.templates import render


def compose_name(stack: Stack) -> str:
    return PurePosixPath(stack.file).name


def compose_text(loaded: LoadedSpec, stack: Stack) -> str:
    return read_compose_file(resolve_in_spec_dir(loaded.spec_dir, stack.file)).text


def engine_environment(loaded: LoadedSpec, node: str) -> dict[str, str]:
    """DOCKER_* for one node's engine, as `invoke env NODE` prints them."""
    spec = loaded.spec
    if isinstance(spec.provider, LocalProviderSpec):
        return nodeconf.local_engine_env(spec, LabLayout.for_spec(spec), node)
    if isinstance(spec.provider, DockerMachineSpec):
        return {}  # its address comes from DHCP and its certificates are its own
    return remote_engine_environment(spec, node)


def remote_engine_environment(spec: ClusterSpec, node: str) -> dict[str, str]:
    """A real host's engine from this machine: TCP with the lab's client certificate."""
    if not spec.engine.tls:
        # No TCP listener without TLS (daemon.json's hosts): run compose on the node.
        return {"DOCKER_HOST": "unix:///var/run/docker.sock"}
    return nodeconf.tls_engine_env(spec, node, LabLayout.for_cluster(spec.name).client_cert_dir)


def env_command(spec: ClusterSpec, node: str) -> str | None:
    if isinstance(spec.provider, DockerMachineSpec):
        return f'eval "$(docker-machine env {shlex.quote(node)})"'
    return None


def placement_data(loaded: LoadedSpec, stack: Stack) -> dict[str, Any]:
    spec = loaded.spec
    services = []
    for service, node in sorted(stack.services.items()):
        up = ["docker-compose", "-p", stack.name, "-f", compose_name(stack)]
        up += ["up", "-d", "--no-deps", service]
        services.append(
            {
                "service": service,
                "node": node,
                "address": str(spec.address_of(node)),
                "environment": engine_environment(loaded, node),
                "env_command": env_command(spec, node),
                "command": shlex.join(up),
            }
        )
    return {
        "cluster": spec.name,
        "stack": stack.name,
        "compose_file": compose_name(stack),
        "source": loaded.path.as_posix(),
        "services": services,
    }


def placement_yml(loaded: LoadedSpec, stack: Stack) -> str:
    return render("placement.yml.j2", **placement_data(loaded, stack))
