"""Names and paths of everything a lab makes on this machine, and of a node's files.

Every resource carries the cluster's name so that `down` and the leak checks can
find it from names alone, even when the state file is gone (kind's delete works
the same way, from labels and names).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from overlaylab.spec.models import ClusterSpec

# The spec every command takes when none is named (relative to where it runs).
DEFAULT_SPEC = "inventory/lab.yml"
DEFAULT_STATE_ROOT = Path(os.environ.get("OVERLAYLAB_STATE_ROOT", "/var/lib/overlaylab"))
NETNS_PREFIX = "ol-"
CGROUP_PREFIX = "overlaylab-"
LABEL_CLUSTER = "overlaylab.cluster"
LABEL_ROLE = "overlaylab.role"


@dataclass(frozen=True)
class LabLayout:
    cluster: str
    state_dir: Path

    @classmethod
    def for_cluster(cls, cluster: str, state_dir: str | Path | None = None) -> LabLayout:
        return cls(cluster, Path(state_dir) if state_dir else DEFAULT_STATE_ROOT / cluster)

    @classmethod
    def for_spec(cls, spec: ClusterSpec) -> LabLayout:
        """The spec's lab on this machine: in the local provider's `state_dir` when the
        spec names one, else under the state root."""
        provider = spec.provider
        return cls.for_cluster(spec.name, provider.state_dir if provider.type == "local" else None)

    # --- network namespaces and links ---------------------------------------------
    # The cluster name ends at a dot, a character no cluster or node name may hold:
    # with a dash, lab `lab` would also claim `ol-lab-x.node1`, lab `lab-x`'s node.
    @property
    def ns_prefix(self) -> str:
        return f"{NETNS_PREFIX}{self.cluster}."

    @property
    def switch_ns(self) -> str:
        # An underscore cannot appear in a node name: never a node's namespace.
        return f"{self.ns_prefix}_switch"

    def node_ns(self, node: str) -> str:
        return f"{self.ns_prefix}{node}"

    def owns_ns(self, name: str) -> bool:
        return name.startswith(self.ns_prefix)

    @property
    def host_link(self) -> str:
        """The host's end of its link to the lab switch (<= 15 characters)."""
        return f"{NETNS_PREFIX}{self.cluster}"

    @staticmethod
    def switch_port(node: str) -> str:
        return f"p-{node}"

    SWITCH_BRIDGE = "br0"
    SWITCH_HOST_PORT = "host"
    NODE_IFACE = "eth1"

    # --- files ---------------------------------------------------------------------
    def node_dir(self, node: str) -> Path:
        return self.state_dir / "nodes" / node

    def node_paths(self, node: str) -> NodePaths:
        """A local node's files, as its handle and `invoke render` see them: all of
        its engine's in the node's folder (several engines share this machine)."""
        return NodePaths.under(PurePosixPath(self.node_dir(node)))

    def docker_socket(self, node: str) -> Path:
        return self.node_dir(node) / "docker.sock"

    def daemon_config(self, node: str) -> Path:
        return self.node_dir(node) / "daemon.json"

    def pid_file(self, node: str, service: str) -> Path:
        return self.node_dir(node) / f"{service}.pid"

    def log_file(self, node: str, service: str) -> Path:
        return self.node_dir(node) / f"{service}.log"

    @property
    def tls_dir(self) -> Path:
        return self.state_dir / "tls"

    @property
    def client_cert_dir(self) -> Path:
        return self.tls_dir / "client"

    @property
    def state_file(self) -> Path:
        return self.state_dir / "state.json"

    @property
    def images_dir(self) -> Path:
        return self.state_dir / "images"

    # --- cgroups -------------------------------------------------------------------
    def cgroup_parent(self, node: str) -> str:
        return f"{self.cgroup_prefix}{node}"

    @property
    def cgroup_prefix(self) -> str:
        return f"{CGROUP_PREFIX}{self.cluster}."  # the dot ends the name, as above


# The images step's record of what it loaded into a node's engine (NodePaths.images_record).
IMAGES_RECORD = "images.loaded"


@dataclass(frozen=True)
class NodePaths:
    """Where the lab keeps a node's files, as the node itself sees them.

    On the local provider these are folders of this machine; on a remote host they
    are paths on that host. Steps build configuration (daemon.json, certificates)
    from them and hand the bytes to `Node.put_file`.
    """

    root: PurePosixPath  # the lab's own folder on the node
    daemon_config: PurePosixPath
    tls_dir: PurePosixPath
    docker_socket: PurePosixPath
    # True when the lab's engine is the node's only tenant of `root` and keeps its data,
    # exec root and pid file there; False on a real host, whose dockerd keeps its own.
    private_engine: bool = True

    @classmethod
    def under(cls, root: PurePosixPath) -> NodePaths:
        """Everything of the lab's engine inside one folder (several engines per machine)."""
        return cls(
            root=root,
            daemon_config=root / "daemon.json",
            tls_dir=root / "tls",
            docker_socket=root / "docker.sock",
        )

    @property
    def images_record(self) -> PurePosixPath:
        """The images step's record of what it loaded into the engine, one name a line:
        what `down` removes from an engine that outlives the lab (`engine: host`)."""
        return self.root / IMAGES_RECORD

    @property
    def exec_root(self) -> PurePosixPath:
        """The engine's exec root (its overlay sandboxes live in <exec-root>/netns): the
        lab's folder for its own engine (templates/daemon.json.j2), dockerd's default
        on a host whose engine keeps its own places."""
        return self.root / "exec" if self.private_engine else PurePosixPath("/var/run/docker")

    def data(self, service: str) -> PurePosixPath:
        """A service's own data folder (etcd's data-dir, zookeeper's dataDir...)."""
        return self.root / service


def probe_name(network: str, node: str, slot: str = "a") -> str:
    """verify's probe container on `network` at `node` (slot "b": the second one, for
    same-host paths). `up` names them too, when it asks a node's probes for peers."""
    return f"probe-{network}-{node}" + ("" if slot == "a" else f"-{slot}")


def schedule_address(spec: ClusterSpec, network: str, node: str) -> str | None:
    """The overlay address verify's classic-swarm scheduling probe for `node` takes on
    `network`: one of the subnet's last, one per engine node, always the same.

    The probe is started and removed on every verify. With addresses handed out anew,
    the next container anywhere got the one it just freed; an engine that missed the
    leave (gossip cut, or an old join replayed when gossip came back) kept sending it
    to the wrong engine, and the lab went on failing after the fault was gone. A fixed
    address per node is only ever used on that node, so such a leftover points where
    the next probe will be. None without classic swarm or a subnet in the spec (the
    engine then picks an address)."""
    if spec.orchestration.mode != "classic-swarm":
        return None
    subnet = next((n.subnet for n in spec.networks if n.name == network), None)
    engines = [n.name for n in spec.engine_nodes]
    if subnet is None or node not in engines or subnet.num_addresses < 2 * len(engines) + 8:
        return None
    return str(subnet.broadcast_address - 1 - engines.index(node))
