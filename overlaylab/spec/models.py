"""The cluster spec: `apiVersion: overlaylab/v1`, `kind: Cluster`.

Strict on purpose (unknown keys are errors, as in kind's config): a typo such as
`clsuter-store` must not silently fall back to a default and leave the user wondering
why the overlay never forms. Field docs become `inventory/schema.json` descriptions,
so they are written for the person editing the YAML.

One module (~370 lines) because it is the schema: each model is a YAML section, and
splitting them would scatter what `inventory/schema.json` shows in one page.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

API_VERSION = "overlaylab/v1"

# Names become namespace, interface and container names; keep them DNS-label-like
# and short enough for the 15-character Linux interface-name limit.
NAME_PATTERN = r"^[a-z][a-z0-9-]{0,11}$"
Name = Annotated[str, Field(pattern=NAME_PATTERN)]

KVBackend = Literal["etcd", "consul", "zookeeper"]
Role = Literal["kv", "engine", "swarm-master", "swarm-agent", "manager", "worker"]

DEFAULT_KV_PORTS: dict[str, int] = {"etcd": 2379, "consul": 8500, "zookeeper": 2181}
# libkv's URL scheme per backend (pkg/discovery/kv/kv.go registers consul, etcd, zk).
KV_SCHEMES: dict[str, str] = {"etcd": "etcd", "consul": "consul", "zookeeper": "zk"}


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=False)


class LabNetwork(StrictModel):
    """The lab switch every node is cabled to (the 'host-only network')."""

    subnet: ipaddress.IPv4Network = Field(
        default=ipaddress.IPv4Network("192.168.99.0/24"),
        description="Subnet of the lab switch; node addresses must lie inside it.",
    )
    mtu: int = Field(default=1500, ge=1280, le=9000, description="MTU of the lab links.")


class LocalProviderSpec(StrictModel):
    """Each node is a network + UTS namespace with its own dockerd; no VM."""

    type: Literal["local"] = "local"
    host_link: bool = Field(
        default=True,
        description="Give the host an address on the lab switch (like a VirtualBox "
        "host-only adapter) so `invoke env NODE` works over TCP+TLS from the host.",
    )
    host_address: ipaddress.IPv4Address | None = Field(
        default=None, description="Host address on the lab switch; default: first of the subnet."
    )
    nat: bool = Field(
        default=False,
        description="Also give every node an `eth0` with 10.0.2.15/24, like VirtualBox's NAT "
        "adapter: the same address on every node, reachable from none of the others.",
    )
    state_dir: str | None = Field(
        default=None,
        description="Where node data lives; default /var/lib/overlaylab/<cluster name>.",
    )


# The offline node image for Vagrant's docker provider: sshd, sudo, dockerd, user vagrant.
VAGRANT_NODE_IMAGE = "overlaylab/vagrant-node:1"


# Which dockerd a provider with real hosts configures (ssh, vagrant).
EngineHome = Annotated[
    Literal["lab", "host"],
    Field(
        description="Which dockerd the lab configures on each host. `lab`: one of the lab's own, "
        "kept in the lab folder (the host's Docker is never touched). `host`: the host's own "
        "Docker service, reconfigured the way docker-machine did it (/etc/docker/daemon.json, "
        "a systemd drop-in where systemd runs, else the host's init script); `down` restores "
        "the previous configuration and removes what the lab put in that engine.",
    ),
]


class VagrantProviderSpec(StrictModel):
    """VMs through python-vagrant; the top-level Vagrantfile reads the rendered data."""

    type: Literal["vagrant"]
    box: str = Field(
        default="debian/bookworm64", description="Vagrant box for every node (virtualbox, libvirt)."
    )
    vm_provider: Literal["virtualbox", "libvirt", "docker"] = Field(
        default="libvirt",
        description="Vagrant provider: a VM per node (virtualbox, libvirt), or a container "
        "per node running sshd and dockerd (docker).",
    )
    docker_image: str = Field(
        default=VAGRANT_NODE_IMAGE,
        description="Image of every node under Vagrant's docker provider (instead of a box).",
    )
    memory: int = Field(default=1024, ge=256, description="MiB per VM.")
    cpus: int = Field(default=1, ge=1)
    engine: EngineHome = "lab"


class DockerMachineSpec(StrictModel):
    """docker-machine, as in the 2015 guides (VirtualBox: eth0 NAT, eth1 host-only)."""

    type: Literal["docker-machine"]
    driver: str = Field(default="virtualbox", description="docker-machine --driver.")
    driver_options: dict[str, str] = Field(
        default_factory=dict, description="Extra --<driver>-<key> options, without the prefix."
    )


class SSHHost(StrictModel):
    host: str = Field(description="Address or name to SSH to.")
    port: int = Field(default=22, ge=1, le=65535)
    user: str = "root"


class SSHProviderSpec(StrictModel):
    """Existing hosts reached over SSH (fabric)."""

    type: Literal["ssh"]
    hosts: dict[str, SSHHost] = Field(description="Node name -> how to reach it over SSH.")
    key_file: str | None = Field(default=None, description="Private key for every host.")
    interfaces: list[str] = Field(
        default_factory=lambda: ["eth0", "eth1"],
        description="Interfaces the hosts are known to have (checked against cluster-advertise).",
    )
    engine: EngineHome = "lab"


Provider = Annotated[
    LocalProviderSpec | VagrantProviderSpec | DockerMachineSpec | SSHProviderSpec,
    Field(discriminator="type"),
]

# Interfaces each provider gives a node; `cluster-advertise` must name one of them.
PROVIDER_INTERFACES: dict[str, tuple[str, ...]] = {
    "local": ("eth1",),
    "vagrant": ("eth0", "eth1"),
    "docker-machine": ("eth0", "eth1"),
}


class KVStore(StrictModel):
    """The key-value store the legacy overlay and classic swarm discover through."""

    backend: KVBackend = Field(default="etcd", description="consul, etcd (v2 API) or zookeeper.")
    node: Name = Field(default="kv", description="The node (with role `kv`) that runs the store.")
    port: int | None = Field(
        default=None, ge=1, le=65535, description="Client port; default 2379/8500/2181."
    )
    path: str = Field(
        default="", pattern=r"^(/[A-Za-z0-9._-]+)*$", description="Optional URL path prefix."
    )

    @property
    def client_port(self) -> int:
        return self.port or DEFAULT_KV_PORTS[self.backend]


ADVERTISE_PATTERN = re.compile(r"^(?P<host>[A-Za-z0-9_.-]+):(?P<port>\d{1,5})$")


class Engine(StrictModel):
    """Docker engine options shared by every engine node (Docker's own spellings)."""

    version: str = Field(
        default="20.10",
        pattern=r"^\d+\.\d+$",
        description="Engine line the lab targets. Legacy cluster-store needs <= 20.10.",
    )
    cluster_store: str | None = Field(
        default="auto",
        alias="cluster-store",
        description="`auto` derives PROVIDER://KVADDR:PORT from `kv`; a URL to set it "
        "by hand; null for no KV store (swarm mode).",
    )
    cluster_advertise: str | None = Field(
        default="eth1:2376",
        alias="cluster-advertise",
        description="IFACE:PORT or IP:PORT the engine advertises to its peers.",
    )
    cluster_store_opts: dict[str, str] = Field(
        default_factory=dict,
        alias="cluster-store-opts",
        description="daemon.json cluster-store-opts (kv.path, discovery.heartbeat, ...).",
    )
    dockerd: str | None = Field(
        default=None,
        description="The dockerd the lab's engines run: an absolute path, or a name on PATH "
        "(default dockerd). E.g. Docker CE's static 20.10 dockerd, which has the consul "
        "cluster store Debian's docker.io is built without.",
    )
    tls: bool = Field(default=True, description="Serve the engine API on TCP with mutual TLS.")
    api_port: int = Field(default=2376, ge=1, le=65535, description="TCP port of the engine API.")
    daemon: dict[str, object] = Field(
        default_factory=dict, description="Extra daemon.json keys, passed through verbatim."
    )

    @field_validator("cluster_advertise")
    @classmethod
    def _advertise_form(cls, value: str | None) -> str | None:
        # dockerd's ParseAdvertise needs a port (net.SplitHostPort): say so up front.
        if value is not None and not ADVERTISE_PATTERN.match(value):
            raise ValueError("must be IFACE:PORT or IP:PORT, e.g. eth1:2376")
        return value

    @property
    def advertise_host(self) -> str | None:
        if self.cluster_advertise is None:
            return None
        return self.cluster_advertise.rsplit(":", 1)[0]

    @property
    def advertise_port(self) -> int | None:
        if self.cluster_advertise is None:
            return None
        return int(self.cluster_advertise.rsplit(":", 1)[1])

    @property
    def uses_cluster_store(self) -> bool:
        return self.cluster_store is not None


class Orchestration(StrictModel):
    """How engines are grouped: none (plain KV overlay), classic swarm or swarm mode."""

    mode: Literal["none", "classic-swarm", "swarm-mode"] = "none"
    swarm_image: str = Field(default="swarm:1.2.9", description="Classic swarm image.")
    strategy: Literal["spread", "binpack", "random"] = "spread"
    discovery: Literal["kv", "consul"] = Field(
        default="kv",
        description="Classic swarm's discovery store: `kv` (the lab's KV store) or `consul` "
        "(a consul agent on the KV node beside the engines' store, as the article's swarm "
        "used consul whatever the engines used).",
    )


class Node(StrictModel):
    name: Name
    address: ipaddress.IPv4Address | None = Field(
        default=None, description="Lab address; default: the subnet's .10, .11, ... in order."
    )
    roles: list[Role] = Field(default_factory=lambda: ["engine"], min_length=1)
    labels: dict[str, str] = Field(default_factory=dict, description="Engine labels.")

    @property
    def runs_engine(self) -> bool:
        return any(r != "kv" for r in self.roles)


# A network's MTU option. For an overlay it is the MTU of the links the network runs
# over (default 1500); libnetwork gives the containers 50 bytes less (VXLAN headers).
DRIVER_MTU_OPTION = "com.docker.network.driver.mtu"


class OverlayNetwork(StrictModel):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
    driver: str = Field(default="overlay", description="Network driver.")
    subnet: ipaddress.IPv4Network | None = Field(
        default=None, description="Known subnet (lets apps prefer it, e.g. 10.0.9.0/24)."
    )
    gateway: ipaddress.IPv4Address | None = None
    internal: bool = Field(default=False, description="No docker_gwbridge leg (no egress).")
    attachable: bool = Field(default=True, description="Swarm mode: plain containers may join.")
    options: dict[str, str] = Field(
        default_factory=dict,
        description="Driver options (-o), values in quotes. For an overlay, "
        f'{DRIVER_MTU_OPTION}: "1450" sizes it for 1450-byte lab links (default 1500); '
        "its containers get 50 bytes less, room for the VXLAN headers.",
    )
    labels: dict[str, str] = Field(default_factory=dict)


# How an app picks "its" address, the root of the docker_gwbridge misery:
# - first-interface: the first up, non-loopback IPv4 interface by index (what most
#   libraries and spring-cloud-commons' InetUtils do today);
# - java-enumeration: the first in Java's NetworkInterface enumeration, which lists
#   the newest interface first on Linux: Spring Cloud before InetUtils
#   (spring-cloud-consul#115, the article's case) picked docker_gwbridge's eth1;
# - hostname: the address the container's hostname resolves to (`hostname -i`,
#   InetAddress.getLocalHost()).
AdvertiseRule = Literal["first-interface", "java-enumeration", "hostname"]


class Stack(StrictModel):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", description="Compose project name.")
    file: str = Field(
        description="Compose file, relative to the folder that holds the spec (as "
        "docker-compose resolves its own files), or absolute."
    )
    services: dict[str, Name] = Field(min_length=1, description="Service name -> node it runs on.")
    via: Literal["node", "swarm-master"] = Field(
        default="node",
        description="How services reach their nodes: `node` (docker-compose against each "
        "node's engine) or `swarm-master` (classic swarm: compose against the master, each "
        "service pinned with a `constraint:node==<node>` environment entry, the 2015 way; "
        "compose file version 2.0-2.3, as swarm 1.2.9 speaks API 1.30).",
    )
    advertise: dict[str, AdvertiseRule] = Field(
        default_factory=dict,
        description="Service name -> how its app picks the address it advertises to peers "
        "(default first-interface). `verify` checks that address is one peers can reach.",
    )


PROBE_IMAGE = "overlaylab/probe:1"
APP_IMAGE = "overlaylab/pyapp:1"  # the discovery demo's app (steps/app_image.py)
# Images the lab builds itself, offline: stacks may use them without listing them.
BUILT_IMAGES = (PROBE_IMAGE, APP_IMAGE)


class Image(StrictModel):
    """An image side-loaded into engines (nothing is ever pulled)."""

    name: str = Field(description="Image reference as the stacks use it, e.g. mongo:3.0.")
    tarball: str | None = Field(
        default=None,
        description="`docker save` tarball, relative to the folder that holds the spec "
        "(or absolute); default: take it from the host's own engine.",
    )
    nodes: list[Name] | None = Field(
        default=None, description="Nodes to load it into; default: every engine node."
    )


class ClusterSpec(StrictModel):
    api_version: Literal["overlaylab/v1"] = Field(alias="apiVersion")
    kind: Literal["Cluster"]
    name: Name = Field(description="Cluster name; prefixes every resource the lab makes.")
    description: str = ""
    provider: Provider = Field(default_factory=LocalProviderSpec)
    lab: LabNetwork = Field(default_factory=LabNetwork)
    kv: KVStore | None = Field(default_factory=KVStore, description="null: no KV store.")
    engine: Engine = Field(default_factory=Engine)
    orchestration: Orchestration = Field(default_factory=Orchestration)
    nodes: list[Node] = Field(min_length=1)
    networks: list[OverlayNetwork] = Field(default_factory=list)
    images: list[Image] = Field(
        default_factory=list,
        description=f"Images to side-load; the offline probe image {PROBE_IMAGE} is always built.",
    )
    stacks: list[Stack] = Field(default_factory=list)

    # --- derived views used by steps and checks -------------------------------------
    def node(self, name: str) -> Node:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)

    @property
    def engine_nodes(self) -> list[Node]:
        return [n for n in self.nodes if n.runs_engine]

    def address_of(self, name: str) -> ipaddress.IPv4Address:
        address = self.node(name).address
        assert address is not None, "defaults are applied at load time"
        return address

    def cluster_store_url(self) -> str | None:
        store = self.engine.cluster_store
        if store != "auto":
            return store
        if self.kv is None:
            return None
        scheme = KV_SCHEMES[self.kv.backend]
        return f"{scheme}://{self.address_of(self.kv.node)}:{self.kv.client_port}{self.kv.path}"
