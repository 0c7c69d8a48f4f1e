"""Names and paths of everything a lab makes on this machine.

Every resource carries the cluster's name so that `down` and the leak checks can
find it from names alone, even when the state file is gone (kind's delete works
the same way, from labels and names).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

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


def probe_name(network: str, node: str, slot: str = "a") -> str:
    """verify's probe container on `network` at `node` (slot "b": the second one, for
    same-host paths). `up` names them too, when it asks a node's probes for peers."""
    return f"probe-{network}-{node}" + ("" if slot == "a" else f"-{slot}")
