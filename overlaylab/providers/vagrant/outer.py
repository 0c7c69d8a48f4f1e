"""The "outer" dockerd that Vagrant's docker provider drives, in a namespace of the lab's own.

Shape (cluster `vg`, lab subnet 192.168.93.0/24):

    host ── ol-vg (veth, 192.168.93.1) ──┐   netns ol-vg._vagrant
                                         │   dockerd (data, exec root, socket under
                                         │     <state>/nodes/_vagrant), docker0 10.0.2.1/24
                                         br0 = docker network `ol-vg`, 192.168.93.0/24
                                         ├── machine a: eth1 192.168.93.11 (eth0 on docker0)
                                         └── machine b: eth1 192.168.93.12

- Vagrant's `private_network` on the lab subnet finds the network `ol-<cluster>` by its
  subnet and connects each machine to it (eth1), as VirtualBox's host-only adapter did;
  the host's end of the host link is a port of the same bridge, so the host (vagrant's
  SSH, fabric, docker-py) reaches every machine at its lab address and nowhere else.
- docker0 (each machine's eth0) is VirtualBox's NAT network, 10.0.2.0/24: a dead end,
  reachable from no host route. The namespace has no default route, so nothing a
  machine sends leaves the lab; the dockerd's iptables rules live in the namespace,
  and the host's firewall is untouched.
- Every name follows the local provider's conventions (namespace `ol-<cluster>.`
  prefix, cgroup parent `overlaylab-<cluster>.`, files under the lab's state folder,
  host link `ol-<cluster>`, the engine's folder shaped like a node's), so the lab's
  by-name teardown finds all of it, whatever state it was left in.
- The dockerd runs in the namespace through `nsenter --net` + `unshare --uts`, never
  `ip netns exec` (which remounts /sys; dockerd then dies on "Devices cgroup isn't
  mounted").

One module (~360 lines) because it is one engine's life: its namespace, its network and
its teardown must agree on the same names, and are read together.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import docker

from overlaylab import cgroups
from overlaylab.errors import OverlaylabError
from overlaylab.layout import CGROUP_PREFIX, LABEL_CLUSTER, LABEL_ROLE, LabLayout
from overlaylab.logtail import file_tail
from overlaylab.providers.local import plumbing, teardown
from overlaylab.providers.local.node import service_env
from overlaylab.spec.models import ClusterSpec
from overlaylab.waiting import wait_until

# The engine's pseudo-node name: the underscore keeps it apart from every node's name.
OUTER_NODE = "_vagrant"
SERVICE = "dockerd"
# VirtualBox's NAT network, where every VM's eth0 lives; never routed from the host.
NAT_BRIDGE_IP = "10.0.2.1/24"
LAB_BRIDGE = "br0"  # LabLayout.SWITCH_BRIDGE: the lab switch of this lab
HOST_PORT = "host"  # LabLayout.SWITCH_HOST_PORT: the host link's end on the switch
START_TIMEOUT = 30.0
STOP_TIMEOUT = 20.0
START_MARKER = "--- overlaylab: starting"

OnItem = Callable[[str, str], None]


class OuterEngineError(OverlaylabError):
    """The outer engine could not be started or reached; carries its log tail."""


@dataclass(frozen=True)
class OuterEngine:
    layout: LabLayout
    subnet: ipaddress.IPv4Network
    host_address: ipaddress.IPv4Address
    gateway: ipaddress.IPv4Address  # the lab bridge's own address (the engine's side)
    mtu: int = 1500

    @classmethod
    def for_spec(cls, spec: ClusterSpec, layout: LabLayout) -> OuterEngine:
        subnet = spec.lab.subnet
        host, gateway = lab_addresses(subnet, (n.address for n in spec.nodes if n.address))
        return cls(layout, subnet, host, gateway, spec.lab.mtu)

    # --- names and paths ---------------------------------------------------------------
    @property
    def netns(self) -> str:
        return self.layout.node_ns(OUTER_NODE)

    @property
    def dir(self) -> Path:
        # Shaped like a local node's folder (data/, exec/): teardown's shim-socket
        # clean-up and mount scan then cover this engine as they cover a node's.
        return self.layout.node_dir(OUTER_NODE)

    @property
    def socket(self) -> Path:
        return self.dir / "docker.sock"

    @property
    def docker_host(self) -> str:
        """DOCKER_HOST for vagrant, the docker CLI and docker-py."""
        return f"unix://{self.socket}"

    @property
    def network_name(self) -> str:
        # The name the machines file gives the lab network (libvirt's network too).
        return f"ol-{self.layout.cluster}"

    @property
    def host_link(self) -> str:
        return self.layout.host_link

    @property
    def cgroup_parent(self) -> str:
        return self.layout.cgroup_parent(OUTER_NODE)

    @property
    def pid_file(self) -> Path:
        return self.dir / "dockerd.pid"

    @property
    def log_file(self) -> Path:
        return self.dir / "dockerd.log"

    @property
    def config_file(self) -> Path:
        return self.dir / "daemon.json"

    def env(self) -> dict[str, str]:
        return {"DOCKER_HOST": self.docker_host}

    def daemon_config(self) -> dict[str, object]:
        return {
            "data-root": str(self.dir / "data"),
            "exec-root": str(self.dir / "exec"),
            "pidfile": str(self.pid_file),
            # Else dockerd 20.10 writes its trust key into the host's /etc/docker.
            "deprecated-key-path": str(self.dir / "key.json"),
            "hosts": [self.docker_host],
            "cgroup-parent": self.cgroup_parent,
            # systemd on cgroup v2 would pick the systemd driver, which refuses a
            # cgroup-parent that is not a .slice.
            "exec-opts": ["native.cgroupdriver=cgroupfs"],
            "bip": NAT_BRIDGE_IP,
            "mtu": self.mtu,
            "labels": [f"{LABEL_CLUSTER}={self.layout.cluster}", f"{LABEL_ROLE}=vagrant-engine"],
            "shutdown-timeout": 5,
        }

    def dockerd_argv(self) -> list[str]:
        """The engine's command line, entering the lab's namespace (not `ip netns exec`)."""
        dockerd = ["dockerd", "--config-file", str(self.config_file)]
        return plumbing.in_namespace(self.netns, f"{self.layout.cluster}-vagrant", dockerd)

    def lab_network_options(self) -> dict[str, Any]:
        """docker-py `networks.create` arguments of the lab network."""
        pool = docker.types.IPAMPool(subnet=str(self.subnet), gateway=str(self.gateway))
        return {
            "driver": "bridge",
            "ipam": docker.types.IPAMConfig(pool_configs=[pool]),
            "options": {
                "com.docker.network.bridge.name": LAB_BRIDGE,
                "com.docker.network.driver.mtu": str(self.mtu),
            },
            "labels": {LABEL_CLUSTER: self.layout.cluster, LABEL_ROLE: "lab-network"},
        }

    # --- life cycle ----------------------------------------------------------------------
    def start(self, on_item: OnItem | None = None) -> None:
        """Namespace, engine, lab network and host link; completes a half-made start."""
        say = on_item or (lambda where, msg: None)
        teardown.record_host_footprint(self.layout)
        self._ensure_netns()
        if self.pid() is None:
            self._spawn()
            say("vagrant-engine", f"dockerd in netns {self.netns}")
        self._wait_ready()
        with self.client() as client:
            self._ensure_lab_network(client)
        self._ensure_host_link()
        say("host", f"{self.host_link} {self.host_address}/{self.subnet.prefixlen}")

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Stop the engine (its containers stop with it); the namespace and data stay."""
        pid = self.pid()
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        if not wait_until(lambda: self.pid() is None, timeout, interval=0.1):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            wait_until(lambda: self.pid() is None, 5, interval=0.1)

    def remove(self) -> list[str]:
        """Everything of the lab on this machine, by name: engine, machines, namespace,
        host link, mounts, cgroups, state folder. Raises TeardownIncomplete on leftovers."""
        self.stop(timeout=5)
        try:
            return teardown.destroy_local_lab(self.layout)
        finally:
            remove_nested_cgroups(self.layout)

    def pid(self) -> int | None:
        """The engine's pid while it runs (a live dockerd, not a recycled pid)."""
        try:
            pid = int(self.pid_file.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        try:
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return None
        return pid if comm == SERVICE and state != "Z" else None

    @contextlib.contextmanager
    def client(self, timeout: int = 60) -> Iterator[docker.DockerClient]:
        client = docker.DockerClient(base_url=self.docker_host, timeout=timeout, version="auto")
        try:
            yield client
        finally:
            client.close()

    def ping(self) -> bool:
        if not self.socket.exists():
            return False
        try:
            with self.client(timeout=2) as client:
                return bool(client.ping())
        except (docker.errors.DockerException, OSError):
            return False

    def log_tail(self, lines: int = 15) -> str:
        return file_tail(self.log_file, lines, after=START_MARKER)

    # --- pieces ---------------------------------------------------------------------------
    def _ensure_netns(self) -> None:
        plumbing.retrying(lambda: plumbing.create_namespace(self.netns))
        with plumbing.links(self.netns) as inside:
            inside.set("lo", state="up")

    def _spawn(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(json.dumps(self.daemon_config(), indent=2) + "\n")
        # A pid file left by a killed engine makes the next one refuse to start.
        self.pid_file.unlink(missing_ok=True)
        with self.log_file.open("ab") as log:
            log.write(f"{START_MARKER} {SERVICE} at {time.time():.3f}\n".encode())
            log.flush()
            subprocess.Popen(
                self.dockerd_argv(),
                # Its containerd's stack dump, when the engine finds it unhealthy, lands in
                # the engine's folder (gone with `down`), not in /tmp.
                env=service_env(self.dir),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
            )

    def _wait_ready(self) -> None:
        if wait_until(self.ping, START_TIMEOUT, interval=0.1):
            return
        raise OuterEngineError(
            f"the Vagrant engine (dockerd in netns {self.netns}) did not answer on "
            f"{self.socket} within {START_TIMEOUT:.0f}s. Its log ({self.log_file}) ends:\n"
            f"{self.log_tail()}"
        )

    def _ensure_lab_network(self, client: docker.DockerClient) -> None:
        found = client.networks.list(names=[self.network_name])
        for network in found:
            configs = (network.attrs.get("IPAM") or {}).get("Config") or []
            if [c.get("Subnet") for c in configs] == [str(self.subnet)]:
                return
            # Another subnet (the spec changed): its machines must go first.
            if network.attrs.get("Containers"):
                raise OuterEngineError(
                    f"docker network {self.network_name} on the Vagrant engine has subnet "
                    f"{configs} but the spec says {self.subnet}, and machines use it: "
                    "take the lab down (`invoke down`) and bring it up again"
                )
            network.remove()
        client.networks.create(self.network_name, **self.lab_network_options())

    def _ensure_host_link(self) -> None:
        """This machine's link to the bridge docker made for the lab network."""
        cable = partial(
            plumbing.cable_host,
            self.host_link,
            self.netns,
            HOST_PORT,
            LAB_BRIDGE,
            str(self.host_address),
            self.subnet.prefixlen,
            self.mtu,
        )
        plumbing.retrying(cable)


def nested_lab_cgroups(layout: LabLayout, depth: int = 3) -> list[Path]:
    """The lab's cgroups below the top of each hierarchy.

    A process inside a cgroup namespace (a CI job, a sandboxed shell) has its cgroup
    root somewhere down the hierarchy, and runc places the engine's containers under
    that root, e.g. memory/process_api/<id>/overlaylab-<cluster>._vagrant/<container>.
    """
    found: list[Path] = []
    # Top-level groups of the lab are teardown.lab_cgroups'; look below the others.
    level = [
        group
        for top in cgroups.hierarchy_tops(teardown.CGROUP_ROOT)
        for parent in cgroups.subgroups(top)
        if not parent.name.startswith(CGROUP_PREFIX)
        for group in cgroups.subgroups(parent)
    ]
    for _ in range(depth):
        below: list[Path] = []
        for group in level:
            if group.name.startswith(layout.cgroup_prefix):
                found.append(group)
            elif not group.name.startswith(CGROUP_PREFIX):
                below += cgroups.subgroups(group)
        level = below
    return found


def remove_nested_cgroups(layout: LabLayout) -> int:
    """rmdir the lab's nested cgroups, deepest first (each must be empty by now)."""
    removed = 0
    for group in nested_lab_cgroups(layout):
        subs = sorted((p for p in group.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts))
        for sub in [*subs, group]:
            with contextlib.suppress(OSError):
                sub.rmdir()
                removed += sub == group
    return removed


def lab_addresses(
    subnet: ipaddress.IPv4Network, taken: Iterable[ipaddress.IPv4Address]
) -> tuple[ipaddress.IPv4Address, ipaddress.IPv4Address]:
    """(host address, bridge address): the lowest and highest hosts no node uses."""
    used = set(taken)
    host = next((a for a in subnet.hosts() if a not in used), None)
    gateway = next((a for a in _hosts_descending(subnet) if a not in used and a != host), None)
    if host is None or gateway is None:
        raise OuterEngineError(
            f"lab.subnet {subnet} has no room for the host's and the Vagrant engine's "
            "addresses beside the nodes' (each needs a host address no node uses): "
            "use a larger subnet"
        )
    return host, gateway


def _hosts_descending(subnet: ipaddress.IPv4Network) -> Iterator[ipaddress.IPv4Address]:
    address = subnet.broadcast_address - 1
    while address > subnet.network_address:
        yield address
        address -= 1
