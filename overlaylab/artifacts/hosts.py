"""What each node runs: daemon.json, the dockerd drop-in, the KV store's unit.

The local provider's engines are configured exactly as `up` configures them
(`steps.engines.daemon_config`: state under the lab's folder, one dockerd per
namespace). On a real host (vagrant, ssh, docker-machine) the node's one dockerd
reads /etc/docker/daemon.json with its TLS files under /etc/docker/overlaylab/, and a
systemd drop-in, the way docker-machine configured its engines, starts it without
flags: dockerd refuses to start when `hosts` comes both from a `-H` flag (the
packaged unit's `-H fd://`) and from daemon.json.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from overlaylab.context import context_for
from overlaylab.layout import LabLayout
from overlaylab.providers.ssh import host_engine
from overlaylab.spec.loader import LoadedSpec
from overlaylab.spec.models import ClusterSpec, LocalProviderSpec, Node
from overlaylab.templates import render
from overlaylab.up.steps.engines import daemon_config, render_daemon_config
from overlaylab.up.steps.kv import kv_argv, zookeeper_config

# The same places the ssh and vagrant providers use with `engine: host`.
HOST_DAEMON_JSON = str(host_engine.DAEMON_JSON)
HOST_TLS_DIR = str(host_engine.TLS_DIR)
HOST_DOCKER_SOCKET = str(host_engine.DOCKER_SOCKET)
# A real host's lab folder: fixed, whatever OVERLAYLAB_STATE_ROOT says on this machine.
HOST_STATE_ROOT = Path("/var/lib/overlaylab")
DEBIAN_DOCKERD = host_engine.DEBIAN_DOCKERD
# systemd wants absolute paths. etcd is Debian's etcd-server; Debian has no consul,
# so a consul binary is put where hand-installed binaries go.
KV_EXECUTABLES = {"etcd": "/usr/bin/etcd", "consul": "/usr/local/bin/consul"}


def is_local(spec: ClusterSpec) -> bool:
    return isinstance(spec.provider, LocalProviderSpec)


def host_state_dir(spec: ClusterSpec) -> Path:
    """Where a real KV host keeps the store's data: the lab's folder, as locally."""
    return HOST_STATE_ROOT / spec.name


def host_daemon_config(spec: ClusterSpec, node: Node) -> dict[str, Any]:
    """A real host's /etc/docker/daemon.json: the lab's keys, dockerd's own defaults
    for data, exec root and cgroups (templates/daemon.json.j2 without node_dir)."""
    return render_daemon_config(spec, node, docker_socket=HOST_DOCKER_SOCKET, tls_dir=HOST_TLS_DIR)


def daemon_json(loaded: LoadedSpec, node: Node) -> str:
    """The node's daemon.json text, as `up` writes it (sorted keys, 2-space indent)."""
    spec = loaded.spec
    if is_local(spec):
        config = daemon_config(context_for(spec, loaded.path, warnings=[]), node)
    else:
        config = host_daemon_config(spec, node)
    return json.dumps(config, indent=2, sort_keys=True) + "\n"


def local_layout(loaded: LoadedSpec) -> LabLayout:
    return context_for(loaded.spec, loaded.path, warnings=[]).layout


def dockerd_drop_in(spec: ClusterSpec, node: Node, dockerd: str = DEBIAN_DOCKERD) -> str:
    return host_engine.drop_in_text(spec.name, node.name, dockerd)


# --- the KV store ---------------------------------------------------------------------

_SYSTEMD_PLAIN = re.compile(r"^[A-Za-z0-9_@%$+=:,./-]+$")


def systemd_quote(arg: str) -> str:
    """One ExecStart argument: quoted when needed; % and $ doubled (systemd expands
    specifiers and variables even inside quotes)."""
    escaped = arg.replace("%", "%%").replace("$", "$$")
    if _SYSTEMD_PLAIN.match(escaped):
        return escaped
    return '"' + escaped.replace("\\", "\\\\").replace('"', '\\"') + '"'


def kv_node_dir(loaded: LoadedSpec) -> Path:
    spec = loaded.spec
    assert spec.kv is not None
    if is_local(spec):
        return local_layout(loaded).node_dir(spec.kv.node)
    return host_state_dir(spec)


def kv_unit_name(spec: ClusterSpec) -> str:
    assert spec.kv is not None
    return f"overlaylab-{spec.name}-{spec.kv.backend}.service"


def kv_unit(loaded: LoadedSpec) -> str:
    """A systemd unit running the KV store with the arguments `up` uses (steps/kv.py)."""
    spec = loaded.spec
    assert spec.kv is not None
    _, argv = kv_argv(spec, kv_node_dir(loaded))
    executable = KV_EXECUTABLES.get(argv[0], argv[0])
    return render(
        "kv.service.j2",
        cluster=spec.name,
        node=spec.kv.node,
        backend=spec.kv.backend,
        local=is_local(spec),
        namespace=LabLayout.for_cluster(spec.name).node_ns(spec.kv.node),
        unit_name=kv_unit_name(spec),
        exec_start=" ".join(systemd_quote(a) for a in [executable, *argv[1:]]),
    )


def kv_zookeeper_config(loaded: LoadedSpec) -> str:
    return zookeeper_config(loaded.spec, kv_node_dir(loaded))
