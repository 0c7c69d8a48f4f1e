"""What each node runs: daemon.json, the dockerd drop-in, the KV store's unit.

The text comes from overlaylab.nodeconf, the functions `up` writes the same files
with; here they get the paths each kind of node has. The local provider's engines
are configured exactly as `up` configures them (state under the lab's folder, one
dockerd per namespace). On a real host (vagrant, ssh, docker-machine) the node's one
dockerd reads /etc/docker/daemon.json with its TLS files under /etc/docker/overlaylab/,
and a systemd drop-in, the way docker-machine configured its engines, starts it
without flags: dockerd refuses to start when `hosts` comes both from a `-H` flag (the
packaged unit's `-H fd://`) and from daemon.json. Nothing here builds a provider or
opens a lab.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from overlaylab import nodeconf
from overlaylab.layout import LabLayout
from overlaylab.spec.models import ClusterSpec, LocalProviderSpec, Node

# The same places the ssh and vagrant providers use with `engine: host`.
HOST_DAEMON_JSON = str(nodeconf.HOST_DAEMON_JSON)
# A real host's lab folder: fixed, whatever OVERLAYLAB_STATE_ROOT says on this machine.
HOST_STATE_ROOT = Path("/var/lib/overlaylab")
DEBIAN_DOCKERD = nodeconf.DEBIAN_DOCKERD


def is_local(spec: ClusterSpec) -> bool:
    return isinstance(spec.provider, LocalProviderSpec)


def host_state_dir(spec: ClusterSpec) -> Path:
    """Where a real KV host keeps the store's data: the lab's folder, as locally."""
    return HOST_STATE_ROOT / spec.name


def daemon_json(spec: ClusterSpec, node: Node) -> str:
    """The node's daemon.json text, as `up` writes it: a local node's in its folder
    of the lab, with its cgroup; a real host's for its one dockerd (dockerd's own
    defaults for data, exec root and cgroups)."""
    if is_local(spec):
        layout = LabLayout.for_spec(spec)
        paths, cgroup_parent = layout.node_paths(node.name), layout.cgroup_parent(node.name)
    else:
        paths, cgroup_parent = nodeconf.host_engine_paths(PurePosixPath(host_state_dir(spec))), None
    return nodeconf.daemon_json(nodeconf.daemon_config(spec, node, paths, cgroup_parent))


def dockerd_drop_in(spec: ClusterSpec, node: Node, dockerd: str = DEBIAN_DOCKERD) -> str:
    return nodeconf.dockerd_drop_in(spec.name, node.name, dockerd)


# --- the KV store ---------------------------------------------------------------------


def kv_node_dir(spec: ClusterSpec) -> Path:
    assert spec.kv is not None
    if is_local(spec):
        return LabLayout.for_spec(spec).node_dir(spec.kv.node)
    return host_state_dir(spec)


def kv_unit(spec: ClusterSpec) -> str:
    """A systemd unit running the KV store with the arguments `up` uses."""
    return nodeconf.kv_unit(spec, kv_node_dir(spec), local=is_local(spec))


def kv_zookeeper_config(spec: ClusterSpec) -> str:
    return nodeconf.zookeeper_config(spec, kv_node_dir(spec))
