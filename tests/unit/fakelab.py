"""A fake lab for unit tests: the real checks run against it and produce the results.

The model is small: engine nodes with their engines, the KV node (etcd, consul or
ZooKeeper), probe and stack containers on the spec's overlays (a swarm lab's stacks as
services with VIPs), serf membership, registrations in the store, classic swarm's
agents and master, apps that register themselves for discovery. A test brings it up
healthy, injects faults the way an operator would (kill an engine, cut a switch port,
drop a port with iptables, advertise the NAT address...) and runs `run_verify`. Every
answer (TCP connects, store listings, engine API calls, the commands run in
containers) is derived from that one model, so the results that diagnosis reads are
the ones the checks' own code builds.

Checks reach the lab through `ctx.node(name)`, the provider's `Node` handles; this
fake's nodes answer exactly the I/O the checks perform. Anything else (a command it
does not know, a service it does not model, a module of `overlaylab.verify.checks` holding a
local provider helper or a socket library that would reach around the handle) raises
`FakeLabError`, so a check that changes what it does fails its test instead of being
answered by a guess or by the machine the tests run on.

Where the real lab was observed (tests/integration/test_faults.py), the fake follows
the observation: a gossip port dropped a moment ago does not yet change any serf
view; a cut-off node and a dead engine are already marked failed by their peers.

The lab as `up` finds and builds it is the other half of this module (the Up* classes
at its end: provider, nodes, engines, `ip`), for the tests of up's steps.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import io
import ipaddress
import json
import pkgutil
import re
import shlex
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from http.client import RemoteDisconnected
from pathlib import Path, PurePosixPath
from types import ModuleType, SimpleNamespace
from typing import Any, NoReturn

import docker.errors
import requests
import yaml
from docker.models.containers import ExecResult
from lab_specs import LAB_YML, REPO, lab_data, lab_variant, make_ctx
from rich.console import Console

import overlaylab.verify.checks
from overlaylab.context import LabContext
from overlaylab.errors import CommandError, OverlaylabError
from overlaylab.layout import LABEL_CLUSTER, LABEL_ROLE, LabLayout
from overlaylab.overlay import peers as overlay_peers
from overlaylab.overlay.registrations import ZOOKEEPER_CLI
from overlaylab.probe_tools import DF_ECHO, UDP_SEND, source
from overlaylab.progress import Progress
from overlaylab.providers.base import NodePaths
from overlaylab.providers.command import TIMED_OUT, CommandResult
from overlaylab.spec import load_spec
from overlaylab.spec.models import DEFAULT_KV_PORTS, DRIVER_MTU_OPTION, PROBE_IMAGE, ClusterSpec
from overlaylab.up.classic_swarm import AGENT, MASTER, discovery_store
from overlaylab.up.dead_engine import FORGET_STALE
from overlaylab.up.steps import images
from overlaylab.up.steps.engines import ENABLE_FORWARDING
from overlaylab.up.steps.images import PROBE_PAGE
from overlaylab.verify import batch as probe_batch
from overlaylab.verify import probes as verify_probes
from overlaylab.verify.check import Check
from overlaylab.verify.checks.discovery import _GET as DISCOVERY_GET
from overlaylab.verify.checks.kv import RUOK_SCRIPT
from overlaylab.verify.checks.mtu import DF_SCRIPT
from overlaylab.verify.checks.stack_containers import TASK_LABEL
from overlaylab.verify.checks.swarm_services import _CONNECT as VIP_CONNECT
from overlaylab.verify.probes import (
    PROBE_COMMAND,
    PROBE_PORT,
    PROBE_UDP_PORT,
    SLOTS,
    probe_name,
)
from overlaylab.verify.run import ALL_CHECKS, VerifyReport, run_verify

FAULTS_YML = REPO / "tests" / "testdata" / "labs" / "faults.yml"
FAULTS_NAT_YML = REPO / "tests" / "testdata" / "labs" / "faults-nat.yml"
ZK_YML = REPO / "tests" / "testdata" / "labs" / "zk.yml"  # the legacy overlay over ZooKeeper
SWARM_IDLE_YML = REPO / "tests" / "testdata" / "labs" / "swarm-idle.yml"
SWARM_YML = REPO / "tests" / "testdata" / "labs" / "swarm.yml"  # with the swarm demo stack
# What a swarm manager answers for the swarm's state while it has no leader.
NO_LEADER = (
    "rpc error: code = Unknown desc = The swarm does not have a leader. It's possible that "
    "too few managers are online. Make sure more than half of the managers are online."
)
NOT_A_MANAGER = (
    "This node is not a swarm manager. Worker nodes can't be used to view or modify "
    "cluster state. Please run this command on a manager node or promote the current node "
    "to a manager."
)
NAT_ADDRESS = "10.0.2.15"  # the NAT eth0 every VirtualBox-style node has (provider nat: true)
GWBRIDGE = ipaddress.IPv4Network("172.18.0.0/16")
ENGINE_VERSION = "20.10.24"
SERF_PORT = 7946
MANAGE_PORT = 3376  # a classic swarm master's API
CLASSIC_YML = REPO / "tests" / "testdata" / "labs" / "classic.yml"
VXLAN = ("udp", 4789)
VXLAN_OVERHEAD = 50  # outer IPv4 + UDP + VXLAN + inner Ethernet headers
ICMP_OVERHEAD = 28  # IPv4 + ICMP headers on a ping payload
DEFAULT_PING_PAYLOAD = 56
DEAD_SOCKET = (
    "Error while fetching server API version: ('Connection aborted.', "
    "FileNotFoundError(2, 'No such file or directory'))"
)
# What dockerd 20.10.24 (Debian) printed on a ZooKeeper-backed lab when a container
# joined the overlay (tests/integration/test_zookeeper_lab.py).
LIBNETWORK_PANIC = """panic: runtime error: invalid memory address or nil pointer dereference
[signal SIGSEGV: segmentation violation code=0x1 addr=0x1c pc=0x5561e53846c7]

goroutine 83 [running]:
github.com/docker/libnetwork.(*endpointCnt).Key(0x0)
	/build/src/github.com/docker/libnetwork/endpoint_cnt.go:22 +0x47
github.com/docker/libnetwork/datastore.(*datastore).Watch(0xc0008199c0, {0x5561e6ad8260?, 0x0})
	/build/src/github.com/docker/libnetwork/datastore/datastore.go:310 +0x117
github.com/docker/libnetwork.(*controller).processEndpointCreate(0xc000797400, 0xc001b16160)
	/build/src/github.com/docker/libnetwork/store.go:388 +0x4bf
"""
TCP_SCRIPT = re.compile(r'^printf "GET / HTTP/1\.0.*" \| nc -w \d+ "\$1" "\$2"$')
ADVERTISE_SCRIPT = "ip -o -4 addr; echo ==; hostname; echo ==; cat /etc/hosts"
IPVS_PROBE = "[ -e /proc/net/ip_vs ] || [ -d /sys/module/ip_vs ]"  # swarm_stacks.has_ipvs
SERVICE_LABEL = "com.docker.swarm.service.name"
# Modules whose functions reach the machine directly: a check holding one of them would
# bypass the node handles (the local provider's plumbing, sockets, host commands).
DIRECT_IO = (
    "overlaylab.providers.local",
    "overlaylab.providers.host_runner",
    "socket",
    "ssl",
    "http.client",
    "urllib",
    "requests",
    "subprocess",
)


def mac_of(address: str) -> str:
    """The MAC libnetwork gives a container: 02:42 and its IPv4 address's bytes."""
    return "02:42:" + ":".join(f"{b:02x}" for b in ipaddress.IPv4Address(address).packed)


class FakeLabError(AssertionError):
    """The checks did something the fake lab does not model: extend the fake."""


def unknown(what: str) -> NoReturn:
    raise FakeLabError(f"the fake lab does not answer {what}")


# --- the spec ------------------------------------------------------------------------


def fault_lab_spec(
    engines: Sequence[str] = ("n1", "n2", "n3"),
    *,
    networks: Sequence[str] | None = None,
    stacks: bool = True,
    lab_mtu: int | None = None,
    nat: bool = False,
    advertise: Mapping[str, str] | None = None,
) -> ClusterSpec:
    """The lab the fault-injection tests break (tests/testdata/labs/faults.yml: three
    engines, overlays dn and other, the demo stack with web on n1 and mongo on n2) or,
    with `nat`, faults-nat.yml (engines advertising their NAT eth0), with the engine
    nodes, overlays, stacks, lab MTU and the stack's advertise rules a scenario needs."""
    base = FAULTS_NAT_YML if nat else FAULTS_YML
    data = lab_data(base)
    sections: dict[str, Any] = {"nodes": [{"name": "kv", "roles": ["kv"]}]}
    sections["nodes"] += [{"name": n} for n in engines]
    if networks is not None:
        sections["networks"] = [n for n in data["networks"] if n["name"] in networks]
    if not stacks:
        sections["stacks"] = []
    elif advertise:
        sections["stacks"] = [{**data["stacks"][0], "advertise": dict(advertise)}]
    if lab_mtu is not None:
        sections["lab"] = {"mtu": lab_mtu}
    return lab_variant(base, **sections)


def swarm_lab_spec(
    managers: Sequence[str] = ("mgr1",), workers: Sequence[str] = ("wrk1", "wrk2")
) -> ClusterSpec:
    """A swarm-mode lab with nothing deployed (tests/testdata/labs/swarm-idle.yml: one
    attachable overlay, appnet), with the managers and workers a scenario needs."""
    nodes = [{"name": m, "roles": ["manager"]} for m in managers]
    nodes += [{"name": w, "roles": ["worker"]} for w in workers]
    return lab_variant(SWARM_IDLE_YML, nodes=nodes)


def consul_lab_spec() -> ClusterSpec:
    """The fault-injection lab (faults.yml) with its engines on a consul store."""
    return lab_variant(FAULTS_YML, kv={"backend": "consul"})


def classic_lab_spec(discovery: str = "kv") -> ClusterSpec:
    """tests/testdata/labs/classic.yml (a master and agents a and b, overlay dn) without
    its stack, which goes through the master; with `discovery: consul`, the agents
    register in a consul beside the lab's etcd."""
    orchestration = {"mode": "classic-swarm", "discovery": discovery}
    return lab_variant(CLASSIC_YML, stacks=[], orchestration=orchestration)


# --- containers ------------------------------------------------------------------------


@dataclass
class FakeContainer:
    lab: FakeLab = field(repr=False)
    node: str
    name: str
    hostname: str
    command: list[str]
    networks: dict[str, str]  # overlay -> its address there, in the order it joined them
    aliases: dict[str, list[str]]
    gwbridge: str  # its address on the node's docker_gwbridge
    labels: dict[str, str]
    ports: dict[str, list[dict[str, str]]] = field(default_factory=dict)  # "5000/tcp" -> bindings
    status: str = "running"

    @property
    def id(self) -> str:
        return hashlib.sha256(f"{self.node}/{self.name}".encode()).hexdigest()

    @property
    def short_id(self) -> str:
        return self.id[:12]

    @property
    def running(self) -> bool:
        """Up, as the network sees it: a paused container keeps its addresses, and its
        kernel still answers pings and completes TCP handshakes."""
        return self.status in ("running", "paused")

    @property
    def is_probe(self) -> bool:
        return self.labels.get(LABEL_ROLE) == "probe"

    @property
    def attrs(self) -> dict[str, Any]:
        return {
            "Id": self.id,
            "Name": f"/{self.name}",
            "Config": {"Cmd": list(self.command), "Hostname": self.hostname},
            "State": {"Status": self.status},
            "HostConfig": {"PortBindings": self.ports},
            "NetworkSettings": {
                "Networks": {
                    net: {
                        "IPAddress": address,
                        "MacAddress": mac_of(address),
                        "Aliases": list(self.aliases.get(net, [])),
                    }
                    for net, address in self.networks.items()
                },
                # Bindings live on a network: a container on none publishes nothing.
                "Ports": self.ports if self.networks else {},
            },
        }

    def reload(self) -> None:
        """Attributes are read from the model: always fresh."""

    def remove(self, force: bool = False) -> None:
        self.lab.remove(self)

    def exec_run(self, cmd: list[str], demux: bool = False) -> ExecResult:
        if self.status == "paused":
            raise docker.errors.APIError(
                f'409 Client Error: Conflict ("Container {self.id} is paused, unpause the '
                'container before exec")'
            )
        if not self.running:
            raise docker.errors.APIError(
                f'409 Client Error: Conflict ("Container {self.id} is not running")'
            )
        argv = list(cmd)
        if argv[:1] == ["timeout"]:  # exec_in bounds every command; the fake answers at once
            argv = argv[2:]
        code, out = self.lab.run_in(self, argv)
        return ExecResult(code, out.encode())


# --- the engine API, as docker-py's client shows it -------------------------------------


class FakeContainers:
    def __init__(self, lab: FakeLab, node: str) -> None:
        self.lab, self.node = lab, node

    def get(self, name: str) -> FakeContainer:
        found = self.lab.container(name, self.node)
        if found is None:
            raise docker.errors.NotFound(f"No such container: {name}")
        return found

    def list(self, filters: Mapping[str, list[str]] | None = None) -> list[FakeContainer]:
        wanted = dict(label.split("=", 1) for label in (filters or {}).get("label", []))
        if set(filters or {}) - {"label"}:
            unknown(f"containers.list filters {filters}")
        return [
            c
            for c in self.lab.running_containers()
            if c.node == self.node and all(c.labels.get(k) == v for k, v in wanted.items())
        ]

    def run(self, image: str, command: list[str], **options: Any) -> FakeContainer:
        if image != PROBE_IMAGE or command != PROBE_COMMAND:
            unknown(f"containers.run({image!r}, {command!r})")
        if self.node in self.lab.images_missing:
            raise docker.errors.ImageNotFound(f"No such image: {image}")
        if self.node in self.lab.panics_on_join:
            self.lab.panic(self.node)
        network = options["network"]
        if not self.lab.can_attach(self.node, network):
            raise docker.errors.NotFound(f"network {network} not found")
        if self.lab.container(options["name"], self.node) is not None:
            raise docker.errors.APIError(f'409 Client Error: Conflict ("{options["name"]}")')
        return self.lab.start_container(
            self.node,
            options["name"],
            command,
            [network],
            labels=options["labels"],
            hostname=options["hostname"],
        )


class FakeImages:
    """The probe image, as the images step left it: this very rootfs, unless lost."""

    def __init__(self, lab: FakeLab, node: str) -> None:
        self.lab, self.node = lab, node

    def get(self, name: str) -> SimpleNamespace:
        if name != PROBE_IMAGE:
            unknown(f"images.get({name!r})")
        if self.node in self.lab.images_missing:
            raise docker.errors.ImageNotFound(f"No such image: {name}")
        return SimpleNamespace(labels={images.ROOTFS_LABEL: images._rootfs_digest()})


class FakeAPI:
    """The low-level client (`client.api`)."""

    def __init__(self, lab: FakeLab, node: str) -> None:
        self.lab, self.node = lab, node

    def import_image_from_data(self, data: bytes, **options: Any) -> dict[str, str]:
        """A node that lost the probe image cannot take it again: its disk is full."""
        if self.node in self.lab.images_missing:
            raise docker.errors.APIError(
                "500 Server Error: write /var/lib/docker/tmp/docker-import: no space left on device"
            )
        unknown(f"import_image_from_data on {self.node}, which has the probe image")

    def networks(self, names: list[str] | None = None) -> list[dict[str, Any]]:
        return [
            self.lab.network_info(net.name)
            for net in self.lab.spec.networks
            if (names is None or net.name in names) and self.lab.lists_network(self.node, net.name)
        ]

    def tasks(self, filters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Swarm tasks, as a manager with a leader lists them: the running containers that
        carry a task id (the fake lab deploys no swarm service: probes are not tasks)."""
        if not self.lab.swarm:
            unknown(f"a swarm task listing on {self.node}, in a lab without swarm mode")
        if self.node not in self.lab.managers:
            raise docker.errors.APIError("503 Server Error", explanation=NOT_A_MANAGER)
        if not self.lab.has_leader():
            raise docker.errors.APIError("500 Server Error", explanation=NO_LEADER)
        wanted = (filters or {}).get("service")
        return [
            self.lab.swarm_task(c)
            for c in self.lab.running_containers()
            if TASK_LABEL in c.labels and wanted in (None, c.labels[SERVICE_LABEL])
        ]

    def services(self) -> list[dict[str, Any]]:
        return [s.attrs for s in FakeSwarmServices(self.lab, self.node).list()]

    def inspect_network(self, name: str) -> dict[str, Any]:
        if name != "docker_gwbridge":
            unknown(f"inspect_network({name!r})")
        legs = [c for c in self.lab.running_containers() if c.node == self.node and c.gwbridge]
        return {
            "Name": "docker_gwbridge",
            "IPAM": {"Config": [{"Subnet": str(GWBRIDGE), "Gateway": "172.18.0.1"}]},
            "Containers": {
                c.id: {"Name": c.name, "IPv4Address": f"{c.gwbridge}/{GWBRIDGE.prefixlen}"}
                for c in legs
            },
        }


class FakeSwarmServices:
    """`client.services` of a swarm engine: the stacks' services, as a manager lists them."""

    def __init__(self, lab: FakeLab, node: str) -> None:
        self.lab, self.node = lab, node

    def list(self) -> list[SimpleNamespace]:
        FakeSwarmNodes(self.lab, self.node).list()  # the same refusals as a node listing
        return [
            SimpleNamespace(name=name, attrs=self.lab.swarm_service(name))
            for name in self.lab.services
        ]


class FakeNetworks:
    """`client.networks`: the overlays this engine lists, as objects with id and name."""

    def __init__(self, lab: FakeLab, node: str) -> None:
        self.lab, self.node = lab, node

    def list(self, names: list[str] | None = None) -> list[SimpleNamespace]:
        listed = FakeAPI(self.lab, self.node).networks(names)
        return [SimpleNamespace(id=n["Id"], name=n["Name"], attrs=n) for n in listed]


class FakeEngine:
    """What a node's `engine()` yields: a docker.DockerClient look-alike."""

    def __init__(self, lab: FakeLab, node: str) -> None:
        self.lab, self.node = lab, node
        self.containers = FakeContainers(lab, node)
        self.images = FakeImages(lab, node)
        self.api = FakeAPI(lab, node)
        self.nodes = FakeSwarmNodes(lab, node)
        self.services = FakeSwarmServices(lab, node)
        self.networks = FakeNetworks(lab, node)

    def version(self) -> dict[str, str]:
        if self.node in self.lab.api_errors:
            raise docker.errors.APIError(
                "500 Server Error for http+docker://localhost/version: Internal Server Error"
            )
        self.lab.answered_version(self.node).set()
        return {"Version": ENGINE_VERSION, "ApiVersion": "1.41"}

    def info(self) -> dict[str, Any]:
        if self.node in self.lab.api_errors:
            raise docker.errors.APIError(
                "500 Server Error for http+docker://localhost/info: Internal Server Error"
            )
        self.lab.answered_version(self.node).set()  # engines.api reads /info
        return {
            "ServerVersion": ENGINE_VERSION,
            "ClusterStore": self.lab.stores[self.node] or "",
            "ClusterAdvertise": self.lab.advertised[self.node] or "",
            "IPv4Forwarding": self.node not in self.lab.forwarding_off,
            "Swarm": self.lab.swarm_info(self.node),
        }


class FakeSwarmNodes:
    """`client.nodes` of a swarm engine: only a manager of a swarm with a leader lists."""

    def __init__(self, lab: FakeLab, node: str) -> None:
        self.lab, self.node = lab, node

    def list(self) -> list[SimpleNamespace]:
        if not self.lab.swarm:
            unknown(f"a swarm node listing on {self.node}, in a lab without swarm mode")
        if self.node not in self.lab.managers:
            raise docker.errors.APIError("503 Server Error", explanation=NOT_A_MANAGER)
        if not self.lab.has_leader():
            raise docker.errors.APIError("500 Server Error", explanation=NO_LEADER)
        return [SimpleNamespace(attrs=self.lab.swarm_node(n)) for n in self.lab.engine_nodes]


class FakeNode:
    """A node of the fake lab, as checks reach it: the whole `Node` protocol.

    The engine, its log and its liveness, its daemon.json, the reading of its overlay
    sandboxes, the docker CLI against a classic swarm master, and the lab network seen
    from the node are answered from the model; what checks never do (other commands,
    placing or reading other files, starting or stopping services) is a `FakeLabError`,
    as is asking a node for a service or an engine it does not have.
    """

    def __init__(self, lab: FakeLab, name: str) -> None:
        self.lab = lab
        self.name = name
        self.address = ipaddress.IPv4Address(lab.address(name))
        self.paths = NodePaths.under(PurePosixPath(lab.layout.node_dir(name)))
        self.cgroup_parent: str | None = lab.layout.cgroup_parent(name)

    def __repr__(self) -> str:
        return f"FakeNode({self.name!r})"

    # --- commands and files: the few that checks use -----------------------------------------
    def run(
        self,
        argv: Sequence[str],
        *,
        check: bool = True,
        timeout: float | None = 60,
        input: str | None = None,
    ) -> CommandResult:
        argv = list(argv)
        match argv:
            case ["sh", "-c", find, "read", netns, prefix, script] if (
                find == overlay_peers.FIND_SCRIPT and script == overlay_peers.READ_SCRIPT
            ):
                code, out, err = self.lab.read_sandbox(self.name, netns, prefix)
            case ["docker", "--tlsverify", _, _, _, "-H", url, *args]:
                code, out, err = self.lab.master_cli(self.name, url, args)
            case ["sh", "-c", script] if script == IPVS_PROBE:
                code, out, err = (0 if self.lab.ipvs else 1), "", ""
            case ["timeout", _, "bash", "-c", script, "ruok", host, port] if script == RUOK_SCRIPT:
                code, out, err = self.lab.ruok(self.name, host, int(port))
            case [cli, "-server", server, "ls", znode] if cli == str(ZOOKEEPER_CLI):
                code, out, err = self.lab.zk_ls(self.name, server, znode)
            case _:
                unknown(f"the command {argv} on the node {self.name}")
        return CommandResult(tuple(argv), code, out, err, self.name)

    def put_file(self, path: PurePosixPath, data: bytes, mode: int = 0o644) -> None:
        unknown(f"writing {path} on {self.name}")

    def read_file(self, path: PurePosixPath) -> bytes | None:
        if path == self.paths.daemon_config and self.name in self.lab.engine_nodes:
            return self.lab.daemon_json(self.name)
        unknown(f"reading {path} on {self.name}")

    # --- services: the engine's, read only ------------------------------------------------
    def start_service(self, service: str, argv: Sequence[str]) -> None:
        unknown(f"starting {service} on {self.name}")

    def stop_service(self, service: str, binary: str, timeout: float = 10) -> None:
        unknown(f"stopping {service} on {self.name}")

    def _engine_service(self, service: str, what: str) -> None:
        if service != "dockerd" or self.name not in self.lab.engine_nodes:
            unknown(f"{what} of {service} on {self.name}")

    def service_alive(self, service: str, binary: str | None = None) -> bool:
        self._engine_service(service, "the liveness")
        return self.name not in self.lab.dead and binary in (None, "dockerd")

    def service_log(self, service: str) -> str | None:
        self._engine_service(service, "the log")
        return self.lab.dockerd_log(self.name)

    def service_log_location(self, service: str) -> str:
        self._engine_service(service, "the log location")
        return str(self.lab.layout.log_file(self.name, service))

    # --- the engine --------------------------------------------------------------------------
    @contextlib.contextmanager
    def engine(self, timeout: int = 30) -> Iterator[FakeEngine]:
        if self.name not in self.lab.engine_nodes:
            unknown(f"an engine on {self.name}")
        if self.name in self.lab.dead:
            # docker.DockerClient(version="auto") asks the socket at once.
            raise docker.errors.DockerException(DEAD_SOCKET)
        yield FakeEngine(self.lab, self.name)

    def engine_ping(self, timeout: float = 1.0) -> bool:
        return self.name in self.lab.engine_nodes and self.name not in self.lab.dead

    def docker_env(self) -> dict[str, str]:
        return {"DOCKER_HOST": f"unix://{self.paths.docker_socket}"}

    # --- the lab network, seen from the node -------------------------------------------------
    def tcp_connect(self, host: str, port: int, timeout: float = 2.0) -> tuple[bool, str]:
        if self.lab.lost_connects.get(self.name, 0) > 0:  # one slow moment: no answer in time
            self.lab.lost_connects[self.name] -= 1
            return False, f"timed out after {timeout:g}s"
        return self.lab.tcp(self.name, host, port)

    def http_get(self, host: str, port: int, path: str, timeout: float = 2.0) -> tuple[int, str]:
        return self.lab.http_get(self.name, host, port, path)

    def tcp_answers(self, host: str, port: int, timeout: float = 2.0) -> tuple[bool, str]:
        return self.lab.tcp_answers(self.name, host, port)

    def tcp_probe_command(self, host: str, port: int) -> str:
        return f"nc -zv {host} {port}  # from {self.name}"


class FakeProvider:
    """The provider of the fake lab: a healthy lab that exists, and its nodes."""

    name = "fake"
    host_address = None

    def __init__(self, lab: FakeLab) -> None:
        self.lab = lab
        self._nodes: dict[str, FakeNode] = {}

    def node(self, name: str) -> FakeNode:
        if name not in self._nodes:
            self.lab.spec.node(name)  # raises for a name the spec does not have
            self._nodes[name] = FakeNode(self.lab, name)
        return self._nodes[name]

    def nodes(self) -> Iterator[FakeNode]:
        return (self.node(n.name) for n in self.lab.spec.nodes)

    def exists(self) -> bool:
        return True

    def preflight(self) -> list[tuple[str, str]]:
        unknown("a preflight: checks run on a lab that is up")

    def provision(self, on_item: Callable[[str, str], None] | None = None) -> None:
        unknown("provisioning: the fake lab is up from the start")

    def destroy(self) -> list[str]:
        unknown("taking the lab down")


# --- the lab -------------------------------------------------------------------------


class FakeLab:
    """A healthy lab after `up`, and the faults a test injects into it.

    Checks reach it through `ctx`, whose provider hands out this lab's `FakeNode`s:
    nothing is patched, so several labs in one test are independent of each other.
    """

    def __init__(
        self,
        spec: ClusterSpec,
        state_dir: Path,
        spec_path: Path = FAULTS_YML,  # where stack files resolve from
    ) -> None:
        self.spec = spec
        self.layout = LabLayout.for_cluster(spec.name, state_dir)
        self.provider = FakeProvider(self)
        self.ctx = LabContext(
            spec=spec,
            spec_path=spec_path,
            spec_dir=spec_path.parent,
            layout=self.layout,
            provider=self.provider,
        )
        self.engine_nodes = [n.name for n in spec.engine_nodes]
        self.swarm = spec.orchestration.mode == "swarm-mode"
        self.managers = [n.name for n in spec.engine_nodes if "manager" in n.roles]
        # Faults (a healthy lab has none).
        self.dead: set[str] = set()
        self.cut: set[str] = set()
        self.kv_running = True
        self.kv_hung = False
        self.dropped: list[tuple[str, str, int, str | None]] = []  # (node, proto, port, from)
        self.advertised: dict[str, str | None] = {
            n: self._configured_advertise(n) for n in self.engine_nodes
        }
        self.stores: dict[str, str | None] = {
            n: spec.cluster_store_url() for n in self.engine_nodes
        }
        self.islands: list[set[str]] = [set(self.engine_nodes)]
        self.stale_records: dict[str, str] = {}  # container -> address other hosts get
        self.same_host_blocked: set[tuple[str, str]] = set()  # (node, icmp|tcp|udp)
        self.images_missing: set[str] = set()
        self.api_errors: set[str] = set()
        self.forwarding_off: set[str] = set()  # engines that read ip_forward=0 at start
        self.registrations_expired = False
        self.not_registering: set[str] = set()  # engines whose heartbeat never comes back
        self.lost_connects: dict[str, int] = {}  # node -> its next connects that time out
        self.dns_cut: set[str] = set()  # nodes whose containers cannot reach 127.0.0.11
        self.leader_lingers = False
        self.panics_on_join: set[str] = set()
        self.link_mtu: dict[str, int] = {}  # node -> its lab link's MTU, when not lab.mtu
        self.path_mtu: dict[tuple[str, str], int] = {}  # (container, address) -> cached PMTU
        self.panicked: set[str] = set()
        self._version_answered: dict[str, threading.Event] = {}
        self.discovery_junk: dict[str, str] = {}  # key under docker/nodes -> its value
        self.no_serf: set[str] = set()  # engines whose serf never started
        self.forgotten: set[str] = set()  # engines whose overlay sandboxes learned nothing
        self.stale_fdb: dict[tuple[str, str], dict[str, str]] = {}  # (node, net) -> MAC -> dst
        self.recycled: dict[tuple[str, str], str] = {}  # (node, net) -> next address there
        self.runs_through_master: list[list[str]] = []  # `docker run` argv, as sent
        self.sandbox_filtered: set[tuple[str, str, str]] = set()  # (node, net, icmp|tcp|udp)
        self.configured_advertise: dict[
            str, str
        ] = {}  # node -> its daemon.json's, if not the spec's
        # Classic swarm: what each agent registered in discovery (None: nothing), and
        # whether the master answers and reads discovery.
        api_port = spec.engine.api_port
        self.agent_registered: dict[str, str | None] = {
            n: f"{self.address(n)}:{api_port}" for n in self.swarm_nodes()
        }
        self.master_down = False
        self.master_blind = False
        # Apps that registered themselves for discovery (etcd's /services, consul's agent).
        self.registry: list[dict[str, Any]] = []
        # Swarm mode: the stacks' services (name -> VIP per overlay), and the kernel's IPVS.
        self.services: dict[str, dict[str, str]] = {}
        self.ipvs = True
        # What runs.
        self._lock = threading.RLock()
        self.containers: list[FakeContainer] = []
        self._next_address: dict[str, int] = {}
        self._next_gwbridge: dict[str, int] = {}
        self._refuse_direct_io()
        self._up()

    # --- faults, named after what an operator does -------------------------------------
    def kill_engine(self, node: str) -> None:
        """kill -9 dockerd: its socket and ports close; peers mark it failed in serf."""
        self.dead.add(node)

    def start_engine_before_forwarding(self, node: str) -> None:
        """The engine started while net.ipv4.ip_forward was 0 in its node: it answers,
        and believes forwarding is off until it restarts."""
        self.forwarding_off.add(node)

    def kill_manager_just_now(self, node: str) -> None:
        """kill -9 a manager's dockerd a moment ago: the leader still answers for the
        swarm until the raft notices it lost its quorum (seconds later)."""
        self.kill_engine(node)
        self.leader_lingers = True

    def cut_off(self, node: str) -> None:
        """Its switch port down: nothing crosses between it and any other node."""
        self.cut.add(node)

    def stop_kv(self) -> None:
        self.kv_running = False

    def hang_kv(self) -> None:
        """kill -STOP the store: the kernel still completes TCP handshakes on its port,
        nothing answers a request."""
        self.kv_hung = True

    def drop(self, node: str, proto: str, port: int, source: str | None = None) -> None:
        """iptables -I INPUT -p PROTO --dport PORT [-s SOURCE's address] -j DROP in node's
        namespace (for a published port, the DOCKER-USER rule on the DNAT-ed connection):
        what other nodes send to `port` on node is dropped."""
        self.dropped.append((node, proto, port, source))

    def misadvertise(self, node: str, address: str, configured: str | None = None) -> None:
        """The engine runs with a cluster-advertise peers cannot reach (e.g. NAT eth0):
        serf binds it, VXLAN peers send to it, the store registers it. With `configured`,
        it was restarted by hand with that value in its daemon.json (e.g. docker0:2376)."""
        self.advertised[node] = address
        if configured is not None:
            self.configured_advertise[node] = configured

    def use_other_store(self, node: str, url: str) -> None:
        """The engine was restarted with another cluster-store: the overlays of this lab
        are gone from it, and with them the containers that were on them."""
        self.stores[node] = url
        for c in self._all():
            if c.node == node:
                c.status = "exited"

    def split_gossip(self, *islands: Sequence[str]) -> None:
        """Engines that started together joined different neighbours: serf islands."""
        self.islands = [set(i) for i in islands]

    def leave_stale_record(self, container: str, address: str) -> None:
        """Other hosts' embedded DNS answers `address` for every name of `container`."""
        self.stale_records[container] = address

    def stop_service(self, stack: str, service: str) -> None:
        for c in self._all():
            if c.labels.get("com.docker.compose.project") == stack and (
                c.labels.get("com.docker.compose.service") == service
            ):
                c.status = "exited"

    def lose_probe_image(self, node: str) -> None:
        """The probes on node are gone, the engine no longer has the probe image, and
        importing it again fails (a full disk)."""
        self.images_missing.add(node)
        for c in self._all():
            if c.node == node and c.is_probe:
                self.remove(c)

    def block_same_host(self, node: str, proto: str) -> None:
        """Something inside node drops `proto` between its own containers on an overlay."""
        self.same_host_blocked.add((node, proto))

    def scale(self, stack: str, service: str) -> FakeContainer:
        """docker-compose up -d --scale SERVICE=2: a second container beside the first,
        on its networks, with the service name as an alias (and no published port)."""
        first = next(
            c
            for c in self._all()
            if c.labels.get("com.docker.compose.project") == stack
            and c.labels.get("com.docker.compose.service") == service
        )
        return self.start_container(
            first.node,
            f"{stack}_{service}_2",
            first.command,
            list(first.networks),
            first.labels,
            aliases=[service],
        )

    def pause(self, container: str) -> None:
        """docker pause CONTAINER: its processes freeze; its addresses stay."""
        found = self.container(container)
        assert found is not None, container
        found.status = "paused"

    def disconnect(self, container: str, network: str) -> None:
        """docker network disconnect NETWORK CONTAINER: its address and aliases there go."""
        found = self.container(container)
        assert found is not None, container
        with self._lock:
            del found.networks[network]
            del found.aliases[network]

    def connect(self, container: str, network: str) -> None:
        """docker network connect NETWORK CONTAINER."""
        found = self.container(container)
        assert found is not None, container
        with self._lock:
            found.networks[network] = self._allocate(network)
            found.aliases[network] = [found.short_id]

    def register_app(
        self, container: str, name: str, port: int, *, leg: str = "overlay", serving: bool = True
    ) -> None:
        """The app in `container` registers itself (etcd: under /services/NAME/<its id>;
        consul: as an agent service with its id): the
        address of its `leg` ("overlay": its first overlay's; "gwbridge": its
        docker_gwbridge one, which a naive look at its interfaces picks) and `port`,
        with a health URL there, which it answers unless `serving` is False."""
        found = self.container(container)
        assert found is not None, container
        address = found.gwbridge if leg == "gwbridge" else next(iter(found.networks.values()))
        self.registry.append(
            {
                "name": name,
                "id": found.short_id,
                "address": address,
                "port": port,
                "health": f"http://{address}:{port}/health",
                "container": found.name,
                "serving": serving,
            }
        )

    def lose_ipvs(self) -> None:
        """The nodes' kernel has no IPVS (no ip_vs module; the nodes share this kernel):
        a swarm VIP carries no connection, while DNS still answers it."""
        self.ipvs = False

    def unregister_agent(self, node: str) -> None:
        """The agent on node registers nothing (its store is out of its reach, or it
        exited): discovery and the master's list lack the node."""
        self.agent_registered[node] = None

    def agent_advertises(self, node: str, address: str) -> None:
        """swarm join --advertise ADDRESS on node: that is what it registers, and where
        the master lists the node."""
        self.agent_registered[node] = address

    def blind_master(self) -> None:
        """The master cannot read discovery (e.g. started with another store's URL): it
        lists no node, while the agents still register."""
        self.master_blind = True

    def stop_master(self) -> None:
        """docker stop swarm-agent-master: nothing answers on the master's port."""
        self.master_down = True

    def expire_registrations(self) -> None:
        """The discovery TTL (60 s) passes: keys no engine refreshes are gone."""
        self.registrations_expired = True

    def stop_registering(self, node: str) -> None:
        """node's engine never registers again (its store client stuck): once the TTL
        passes, it is missing from docker/nodes for good."""
        self.not_registering.add(node)

    def set_link_mtu(self, node: str, mtu: int) -> None:
        """ip link set eth1 mtu MTU in node's namespace. Path MTUs containers cached
        while it was smaller stay cached (net.ipv4.route.mtu_expires: 600 s)."""
        self.link_mtu[node] = mtu

    def panic_on_overlay_join(self, node: str) -> None:
        """dockerd 20.10 on a ZooKeeper store: the next container to join an overlay on
        node makes it panic in libnetwork. As after `up`, node runs no probes yet: verify
        starts them, and the engine dies answering that start. On the real lab that
        start came after engines.api had its answer: so here too."""
        self.panics_on_join.add(node)
        for c in self._all():
            if c.node == node and c.is_probe:
                self.remove(c)

    def answered_version(self, node: str) -> threading.Event:
        with self._lock:
            return self._version_answered.setdefault(node, threading.Event())

    def panic(self, node: str) -> NoReturn:
        self.answered_version(node).wait(timeout=5)
        self.dead.add(node)
        self.panicked.add(node)
        raise requests.exceptions.ConnectionError(
            (
                "Connection aborted.",
                RemoteDisconnected("Remote end closed connection without response"),
            )
        )

    def break_engine_api(self, node: str) -> None:
        """The engine answers its ping but errors (500) on /version and /info."""
        self.api_errors.add(node)

    def put_junk_in_discovery(self, restarted: str, key: str = "garbage1") -> None:
        """A key under docker/nodes whose value is no host:port, then `restarted`'s
        engine started again: its discovery watch cannot parse the list, so it never
        starts serf (nothing listens on its 7946), and logs why."""
        self.discovery_junk[key] = "garbage"
        self.no_serf.add(restarted)

    def remove_junk_from_discovery(self) -> None:
        """The junk keys deleted: the engine's serf starts at the next watch event, but
        it joins after the others' containers were announced: its overlay sandboxes
        learn none of them."""
        self.discovery_junk.clear()
        self.forgotten |= self.no_serf
        self.no_serf.clear()

    def run_with_alias(self, node: str, name: str, network: str, alias: str) -> None:
        """docker run -d --name NAME --network NETWORK --network-alias ALIAS on node."""
        labels = {"example": "alias"}
        self.start_container(node, name, ["sleep", "3600"], [network], labels, aliases=[alias])

    def filter_in_sandbox(self, node: str, network: str, proto: str) -> None:
        """ebtables -A FORWARD -p IPv4 --ip-proto PROTO -j DROP in node's overlay sandbox
        of network: its bridge drops that protocol between its containers and VXLAN, and
        between its own containers; VXLAN itself (outside the sandbox) is untouched."""
        self.sandbox_filtered.add((node, network, proto))

    def leave_stale_peer_entry(
        self, node: str, network: str, address: str, next_on: str | None = None
    ) -> None:
        """A container with `address` left while `node` missed its leave: node's overlay
        sandbox still sends its MAC to node itself. The next container on `next_on`
        gets the address again (libnetwork's IPAM hands freed addresses out again)."""
        self.stale_fdb.setdefault((node, network), {})[mac_of(address)] = self.vtep(node)
        if next_on is not None:
            self.recycled[(next_on, network)] = address

    # --- running verify ----------------------------------------------------------------
    def verify(
        self,
        checks: Sequence[Check] = ALL_CHECKS,
        crash: Mapping[str, Exception] | None = None,
    ) -> VerifyReport:
        """run_verify over this lab; `crash` makes the named checks raise instead of run.
        The timeout is 0: every probe action is tried once, as a fault is permanent here."""
        crash = crash or {}
        chosen = [replace(c, run=_raising(crash[c.id])) if c.id in crash else c for c in checks]
        with _without_settling():
            return run_verify(self.ctx, chosen, timeout=0.0)

    # --- the model -----------------------------------------------------------------------
    def _configured_advertise(self, node: str) -> str | None:
        engine = self.spec.engine
        host, port = engine.advertise_host, engine.advertise_port
        if host is None or not engine.uses_cluster_store:
            return None
        if host == "eth1":
            return f"{self.spec.address_of(node)}:{port}"
        if host == "eth0" and getattr(self.spec.provider, "nat", False):
            return f"{NAT_ADDRESS}:{port}"
        with contextlib.suppress(ValueError):
            return f"{ipaddress.IPv4Address(host)}:{port}"
        unknown(f"cluster-advertise {engine.cluster_advertise} on {node}")

    def address(self, node: str) -> str:
        return str(self.spec.address_of(node))

    def node_at(self, address: str) -> str | None:
        return next((n.name for n in self.spec.nodes if self.address(n.name) == address), None)

    def advertises_lab_address(self, node: str) -> bool:
        if self.swarm:
            return True  # `up` inits and joins with --advertise-addr <lab address>
        advertised = self.advertised[node]
        return advertised is not None and advertised.rsplit(":", 1)[0] == self.address(node)

    def _dropped(self, dst: str, proto: str, port: int, src: str) -> bool:
        return any(
            (node, p, q) == (dst, proto, port) and source in (None, src)
            for node, p, q, source in self.dropped
        )

    def _listens(self, node: str, port: int) -> bool:
        if self.spec.kv is not None and node == self.spec.kv.node:
            return self.kv_running and port in self._kv_ports()
        if node in self.dead or node not in self.engine_nodes:
            return False
        if port == self.spec.engine.api_port and self.spec.engine.tls:
            return True
        if port == SERF_PORT and self.stores[node] is not None:
            # serf binds the advertised address, once it has started
            return self.advertises_lab_address(node) and node not in self.no_serf
        if port == SERF_PORT and self.swarm:
            return True  # the swarm's networkdb
        return any(
            int(binding["HostPort"]) == port
            for c in self.running_containers()
            if c.node == node and c.networks
            for key, bindings in c.ports.items()
            if key.endswith("/tcp")
            for binding in bindings
        )

    def _kv_ports(self) -> set[int]:
        """The KV node's stores: the lab's, and classic swarm's discovery beside it."""
        assert self.spec.kv is not None
        ports = {self.spec.kv.client_port}
        if self.spec.orchestration.mode == "classic-swarm":
            ports.add(discovery_store(self.spec).client_port)
        return ports

    def tcp(self, src: str, host: str, port: int) -> tuple[bool, str]:
        """A TCP connect from src's network, as a local node's `tcp_connect` reports it."""
        dst = self.node_at(host)
        if dst is None:
            return False, "OSError: [Errno 113] No route to host"
        if dst != src and ({src, dst} & self.cut or self._dropped(dst, "tcp", port, src)):
            return False, "TimeoutError: timed out"
        if not self._listens(dst, port):
            return False, "ConnectionRefusedError: [Errno 111] Connection refused"
        return True, ""

    def tcp_answers(self, src: str, host: str, port: int) -> tuple[bool, str]:
        """A request to a published port, as a node's `tcp_answers` reports it: the
        container behind it answers unless it is paused."""
        ok, why = self.tcp(src, host, port)
        if not ok:
            return ok, why
        dst = self.node_at(host)
        frozen = any(
            c.status == "paused"
            for c in self.running_containers()
            if c.node == dst
            and any(int(b["HostPort"]) == port for bs in c.ports.values() for b in bs)
        )
        if frozen:
            return False, "accepts connections, then answers nothing within 3s"
        return True, "answers"

    def reaches_kv(self, node: str) -> bool:
        kv = self.spec.kv
        return kv is not None and self.tcp(node, self.address(kv.node), kv.client_port)[0]

    def in_store(self, node: str) -> bool:
        """The engine keeps its global state in this lab's store, and reaches it."""
        return (
            node not in self.dead
            and self.stores[node] == self.spec.cluster_store_url()
            and self.reaches_kv(node)
            and not self.kv_hung
        )

    def lists_network(self, node: str, network: str) -> bool:
        if self.swarm:
            return self._swarm_lists(node, network)
        # Global-scope networks live in the store: an engine that cannot read it lists none.
        return any(n.name == network for n in self.spec.networks) and self.in_store(node)

    def _swarm_lists(self, node: str, network: str) -> bool:
        """A swarm-scope overlay shows on the managers, and on a worker once a container
        of its own uses it."""
        if node in self.dead or not any(n.name == network for n in self.spec.networks):
            return False
        return node in self.managers or any(
            c.node == node and network in c.networks for c in self.running_containers()
        )

    def can_attach(self, node: str, network: str) -> bool:
        """docker run --network: a swarm worker asks a manager to attach it to an
        attachable overlay it does not list yet."""
        if self.lists_network(node, network):
            return True
        net = next((n for n in self.spec.networks if n.name == network), None)
        return self.swarm and net is not None and net.attachable and self.has_leader()

    # --- swarm mode ------------------------------------------------------------------------
    def has_leader(self) -> bool:
        """The raft elects a leader while more than half of the managers are up."""
        up = [m for m in self.managers if m not in self.dead | self.cut]
        return self.leader_lingers or len(up) > len(self.managers) / 2

    def swarm_info(self, node: str) -> dict[str, Any]:
        if not self.swarm:
            return {"LocalNodeState": "inactive", "ControlAvailable": False}
        manager = node in self.managers
        return {
            "LocalNodeState": "active",
            "ControlAvailable": manager,
            "Error": "" if not manager or self.has_leader() else NO_LEADER,
        }

    def swarm_node(self, name: str) -> dict[str, Any]:
        """A node as `docker node inspect` on a manager shows it."""
        up = name not in self.dead | self.cut
        attrs: dict[str, Any] = {
            "ID": hashlib.sha256(f"swarm-node/{name}".encode()).hexdigest()[:25],
            "Description": {"Hostname": name},
            "Status": {"State": "ready" if up else "down", "Addr": self.address(name)},
            "Spec": {
                "Role": "manager" if name in self.managers else "worker",
                "Availability": "active",
                "Labels": {"overlaylab.node": name},
            },
        }
        if name in self.managers:
            attrs["ManagerStatus"] = {
                "Addr": f"{self.address(name)}:2377",
                "Reachability": "reachable" if up else "unreachable",
            }
        return attrs

    def hears(self, observer: str, node: str) -> bool:
        """Does `observer` know what `node` announced? Swarm nodes learn each other's
        containers over networkdb and drop a node whose gossip port they cannot open (a
        legacy overlay reads them from the store)."""
        if not self.swarm or observer == node:
            return True
        return self.tcp(observer, self.address(node), SERF_PORT)[0]

    def network_info(self, name: str) -> dict[str, Any]:
        net = next(n for n in self.spec.networks if n.name == name)
        return {
            "Name": name,
            "Id": hashlib.sha256(f"network/{name}".encode()).hexdigest(),
            "Driver": net.driver,
            "Scope": "swarm" if self.swarm else "global",
            "IPAM": {"Config": [{"Subnet": str(self._subnet(name))}]},
        }

    def registrations(self) -> set[str]:
        """Keys under docker/nodes: refreshed every heartbeat by engines in the store,
        left to expire (discovery TTL) by the others."""
        return {
            str(self.advertised[n])
            for n in self.engine_nodes
            if self.advertised[n]
            and (
                (self.in_store(n) and n not in self.not_registering)
                or not self.registrations_expired
            )
        }

    def _joined(self, node: str) -> set[str]:
        """Members node's serf agent ever met: its island, minus agents on addresses
        peers cannot reach (an engine advertising one meets no one)."""
        if node in self.no_serf:
            return set()
        if not self.advertises_lab_address(node):
            return {node}
        island = next((i for i in self.islands if node in i), {node})
        return {
            m
            for m in island
            if m == node or (self.advertises_lab_address(m) and m not in self.no_serf)
        }

    def gossip_view(self, node: str) -> set[str]:
        joined = self._joined(node)
        if node in self.dead:
            return joined  # its last word, in the log it left
        if node in self.cut:
            return {node}
        return {m for m in joined if m == node or m not in self.dead | self.cut}

    def dockerd_log(self, node: str) -> str:
        def line(event: str, member: str) -> str:
            return (
                'time="2026-11-28T01:07:33.160000000Z" level=info msg="2026/11/28 01:07:33 '
                f'[INFO] serf: {event}: {member} {self.address(member)}\\n"'
            )

        joined, view = sorted(self._joined(node)), self.gossip_view(node)
        lines = [f'time="2026-11-28T01:07:32.0Z" level=info msg="Starting up" node={node}']
        if node in self.no_serf:
            lines += [
                'time="2026-11-28T01:07:34.0Z" level=error msg="discovery error: address '
                f'{value}: missing port in address"'
                for value in self.discovery_junk.values()
            ]
        lines += [line("EventMemberJoin", m) for m in joined]
        lines += [line("EventMemberFailed", m) for m in joined if m not in view]
        if node in self.panicked:
            lines.append(LIBNETWORK_PANIC)
        return "\n".join(lines) + "\n"

    def tunnel(self, a: str, b: str) -> bool:
        """Does VXLAN carry overlay packets between nodes a and b (both ways)?"""
        if {a, b} & self.cut or not (
            self.advertises_lab_address(a) and self.advertises_lab_address(b)
        ):
            return False
        if any(self._dropped(x, *VXLAN, y) for x, y in ((a, b), (b, a))):
            return False
        # Peers learn where containers are over serf: across islands, no entries.
        return b in self.gossip_view(a) and a in self.gossip_view(b)

    def daemon_json(self, node: str) -> bytes:
        """The part of the engine's daemon.json checks read."""
        advertise = self.configured_advertise.get(node, self.spec.engine.cluster_advertise)
        return json.dumps({"cluster-advertise": advertise}).encode()

    def vtep(self, node: str) -> str:
        """Where peers send node's VXLAN: the address its engine advertises."""
        return str(self.advertised[node] or self.address(node)).rsplit(":", 1)[0]

    def learned(self, node: str, peer: str) -> bool:
        """Did node's engine hear of peer's containers over serf (they met, and node did
        not join after they were announced)?"""
        return (
            peer in self._joined(node) and node in self._joined(peer) and node not in self.forgotten
        )

    def fdb(self, node: str, network: str) -> dict[str, str]:
        """node's overlay sandbox of network: MAC -> VXLAN destination."""
        entries = {
            mac_of(c.networks[network]): self.vtep(c.node)
            for c in self.running_containers()
            if network in c.networks and c.node != node and self.learned(node, c.node)
        }
        return {**entries, **self.stale_fdb.get((node, network), {})}

    def sends(self, node: str, network: str, mac: str) -> str | None:
        return self.fdb(node, network).get(mac)

    def read_sandbox(self, node: str, netns: str, prefix: str) -> tuple[int, str, str]:
        """READ_SCRIPT in node's sandbox of the network whose id starts with `prefix`."""
        exec_root = str(self.provider.node(node).paths.exec_root)
        network = next(
            (
                n.name
                for n in self.spec.networks
                if netns == f"{exec_root}/netns"
                and self.network_info(n.name)["Id"].startswith(prefix)
            ),
            None,
        )
        local = [
            c
            for c in self.running_containers()
            if c.node == node and network in c.networks and node not in self.dead
        ]
        if network is None or not local:
            return 1, "", f"no overlay sandbox of {prefix} in {netns}\n"
        fdb = self.fdb(node, network)
        addresses = {mac_of(a): a for c in self._all() for a in c.networks.values()}
        out = "".join(
            f"{mac} dst {dst} link-netnsid 0 self permanent\n" for mac, dst in fdb.items()
        )
        out += "==\n" + "".join(
            f"{addresses[mac]} lladdr {mac} PERMANENT\n" for mac in fdb if mac in addresses
        )
        return 0, out, ""

    def mtu(self, c: FakeContainer) -> int:
        """The MTU of c's eth0: its first overlay's, less room for the VXLAN headers."""
        net = next(n for n in self.spec.networks if n.name == next(iter(c.networks)))
        return int(net.options.get(DRIVER_MTU_OPTION, "1500")) - VXLAN_OVERHEAD

    def holder(self, address: str) -> tuple[FakeContainer, str] | None:
        for c in self.running_containers():
            for net, own in c.networks.items():
                if own == address:
                    return c, net
        return None

    def reaches(
        self, src: FakeContainer, address: str, proto: str, payload: int = DEFAULT_PING_PAYLOAD
    ) -> bool:
        """Does a packet from src get to `address` and its answer back?"""
        if ipaddress.IPv4Address(address) in GWBRIDGE:  # a node-local bridge
            return any(
                c.node == src.node and c.gwbridge == address for c in self.running_containers()
            )
        found = self.holder(address)
        if found is None:
            return False
        target, network = found
        if network not in src.networks:
            return False  # overlays are separate segments
        if {(src.node, network, proto), (target.node, network, proto)} & self.sandbox_filtered:
            return False
        if target.node == src.node:
            return (src.node, proto) not in self.same_host_blocked
        links = (self.link_mtu.get(n, self.spec.lab.mtu) for n in (src.node, target.node))
        fits = payload + ICMP_OVERHEAD + VXLAN_OVERHEAD <= min(links)
        # Each side's overlay sandbox must send the other's MAC to the other's engine.
        mapped = self.sends(src.node, network, mac_of(target.networks[network])) == self.vtep(
            target.node
        ) and self.sends(target.node, network, mac_of(src.networks[network])) == self.vtep(src.node)
        return self.tunnel(src.node, target.node) and fits and mapped

    def names(self, c: FakeContainer, network: str) -> set[str]:
        own = [c.name, *c.aliases.get(network, [])]
        return {*own, *(f"{n}.{network}" for n in own)}

    def resolve(self, src: FakeContainer, name: str) -> list[str]:
        """The embedded DNS (127.0.0.11) of src's engine. Records of other hosts'
        containers come from the store, so they outlive gossip and tunnels."""
        answers: list[str] = []
        if src.node in self.dns_cut:
            return answers
        for network in src.networks:
            # A swarm service's name answers its VIP; tasks.<service> its tasks' addresses.
            for service, vips in self.services.items():
                names = (service, service.split("_", 1)[1])
                if network in vips and name in names:
                    answers.append(vips[network])
                if name in {f"tasks.{n}" for n in names}:
                    answers += [
                        c.networks[network]
                        for c in self.running_containers()
                        if c.labels.get(SERVICE_LABEL) == service and network in c.networks
                    ]
            # An engine cut from its (running) store stops listing the global networks,
            # and answers no name of another engine's container on them (seen on a real
            # lab a few seconds after the store's port was dropped).
            forgot = self.kv_running and not self.swarm and not self.reaches_kv(src.node)
            for c in self.running_containers():
                if not self.hears(src.node, c.node) or (forgot and c.node != src.node):
                    continue
                if network in c.networks and name in self.names(c, network):
                    stale = c.node != src.node and c.name in self.stale_records
                    answers.append(self.stale_records[c.name] if stale else c.networks[network])
        return list(dict.fromkeys(answers))

    # --- classic swarm: the master, through the docker CLI on its node ----------------------
    def master_cli(self, node: str, url: str, args: list[str]) -> tuple[int, str, str]:
        """`docker -H tcp://MASTER:3376 ARGS` run on node. The master schedules as told
        (constraint:node==X), and lists every agent Healthy at its engine's address."""
        if url != f"tcp://{self.address(node)}:{MANAGE_PORT}" or node not in self.masters():
            unknown(f"the docker CLI against {url} on {node}")
        if self.master_down:
            return 1, "", f"Cannot connect to the Docker daemon at {url}. Is it running?\n"
        match args:
            case ["info", "--format", "{{json .}}"]:
                listed = {} if self.master_blind else self.discovered()
                status = [["Nodes", str(len(listed))]]
                for n, address in listed.items():
                    status += [[f" {n}", address]]
                    status += [["  └ Status", "Healthy"], ["  └ Error", "(none)"]]
                return 0, json.dumps({"SystemStatus": status}), ""
            case ["ps", "-a", "-q", "--filter", label_filter]:
                key, _, value = label_filter.removeprefix("label=").partition("=")
                listed = [c.id[:12] for c in self.containers if c.labels.get(key) == value]
                return 0, "".join(f"{i}\n" for i in listed), ""
            case ["rm", "-f", name]:  # a name, or an id as `ps -q` lists it
                found = self.container(name) or next(
                    (c for c in self.containers if c.id.startswith(name)), None
                )
                if found is None:
                    return 1, "", f"Error: No such container: {name}\n"
                self.remove(found)
                return 0, f"{name}\n", ""
            case ["run", "-d", "--name", name, "-e", constraint, "--network", network, *rest]:
                return self._master_run(list(args), name, constraint, network, rest)
            case ["inspect", "--format", "{{.Node.Name}}", name]:
                found = self.container(name)
                return (0, f"{found.node}\n", "") if found else (1, "", f"No such: {name}\n")
            case ["inspect", "--format", "{{json .NetworkSettings.Networks}}", name]:
                found = self.container(name)
                if found is None:
                    return 1, "", f"Error: No such object: {name}\n"
                return 0, json.dumps(found.attrs["NetworkSettings"]["Networks"]) + "\n", ""
            case ["exec", name, "ping", "-c", "1", "-W", "2", target]:
                found = self.container(name)
                if found is None:
                    return 1, "", f"Error: No such container: {name}\n"
                answers = self.resolve(found, target)
                code, out = self._busybox_ping(found, answers[0]) if answers else (1, "")
                return code, out, "" if answers else f"ping: bad address '{target}'\n"
        unknown(f"docker {args} through the master")

    def _master_run(
        self, args: list[str], name: str, constraint: str, network: str, rest: list[str]
    ) -> tuple[int, str, str]:
        """`docker run -d --name N -e constraint:node==X --network NET [--ip A] --label L
        IMAGE CMD...` through the master: started on X, at A when asked."""
        fixed = rest[1] if rest[:1] == ["--ip"] else None
        rest = rest[2:] if fixed else rest
        labels = {}
        while rest[:1] == ["--label"] and len(rest) > 2:
            key, _, value = rest[1].partition("=")
            labels[key] = value
            rest = rest[2:]
        if not labels or not rest:
            unknown(f"docker run {args} through the master")
        image, *command = rest
        target = constraint.removeprefix("constraint:node==")
        if image != PROBE_IMAGE or target not in self.swarm_nodes():
            unknown(f"docker run {args} through the master")
        if not self.kv_running:  # joining an overlay needs the cluster store
            return 1, "", "docker: Error response from daemon: datastore unavailable.\n"
        if self.cut & set(self.swarm_nodes()):
            # The master waits on an engine it cannot reach, and starts nothing meanwhile.
            raise CommandError(["docker", *args], TIMED_OUT, "", "timed out", "master")
        if target in self.dead:
            return (
                1,
                "",
                (
                    "docker: Error response from daemon: Cannot connect to the Docker daemon at "
                    f"tcp://{self.address(target)}:2376. Is the docker daemon running?\n"
                ),
            )
        if not self.lists_network(target, network):
            return 1, "", f"docker: Error response from daemon: network {network} not found.\n"
        if fixed in {a for c in self.running_containers() for a in c.networks.values()}:
            return 1, "", "docker: Error response from daemon: Address already in use.\n"
        fixed_at = {network: fixed} if fixed else None
        c = self.start_container(target, name, command, [network], labels, fixed=fixed_at)
        self.runs_through_master.append(args)
        return 0, f"{c.id}\n", ""

    def discovered(self) -> dict[str, str]:
        """node -> the address its agent registered, for the agents that did."""
        return {n: a for n, a in self.agent_registered.items() if a is not None}

    def _vip_connect(self, c: FakeContainer, vip: str, port: int) -> int:
        """A TCP connect to a service's VIP from c: IPVS hands it to a task that serves
        the port and that c reaches; without IPVS nothing answers on a VIP."""
        service = next((s for s, vips in self.services.items() if vip in vips.values()), None)
        if service is None or not self.ipvs:
            return 1
        tasks = [
            t
            for t in self.running_containers()
            if t.labels.get(SERVICE_LABEL) == service and t.status == "running"
        ]
        network = next(n for n, a in self.services[service].items() if a == vip)
        answered = any(
            _serves(t) == port
            and network in t.networks
            and self.reaches(c, t.networks[network], "tcp")
            for t in tasks
        )
        return 0 if answered else 1

    def swarm_service(self, name: str) -> dict[str, Any]:
        """A stack's service as `docker service inspect` shows it: VIP endpoints."""
        vips = [
            {
                "NetworkID": self.network_info(net)["Id"],
                "Addr": f"{vip}/{self._subnet(net).prefixlen}",
            }
            for net, vip in self.services[name].items()
        ]
        return {
            "ID": _swarm_id("service", name),
            "Spec": {"Name": name, "Mode": {"Replicated": {"Replicas": 1}}},
            "Endpoint": {"Spec": {"Mode": "vip"}, "VirtualIPs": vips, "Ports": []},
        }

    def swarm_task(self, c: FakeContainer) -> dict[str, Any]:
        """A running task of a stack service, as the manager lists it."""
        return {
            "ID": c.labels[TASK_LABEL],
            "ServiceID": _swarm_id("service", c.labels.get(SERVICE_LABEL, "")),
            "Status": {"State": "running"},
            "NetworksAttachments": [
                {
                    "Network": {"ID": self.network_info(net)["Id"]},
                    "Addresses": [f"{address}/{self._subnet(net).prefixlen}"],
                }
                for net, address in c.networks.items()
            ],
        }

    # --- consul: its leader, the engines' keys, and the agent's services --------------------
    def _consul_get(self, host: str, port: int, path: str) -> tuple[int, str]:
        kv = self.spec.kv
        assert kv is not None
        discovery = "/".join(p for p in (kv.path.strip("/"), "docker/nodes") if p)
        if path == "/v1/status/leader":
            return 200, json.dumps(f"{self.address(kv.node)}:8300")
        if path == f"/v1/kv/{discovery}/?keys":
            keys = [f"{discovery}/{k}" for k in sorted(self.registrations())]
            return (200, json.dumps(keys)) if keys else (404, "")
        if path == "/v1/agent/services":
            services = {"consul": {"Service": "consul", "Address": "", "Port": 8300}}
            for e in self.registry:
                services[e["id"]] = {
                    "Service": e["name"],
                    "Address": e["address"],
                    "Port": e["port"],
                }
            return 200, json.dumps(services)
        unknown(f"GET {path} on {host}:{port}")

    # --- ZooKeeper: its four-letter health word, and zkCli on the KV node -----------------
    def ruok(self, src: str, host: str, port: int) -> tuple[int, str, str]:
        """`ruok` over bash's /dev/tcp from src: "imok" from a serving ZooKeeper."""
        kv = self.spec.kv
        if kv is None or kv.backend != "zookeeper" or self.node_at(host) != kv.node:
            unknown(f"ruok to {host}:{port} from {src}")
        ok, why = self.tcp(src, host, port)
        if not ok:
            timed_out = "timed out" in why
            code = 124 if timed_out else 3
            return code, "", "" if timed_out else f"bash: connect: {why}\n"
        return (124, "", "") if self.kv_hung else (0, "imok", "")

    def zk_ls(self, node: str, server: str, znode: str) -> tuple[int, str, str]:
        """zkCli.sh -server SERVER ls ZNODE on the KV node: the engines' registrations."""
        kv = self.spec.kv
        wanted = f"{self.address(kv.node)}:{kv.client_port}" if kv is not None else None
        if kv is None or node != kv.node or server != wanted:
            unknown(f"zkCli -server {server} on {node}")
        discovery = "/" + "/".join(p for p in (kv.path.strip("/"), "docker/nodes") if p)
        if znode != discovery:
            unknown(f"the znode {znode}")
        if not self.kv_running or self.kv_hung:
            return 1, "", "KeeperErrorCode = ConnectionLoss for " + znode
        keys = sorted(self.registrations())
        if not keys:
            return 1, "", f"Node does not exist: {znode}\nNoNode for {znode}"
        return 0, f"WATCHER::\n\nWatchedEvent state:SyncConnected\n[{', '.join(keys)}]\n", ""

    def _registry_listing(self) -> tuple[int, str]:
        """etcd's recursive listing of /services: a directory per app name."""
        if not self.registry:
            return 404, json.dumps({"errorCode": 100, "message": "Key not found"})
        names = sorted({e["name"] for e in self.registry})
        services = [
            {
                "key": f"/services/{name}",
                "dir": True,
                "nodes": [_registry_entry(e) for e in self.registry if e["name"] == name],
            }
            for name in names
        ]
        return 200, json.dumps({"action": "get", "node": {"key": "/services", "nodes": services}})

    def _health_get(self, c: FakeContainer, address: str, port: int, path: str) -> tuple[int, str]:
        """discovery's GET of a registered health URL from c. A docker_gwbridge address
        is on c's own node's bridge: whoever holds it there answers, if anyone."""
        if ipaddress.IPv4Address(address) in GWBRIDGE:
            local = [x for x in self.running_containers() if x.node == c.node]
            target = next((x for x in local if x.gwbridge == address), None)
        else:
            found = self.holder(address)
            target = found[0] if found else None
        serves = target is not None and any(
            e["container"] == target.name and e["port"] == port and e["serving"]
            for e in self.registry
        )
        if serves and path == "/health" and self.reaches(c, address, "tcp"):
            return 0, "HTTP/1.0 200 OK\r\n"
        return 1, ""

    def masters(self) -> list[str]:
        return [n.name for n in self.spec.engine_nodes if "swarm-master" in n.roles]

    def swarm_nodes(self) -> list[str]:
        roles = {"swarm-master", "swarm-agent"}
        return [n.name for n in self.spec.engine_nodes if roles & set(n.roles)]

    # --- commands in containers ----------------------------------------------------------
    def run_in(self, c: FakeContainer, argv: list[str]) -> tuple[int, str]:
        match argv:
            case ["sh", "-c", script, "probe-batch", *tests] if script == probe_batch.RUNNER:
                return 0, self._probe_batch(c, tests)
            case ["ping", "-c", "1", "-W", "1", address]:
                return self._busybox_ping(c, address)
            case ["sh", "-c", script, "df", address, echo] if script == DF_SCRIPT and (
                echo == source(DF_ECHO).decode()
            ):
                code, out = self._df_echo(c, address)
                out = f"overlay mtu {self.mtu(c)}\n{out}"
                if code == 0:
                    return 0, out
                small, _ = self._iputils_ping(c, address, DEFAULT_PING_PAYLOAD, df=False)
                return 1, f"{out}small ping exit {small}\n"
            case ["nslookup", name]:
                return self._nslookup(c, name)
            case ["sh", "-c", script, "tcp", name, port] if TCP_SCRIPT.match(script):
                return self._http(c, name, int(port))
            case [tool, address, port, token, sends, _every] if tool == UDP_SEND:
                return self._udp_echo(c, address, int(port), token, sends)
            case ["sh", "-c", script, "ask", *_addresses] if script == overlay_peers.ASK_SCRIPT:
                # Pings that make the engine look up peers it missed: what it can learn
                # this way, the fake's sandboxes hold already (`learned`).
                return 0, ""
            case ["sh", "-c", script, "vip", vip, port] if script == VIP_CONNECT:
                return self._vip_connect(c, vip, int(port)), ""
            case ["cat", "/proc/net/tcp", "/proc/net/tcp6"]:
                return 0, _proc_net_tcp(_serves(c))
            case ["sh", "-c", script, "get", address, port, path] if script == DISCOVERY_GET:
                return self._health_get(c, address, int(port), path)
            case ["sh", "-c", script] if script == ADVERTISE_SCRIPT:
                return 0, self._interfaces_hostname_hosts(c)
        unknown(f"the command {argv} in {c.name}")

    def _probe_batch(self, c: FakeContainer, tests: list[str]) -> str:
        """What the batch runner prints: each test's output, then its marker line."""
        printed = ""
        for test in tests:
            test_id, _timeout, command = test.split(" ", 2)
            code, out = self.run_in(c, shlex.split(command))
            printed += f"{out}\n{probe_batch.MARKER} {test_id} {code}\n"
        return printed

    def _busybox_ping(self, c: FakeContainer, address: str) -> tuple[int, str]:
        head = f"PING {address} ({address}): 56 data bytes\n"
        if self.reaches(c, address, "icmp"):
            return 0, (
                f"{head}64 bytes from {address}: seq=0 ttl=64 time=0.087 ms\n\n"
                f"--- {address} ping statistics ---\n"
                "1 packets transmitted, 1 packets received, 0% packet loss\n"
                "round-trip min/avg/max = 0.087/0.087/0.087 ms\n"
            )
        return 1, (
            f"{head}\n--- {address} ping statistics ---\n"
            "1 packets transmitted, 0 packets received, 100% packet loss\n"
        )

    def _iputils_ping(
        self, c: FakeContainer, address: str, payload: int, df: bool = True
    ) -> tuple[int, str]:
        mtu = self.mtu(c)
        if df and payload + ICMP_OVERHEAD > mtu:
            return 1, f"ping: local error: message too long, mtu={mtu}\n"
        head = f"PING {address} ({address}) {payload}({payload + ICMP_OVERHEAD}) bytes of data.\n"
        if self.reaches(c, address, "icmp", payload):
            return 0, (
                f"{head}{payload + 8} bytes from {address}: icmp_seq=1 ttl=64 time=0.312 ms\n\n"
                f"--- {address} ping statistics ---\n"
                "1 packets transmitted, 1 received, 0% packet loss, time 0ms\n"
            )
        return 1, (
            f"{head}\n--- {address} ping statistics ---\n"
            "1 packets transmitted, 0 received, 100% packet loss, time 0ms\n"
        )

    def _df_echo(self, c: FakeContainer, address: str) -> tuple[int, str]:
        """probe_tools' df-echo: the path MTU c's kernel holds for `address`, then one
        echo of c's MTU with don't-fragment, past that cached value."""
        size = self.mtu(c)
        out = f"path mtu {self.path_mtu.get((c.name, address), size)}\n"
        if self.reaches(c, address, "icmp", size - ICMP_OVERHEAD):
            return 0, f"{out}echo of {size} bytes with don't-fragment came back\n"
        # c's own node's VXLAN device refuses what does not fit its link, and says so
        # (ICMP "fragmentation needed"): c's kernel caches the smaller path MTU.
        link = self.link_mtu.get(c.node, self.spec.lab.mtu)
        if size + VXLAN_OVERHEAD > link:
            self.path_mtu[(c.name, address)] = link - VXLAN_OVERHEAD
        return 1, f"{out}no echo of {size} bytes with don't-fragment within 1 s\n"

    def _nslookup(self, c: FakeContainer, name: str) -> tuple[int, str]:
        if c.node in self.dns_cut:
            return 1, ";; connection timed out; no servers could be reached\n\n"
        head = "Server:\t\t127.0.0.11\nAddress:\t127.0.0.11:53\n\n"
        answers = self.resolve(c, name)
        if not answers:
            return 1, f"{head}** server can't find {name}: NXDOMAIN\n\n"
        body = "".join(f"Name:\t{name}\nAddress: {a}\n" for a in answers)
        return 0, f"{head}Non-authoritative answer:\n{body}\n"

    def _http(self, c: FakeContainer, name: str, port: int) -> tuple[int, str]:
        answers = self.resolve(c, name)
        if not answers:
            return 1, f"nc: bad address '{name}'\n"
        found = self.holder(answers[0])
        serves = found is not None and found[0].is_probe and port == PROBE_PORT
        if serves and self.reaches(c, answers[0], "tcp"):
            return 0, "HTTP/1.0 200 OK\r\nContent-type: text/html\r\n\r\n" + PROBE_PAGE.decode()
        return 1, ""

    def _udp_echo(
        self, c: FakeContainer, address: str, port: int, token: str, sends: str
    ) -> tuple[int, str]:
        found = self.holder(address)
        serves = found is not None and found[0].is_probe and port == PROBE_UDP_PORT
        if serves and self.reaches(c, address, "udp"):
            return 0, f"{token}\n"
        return 1, f"udp-send: no echo from {address}:{port} after {sends} datagrams\n"

    def _interfaces_hostname_hosts(self, c: FakeContainer) -> str:
        """`ip -o -4 addr`, hostname and /etc/hosts. The engine attaches the first
        overlay (eth0), then docker_gwbridge (eth1), then networks connected later;
        interface indexes grow in that order."""
        overlays = list(c.networks.values())
        legs = [overlays[0], c.gwbridge, *overlays[1:]]
        lines = ["1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever"]
        for i, address in enumerate(legs):
            prefix = GWBRIDGE.prefixlen if address == c.gwbridge else 24
            lines.append(
                f"{100 + 2 * i}: eth{i}    inet {address}/{prefix} scope global eth{i}"
                "\\       valid_lft forever preferred_lft forever"
            )
        hosts = (
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
            f"{overlays[0]}\t{c.hostname}\n"
        )
        return "\n".join(lines) + f"\n==\n{c.hostname}\n==\n{hosts}"

    # --- containers ----------------------------------------------------------------------
    def _all(self) -> list[FakeContainer]:
        with self._lock:
            return list(self.containers)

    def running_containers(self) -> list[FakeContainer]:
        return [c for c in self._all() if c.running]

    def container(self, name: str, node: str | None = None) -> FakeContainer | None:
        return next((c for c in self._all() if c.name == name and node in (None, c.node)), None)

    def remove(self, c: FakeContainer) -> None:
        with self._lock:
            self.containers.remove(c)

    def _subnet(self, network: str) -> ipaddress.IPv4Network:
        net = next(n for n in self.spec.networks if n.name == network)
        index = [n.name for n in self.spec.networks].index(network)
        return net.subnet or ipaddress.IPv4Network(f"10.0.{9 + index}.0/24")

    def _allocate(self, network: str, node: str = "") -> str:
        with self._lock:
            if (node, network) in self.recycled:
                return self.recycled.pop((node, network))
            host = self._next_address.get(network, 2)  # .1 is the gateway
            self._next_address[network] = host + 1
            return str(self._subnet(network).network_address + host)

    def start_container(
        self,
        node: str,
        name: str,
        command: list[str],
        networks: list[str],
        labels: dict[str, str],
        hostname: str | None = None,
        aliases: Sequence[str] = (),
        ports: dict[str, list[dict[str, str]]] | None = None,
        fixed: dict[str, str] | None = None,  # network -> the address asked for (--ip)
    ) -> FakeContainer:
        fixed = fixed or {}
        with self._lock:
            gw = self._next_gwbridge.get(node, 2)
            self._next_gwbridge[node] = gw + 1
            c = FakeContainer(
                lab=self,
                node=node,
                name=name,
                hostname=hostname or "",
                command=list(command),
                networks={net: fixed.get(net) or self._allocate(net, node) for net in networks},
                aliases={},
                gwbridge=str(GWBRIDGE.network_address + gw),
                labels=dict(labels),
                ports=ports or {},
            )
            c.hostname = c.hostname or c.short_id
            c.aliases = {net: [*aliases, c.short_id] for net in networks}
            self.containers.append(c)
            return c

    def _up(self) -> None:
        """What `invoke up` leaves: the probes (as ensure_probes starts them), then the stacks."""
        probe_labels = {LABEL_CLUSTER: self.spec.name, LABEL_ROLE: "probe"}
        for net in self.spec.networks:
            for node in self.engine_nodes:
                for slot in SLOTS:
                    name = probe_name(net.name, node, slot)
                    self.start_container(
                        node, name, PROBE_COMMAND, [net.name], probe_labels, hostname=name
                    )
        overlays = {n.name for n in self.spec.networks}
        for stack in self.spec.stacks:
            compose = yaml.safe_load(self.ctx.resolve_spec_path(stack.file).read_text())
            for service, node in sorted(stack.services.items()):
                definition = compose["services"][service]
                networks = definition.get("networks", [])
                if self.swarm:
                    self._deploy(stack.name, service, node, definition, overlays)
                    continue
                self.start_container(
                    node,
                    definition.get("container_name", f"{stack.name}_{service}_1"),
                    list(definition.get("command", [])),
                    [n for n in networks if n in overlays],
                    {
                        "com.docker.compose.project": stack.name,
                        "com.docker.compose.service": service,
                    },
                    aliases=[service],
                    ports=_published(definition.get("ports", [])),
                )

    def _deploy(
        self, stack: str, service: str, node: str, definition: dict[str, Any], overlays: set[str]
    ) -> None:
        """`docker stack deploy` of one service as `up` does it on a kernel with IPVS:
        endpoint mode vip (a VIP on each overlay), one task on its node."""
        full = f"{stack}_{service}"
        networks = [n for n in definition.get("networks", []) if n in overlays]
        self.services[full] = {net: self._allocate(net) for net in networks}
        task = _swarm_id("task", full)
        labels = {
            "com.docker.stack.namespace": stack,
            SERVICE_LABEL: full,
            TASK_LABEL: task,
        }
        command = list(definition.get("command", []))
        self.start_container(node, f"{full}.1.{task}", command, networks, labels)

    # --- the seam the checks must keep to ------------------------------------------------
    def _refuse_direct_io(self) -> None:
        """Checks reach a node only through its `Node` handle, which this fake answers.

        A module of `overlaylab.verify.checks` that holds a local provider's helper, a socket
        library or a host command runner would reach the machine around the handle:
        its test would be answered by the real machine (or fail for reasons unrelated to
        the lab), so it stops here instead.
        """
        for info in pkgutil.iter_modules(overlaylab.verify.checks.__path__):
            module = importlib.import_module(f"overlaylab.verify.checks.{info.name}")
            for attr, value in vars(module).items():
                is_module = isinstance(value, ModuleType)
                origin = value.__name__ if is_module else getattr(value, "__module__", None)
                if isinstance(origin, str) and _direct_io(origin):
                    where = origin if is_module else f"{origin}.{attr}"
                    unknown(f"{where}, which {module.__name__} holds: reach nodes through Node")

    def http_get(self, src: str, host: str, port: int, path: str) -> tuple[int, str]:
        """A GET from src's network, as a node's `http_get` does it: only etcd's health,
        its listing of the engines' registrations is served (and an empty service
        registry)."""
        ok, why = self.tcp(src, host, port)
        if not ok:
            raise (TimeoutError if "timed out" in why else ConnectionRefusedError)(why)
        kv = self.spec.kv
        if kv is not None and self.node_at(host) == kv.node and self.kv_hung:
            raise TimeoutError("timed out")
        if path == "/v1/kv/docker/swarm/nodes/?keys" and kv is not None:
            # Classic swarm's agents, in the lab's consul or a consul beside its store.
            if port != discovery_store(self.spec).client_port:
                unknown(f"GET {path} on {host}:{port}")
            keys = [f"docker/swarm/nodes/{a}" for a in self.discovered().values()]
            return (200, json.dumps(keys)) if keys else (404, "")
        if kv is not None and kv.backend == "consul":
            return self._consul_get(host, port, path)
        if kv is not None and kv.backend == "etcd" and path == "/health":
            return 200, '{"health":"true","reason":""}'
        if kv is None or kv.backend != "etcd" or not path.startswith("/v2/keys/"):
            unknown(f"GET {path} on {host}:{port}")
        if path == "/v2/keys/services?recursive=true":
            return self._registry_listing()
        directory = "/" + path.removeprefix("/v2/keys/").strip("/")
        if directory == f"{kv.path}/docker/swarm/nodes":
            # Every agent registers its --advertise (heartbeat 60 s, TTL 180 s).
            nodes = [
                {"key": f"{directory}/{a}", "value": a, "ttl": 170}
                for a in self.discovered().values()
            ]
            return 200, json.dumps({"node": {"key": directory, "dir": True, "nodes": nodes}})
        if directory != f"{kv.path}/docker/nodes":
            unknown(f"the etcd key {directory}")
        keys = sorted(self.registrations())
        if not keys:
            return 404, json.dumps({"errorCode": 100, "message": "Key not found"})
        nodes = [{"key": f"{directory}/{k}", "value": k, "ttl": 57} for k in keys]
        return 200, json.dumps(
            {"action": "get", "node": {"key": directory, "dir": True, "nodes": nodes}}
        )


@contextlib.contextmanager
def _without_settling() -> Iterator[None]:
    """Verify waits for the real lab to settle: overlay_peers reads what looks wrong a
    second time SETTLE seconds later, and probes replaced as outdated get
    OUTDATED_SETTLE seconds for their removal to spread by gossip. Here a fault stays as
    injected and a removal is seen at once, so verify goes on at once: the pauses would
    only make each scenario slower."""
    pauses = overlay_peers.SETTLE, verify_probes.OUTDATED_SETTLE
    overlay_peers.SETTLE = verify_probes.OUTDATED_SETTLE = 0.0
    try:
        yield
    finally:
        overlay_peers.SETTLE, verify_probes.OUTDATED_SETTLE = pauses


def _swarm_id(kind: str, name: str) -> str:
    return hashlib.sha256(f"{kind}/{name}".encode()).hexdigest()[:25]


def _serves(c: FakeContainer) -> int | None:
    """The TCP port c's program listens on (busybox httpd -p PORT), if any."""
    command = c.command
    return int(command[command.index("-p") + 1]) if "-p" in command else None


def _proc_net_tcp(port: int | None) -> str:
    """/proc/net/tcp with a listener on 0.0.0.0:port (and the embedded DNS on 127.0.0.11)."""
    lines = ["  sl  local_address rem_address   st", "   0: 0B00007F:A0B1 00000000:0000 0A"]
    if port is not None:
        lines.append(f"   1: 00000000:{port:04X} 00000000:0000 0A")
    return "\n".join(lines) + "\n"


def _registry_entry(entry: dict[str, Any]) -> dict[str, str]:
    value = {k: entry[k] for k in ("id", "address", "port", "health")}
    return {"key": f"/services/{entry['name']}/{entry['id']}", "value": json.dumps(value)}


def _direct_io(module: str) -> bool:
    return any(module == root or module.startswith(f"{root}.") for root in DIRECT_IO)


def _published(ports: list[str]) -> dict[str, list[dict[str, str]]]:
    """compose `ports: ["80:5000"]` as the engine reports the bindings."""
    found: dict[str, list[dict[str, str]]] = {}
    for entry in ports:
        spec, _, proto = str(entry).partition("/")
        host, _, container = spec.rpartition(":")
        found.setdefault(f"{container}/{proto or 'tcp'}", []).append(
            {"HostIp": "0.0.0.0", "HostPort": host}
        )
    return found


def _raising(exc: Exception) -> Callable[[Any], list[Any]]:
    def run(vctx: Any) -> list[Any]:
        raise exc

    return run


# === The lab as `up` finds and builds it ==============================================
# The seams under `up` (tests/unit/test_ensure_steps.py, test_up_sequence.py): the
# provider and its node handles, docker engines, `ip`. Each fake keeps the state the
# real thing would have (which services run, which images an engine holds, which links
# exist) and records what it was asked to do, so a test can set up "present", "half
# there" or "missing" and then assert the step's decision on the recorded calls. They
# refuse what the real thing refuses (adding a namespace twice, loading a corrupt
# tarball), so a wrong decision fails. A test of a check uses `FakeLab` above instead:
# the classes here are named Up* so that each name means one thing.


def captured_progress() -> tuple[Progress, io.StringIO]:
    """A Progress whose lines land in a buffer (plain text, wide enough not to wrap)."""
    buffer = io.StringIO()
    console = Console(file=buffer, width=300, highlight=False, color_system=None)
    return Progress(console=console), buffer


def fake_context(
    tmp_path: Path,
    provider: UpProvider,
    spec: ClusterSpec | None = None,
    progress: Progress | None = None,
) -> LabContext:
    """The default lab's context (or `spec`'s) with `provider` in place of the real one."""
    ctx = make_ctx(spec or load_spec(LAB_YML), tmp_path / "state", progress=progress)
    provider.place(ctx.spec, ctx.layout)
    ctx.provider = provider
    return ctx


# --- docker engines -----------------------------------------------------------------------
class UpImages:
    def __init__(self, engine: UpEngine) -> None:
        self.engine = engine

    def get(self, name: str) -> SimpleNamespace:
        if name not in self.engine.image_names:
            raise docker.errors.ImageNotFound(f"No such image: {name}")
        return SimpleNamespace(
            id=name,
            labels=dict(self.engine.image_labels.get(name, {})),
            # `docker save`, in one chunk: the image with its labels.
            save=lambda named=True: iter(
                [image_tarball(name, self.engine.image_labels.get(name, {}))]
            ),
        )

    def load(self, data: bytes) -> list[str]:
        """A tarball made by `image_tarball` holds its image; anything else is corrupt."""
        self.engine.loaded.append(data)
        if not data.startswith(b"image:"):
            raise docker.errors.APIError(
                "500 Server Error", explanation="archive/tar: invalid tar header"
            )
        name, _, labels = data.removeprefix(b"image:").decode().partition("\n")
        if self.engine.load_loses_images:
            return []
        self.engine.image_names.add(name)
        if labels:
            self.engine.image_labels[name] = json.loads(labels)
        return [name]


def image_tarball(name: str, labels: dict[str, str] | None = None) -> bytes:
    """The bytes a fake engine accepts as `docker save` output of `name` (and its labels)."""
    return b"image:" + name.encode() + (b"\n" + json.dumps(labels).encode() if labels else b"")


class UpApi:
    def __init__(self, engine: UpEngine) -> None:
        self.engine = engine

    def import_image_from_data(
        self, data: bytes, repository: str, tag: str, changes: list[str] | None = None
    ) -> dict[str, str]:
        self.engine.imported.append(f"{repository}:{tag}")
        self.engine.image_names.add(f"{repository}:{tag}")
        labels = [c.removeprefix("LABEL ") for c in changes or [] if c.startswith("LABEL ")]
        pairs = [pair.split("=", 1) for line in labels for pair in line.split()]
        self.engine.image_labels[f"{repository}:{tag}"] = dict(pairs)
        return {"status": "imported"}

    def networks(self, names: list[str]) -> list[dict[str, str]]:
        found = self.engine.networks
        return [{"Name": n, "Id": found[n]["Id"]} for n in names if n in found]

    def inspect_network(self, net_id: str) -> dict[str, Any]:
        for info in self.engine.networks.values():
            if info["Id"] == net_id:
                return info
        raise docker.errors.NotFound(f"network {net_id} not found")

    def create_network(self, name: str, **options: Any) -> dict[str, str]:
        """Global scope, as with a shared KV store: every engine in the scope sees it."""
        self.engine.created.append((name, options))
        if name in self.engine.networks:
            raise docker.errors.APIError("409 Conflict", explanation=f"network {name} exists")
        ipam = options.get("ipam") or {}
        info = network_info(
            name,
            driver=options.get("driver") or "bridge",
            subnet=(ipam.get("Config") or [{}])[0].get("Subnet"),
            net_id=f"{len(self.engine.created):064x}",
        )
        info["Labels"] = dict(options.get("labels") or {})
        for engine in self.engine.scope:
            engine.networks[name] = info
        return {"Id": info["Id"]}


def network_info(name: str, driver: str, subnet: str | None, net_id: str) -> dict[str, Any]:
    """What `docker network inspect` says about a network (the fields steps read)."""
    config = [{"Subnet": subnet}] if subnet else []
    return {"Id": net_id, "Name": name, "Driver": driver, "IPAM": {"Config": config}}


class UpContainer:
    """A compose service's container, on the demo stack's network `dn`."""

    def __init__(self, engine: UpEngine, key: tuple[str, str], status: str) -> None:
        self.engine, self.key, self.status = engine, key, status

    @property
    def attrs(self) -> dict[str, Any]:
        aliases = {"Aliases": [self.key[1]]}
        return {"State": {"Status": self.status}, "NetworkSettings": {"Networks": {"dn": aliases}}}

    def remove(self, force: bool = False) -> None:
        del self.engine.services[self.key]


class UpRunContainer:
    """A container made with `docker run` (classic swarm's agent and manager): its
    command line (Args) and options as given, running until it is removed or stopped."""

    def __init__(self, engine: UpEngine, name: str, image: str, args: list[str], **options: Any):
        self.engine, self.name, self.image = engine, name, image
        self.options = options
        self.status = "running"
        self.args = list(args)

    @property
    def attrs(self) -> dict[str, Any]:
        return {"Name": f"/{self.name}", "Args": list(self.args), "State": {"Status": self.status}}

    def remove(self, force: bool = False) -> None:
        if self.status == "running" and not force:
            raise docker.errors.APIError(f"409 Conflict: {self.name} is running")
        del self.engine.ran[self.name]


class UpContainers:
    def __init__(self, engine: UpEngine) -> None:
        self.engine = engine

    def list(
        self, filters: dict[str, list[str]] | None = None, all: bool = False
    ) -> list[UpContainer | UpRunContainer]:
        if filters is None:  # compose services are listed by their labels only
            ran = self.engine.ran.values()
            return [c for c in ran if all or c.status == "running"]
        labels = dict(label.split("=", 1) for label in filters["label"])
        key = (labels["com.docker.compose.project"], labels["com.docker.compose.service"])
        status = self.engine.services.get(key)
        return [UpContainer(self.engine, key, status)] if status else []

    def run(self, image: str, command: list[str], **options: Any) -> UpRunContainer:
        """docker run -d: refused for an image the engine lacks or a name in use."""
        engine, name = self.engine, options["name"]
        engine.run_calls.append((name, image, list(command)))
        if image not in engine.image_names:
            raise docker.errors.ImageNotFound(f"No such image: {image}")
        if name in engine.ran:
            raise docker.errors.APIError(f'409 Conflict: the name "/{name}" is in use')
        options = {k: v for k, v in options.items() if k != "name"}
        engine.ran[name] = UpRunContainer(engine, name, image, command, **options)
        return engine.ran[name]


class UpEngine:
    """One node's engine: images, networks, compose services, and what it was asked."""

    def __init__(self, node: str) -> None:
        self.node = node
        self.image_names: set[str] = set()
        self.image_labels: dict[str, dict[str, str]] = {}
        self.networks: dict[str, dict[str, Any]] = {}
        self.services: dict[tuple[str, str], str] = {}  # (project, service) -> status
        self.ran: dict[str, UpRunContainer] = {}  # name -> a container made by `docker run`
        self.run_calls: list[tuple[str, str, list[str]]] = []  # (name, image, command)
        self.scope: list[UpEngine] = [self]  # engines a created network appears on
        self.load_loses_images = False
        self.loaded: list[bytes] = []
        self.imported: list[str] = []
        self.created: list[tuple[str, dict[str, Any]]] = []
        self.images = UpImages(self)
        self.api = UpApi(self)
        self.containers = UpContainers(self)
        # What dockerd read of net.ipv4.ip_forward when it last started.
        self.forwarding_at_start = True

    def info(self) -> dict[str, Any]:
        return {"ServerVersion": "20.10.24", "IPv4Forwarding": self.forwarding_at_start}


def engines_sharing_a_kv(nodes: list[str]) -> dict[str, UpEngine]:
    engines = {node: UpEngine(node) for node in nodes}
    for engine in engines.values():
        engine.scope = list(engines.values())
    return engines


# --- the provider and its nodes -------------------------------------------------------------


class UpNode:
    """One node of a `UpProvider`: the `Node` protocol over plain data and real files.

    Files are real, in the node's folder of the lab's (temporary) state directory, as
    on a local node. Services and the network are the provider's model: a service runs
    once started until stopped, and on a node in `provider.answering` a running
    service answers on the ports it listens on (the engine its /_ping and API port, a
    KV store its client port; nothing else answers). Starting and stopping services
    is recorded in `provider.calls`, network probes in `provider.probes`.
    """

    def __init__(self, provider: UpProvider, name: str, layout: LabLayout, address: str) -> None:
        self.provider = provider
        self.layout = layout
        self.name = name
        self.address = ipaddress.IPv4Address(address)
        self.paths = NodePaths.under(PurePosixPath(layout.node_dir(name)))
        self.cgroup_parent: str | None = None

    def __repr__(self) -> str:
        return f"UpNode({self.name!r})"

    # --- commands and files ------------------------------------------------------------
    def run(
        self,
        argv: Sequence[str],
        *,
        check: bool = True,
        timeout: float | None = 60,
        input: str | None = None,
    ) -> CommandResult:
        if list(argv) == ENABLE_FORWARDING:
            self.provider.calls.append(("forwarding on", self.name))
            self.provider.forwarding.add(self.name)
            return CommandResult(tuple(argv), 0, "", "", self.name)
        if argv[:3] == ["sh", "-c", 'command -v "$1"']:  # is a program installed?
            missing = argv[4] in self.provider.programs_missing.get(self.name, set())
            return CommandResult(tuple(argv), 1 if missing else 0, "", "", self.name)
        if len(argv) == 2 and argv[1] == "--version":  # a brought program runs there
            brought = self._local(PurePosixPath(argv[0]))
            runs = brought.exists() and self.name not in self.provider.programs_broken
            return CommandResult(tuple(argv), 0 if runs else 127, "", "not found", self.name)
        if argv[:2] == ["docker", "--tlsverify"] and argv[5] == "-H":  # a classic master
            code, out, err = self.provider.master_cli(self.name, argv[6], list(argv[7:]))
            return CommandResult(tuple(argv), code, out, err, self.name)
        if argv[:3] == ["sh", "-c", FORGET_STALE]:  # a killed engine's pid files, for real
            for pid_file in argv[5:]:
                self._local(PurePosixPath(pid_file))  # inside the lab's folder
            self.provider.calls.append(("forget dead engine", self.name))
            done = subprocess.run(list(argv), capture_output=True, text=True, timeout=30)
            return CommandResult(tuple(argv), done.returncode, done.stdout, done.stderr, self.name)
        if argv[:3] == ["sh", "-c", '[ -x "$1" ] && wc -c < "$1"']:  # a brought program
            target = self._local(PurePosixPath(argv[4]))
            size = f"{target.stat().st_size}\n" if target.exists() else ""
            return CommandResult(tuple(argv), 0 if size else 1, size, "", self.name)
        raise FakeLabError(f"no step runs this command on a node yet: {list(argv)} on {self.name}")

    def _local(self, path: PurePosixPath) -> Path:
        target = Path(path)
        # A step that writes outside the lab's folder would scribble on the test machine.
        if not target.is_relative_to(self.layout.state_dir):
            raise FakeLabError(f"{path} on {self.name} is outside the lab's folder")
        return target

    def put_file(self, path: PurePosixPath, data: bytes, mode: int = 0o644) -> None:
        target = self._local(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        target.chmod(mode)

    def read_file(self, path: PurePosixPath) -> bytes | None:
        try:
            return self._local(path).read_bytes()
        except FileNotFoundError:
            return None

    # --- services ------------------------------------------------------------------------
    def start_service(self, service: str, argv: Sequence[str]) -> None:
        provider = self.provider
        provider.calls.append(("start_service", self.name, service, tuple(argv)))
        provider.started_at.append((self.name, time.monotonic()))
        if service == "dockerd" and self._pid_file_found():
            provider.logs[(self.name, service)] = "failed to start daemon: pid file found"
            return  # dockerd exits at once
        provider.running[(self.name, service)] = Path(argv[0]).name
        provider.logs.setdefault((self.name, service), "")
        if service == "dockerd":
            provider.gossip_join(self.name)
            if self.name in provider.engines:
                provider.engines[self.name].forwarding_at_start = self.name in provider.forwarding
        if provider.spawned_services_answer:
            provider.answering.add(self.name)

    def _pid_file_found(self) -> bool:
        """dockerd refuses to start while its pid file names a pid /proc shows."""
        pid_file = self._local(self.paths.exec_root / "dockerd.pid")
        if not pid_file.exists():
            return False
        pid = pid_file.read_text().strip()
        return pid.isdigit() and Path(f"/proc/{pid}").exists()

    def stop_service(self, service: str, binary: str, timeout: float = 10) -> None:
        provider = self.provider
        provider.calls.append(("stop_service", self.name, service))
        if provider.running.get((self.name, service)) == binary:
            del provider.running[(self.name, service)]
            provider.answering.discard(self.name)

    def service_alive(self, service: str, binary: str | None = None) -> bool:
        program = self.provider.running.get((self.name, service))
        return program is not None and binary in (None, program)

    def service_log(self, service: str) -> str | None:
        return self.provider.logs.get((self.name, service))

    def service_log_location(self, service: str) -> str:
        return str(self.layout.log_file(self.name, service))

    # --- the engine ------------------------------------------------------------------------
    @contextlib.contextmanager
    def engine(self, timeout: int = 30) -> Iterator[UpEngine]:
        if self.name not in self.provider.engines:
            raise FakeLabError(f"no UpEngine on {self.name}: put one in provider.engines")
        yield self.provider.engines[self.name]

    def engine_ping(self, timeout: float = 1.0) -> bool:
        provider = self.provider
        return self.name in provider.answering and (self.name, "dockerd") in provider.running

    def docker_env(self) -> dict[str, str]:
        return {"DOCKER_HOST": f"unix://{self.paths.docker_socket}"}

    # --- the lab network, seen from the node -------------------------------------------------
    def tcp_connect(self, host: str, port: int, timeout: float = 2.0) -> tuple[bool, str]:
        self.provider.probes.append((self.name, host, port, None))
        if self.provider.listens(host, port):
            return True, ""
        return False, "ConnectionRefusedError: [Errno 111] Connection refused"

    def tcp_answers(self, host: str, port: int, timeout: float = 2.0) -> tuple[bool, str]:
        ok, why = self.tcp_connect(host, port, timeout)
        return ok, "answers" if ok else why

    def http_get(self, host: str, port: int, path: str, timeout: float = 2.0) -> tuple[int, str]:
        self.provider.probes.append((self.name, host, port, path))
        if not self.provider.listens(host, port):
            raise ConnectionRefusedError(111, "Connection refused")
        if (host, port, path) not in self.provider.pages:
            raise FakeLabError(f"GET {path} on {host}:{port}: put it in provider.pages")
        return self.provider.pages[(host, port, path)]

    def tcp_probe_command(self, host: str, port: int) -> str:
        return f"nc -zv {host} {port}  # from {self.name}"


class UpProvider:
    """The provider seam, as plain data: the lab exists or not, services run or not.

    `running` maps (node, service) to the program it runs (what /proc/PID/comm says);
    on a node in `answering` each running service answers on its own ports
    (`service_ports`: engine ping and API, the KV store's client port and the `pages`
    served there). A started service answers at once unless
    `spawned_services_answer` is False. Nodes come from `node(name)` once
    `fake_context` has placed the provider in a lab (spec and layout).
    """

    name = "fake"
    host_address = None

    def __init__(self, *, lab_exists: bool = False) -> None:
        self.lab_exists = lab_exists
        self.destroy_error: BaseException | None = None
        self.calls: list[tuple[Any, ...]] = []
        self.running: dict[tuple[str, str], str] = {}
        self.logs: dict[tuple[str, str], str] = {}  # (node, service) -> its latest run's log
        self.answering: set[str] = set()
        self.forwarding: set[str] = set()  # nodes where net.ipv4.ip_forward is 1
        self.programs_missing: dict[str, set[str]] = {}  # node -> programs not installed
        self.programs_broken: set[str] = set()  # nodes this machine's programs cannot run on
        self.spawned_services_answer = True
        self.engines: dict[str, UpEngine] = {}
        self.pages: dict[tuple[str, int, str], tuple[int, str]] = {}  # GET -> (status, body)
        self.agents_unlisted: set[str] = set()  # classic swarm agents that never registered
        self.probes: list[tuple[str, str, int, str | None]] = []  # (from, host, port, path)
        self.started_at: list[tuple[str, float]] = []  # (node, monotonic) per start_service
        self.spec: ClusterSpec | None = None
        self.layout: LabLayout | None = None
        self._nodes: dict[str, UpNode] = {}
        # Gossip: a started dockerd joins the largest cluster of the engines already
        # running (never an island), except the nodes listed here, which start an
        # island of their own: once (a restart joins the rest) or for good.
        self.island_once: set[str] = set()
        self.island_forever: set[str] = set()
        self._gossip: dict[str, str] = {}  # node -> the gossip cluster its engine is in

    def gossip_join(self, node: str) -> None:
        """A dockerd started on `node`: place it in a cluster and rewrite every running
        engine's log with the serf events of its cluster's members."""
        running = [n for (n, service) in self.running if service == "dockerd"]
        if node in self.island_once or node in self.island_forever:
            self.island_once.discard(node)
            self._gossip[node] = "island"
        else:
            joinable = [self._gossip.get(n, "main") for n in running if n != node]
            sizes = Counter(c for c in joinable if c != "island")
            self._gossip[node] = max(sizes, key=lambda c: (sizes[c], c == "main"), default="main")
        for member in running:
            cluster = self._gossip.get(member, "main")
            peers = [n for n in running if self._gossip.get(n, "main") == cluster]
            self.logs[(member, "dockerd")] = "".join(
                f'level=info msg="serf: EventMemberJoin: {peer} x"\n' for peer in peers
            )

    def place(self, spec: ClusterSpec, layout: LabLayout) -> None:
        """Serve the lab of `spec`, its node folders under `layout` (what a real
        provider is constructed with)."""
        self.spec, self.layout = spec, layout
        self._nodes.clear()

    # --- lifecycle ---------------------------------------------------------------------
    def preflight(self) -> list[tuple[str, str]]:
        self.calls.append(("preflight",))
        return []

    def exists(self) -> bool:
        self.calls.append(("exists",))
        return self.lab_exists

    def provision(self, on_item: Callable[[str, str], None] | None = None) -> None:
        self.calls.append(("provision", on_item))
        self.lab_exists = True

    def destroy(self) -> list[str]:
        self.calls.append(("destroy",))
        if self.destroy_error is not None:
            raise self.destroy_error
        self.lab_exists = False
        return ["removed everything"]

    # --- nodes -------------------------------------------------------------------------------
    def node(self, name: str) -> UpNode:
        if self.spec is None or self.layout is None:
            raise FakeLabError("the provider serves no lab: build the context with fake_context")
        if name not in self._nodes:
            address = self.spec.address_of(name)  # raises for a name the spec does not have
            self._nodes[name] = UpNode(self, name, self.layout, str(address))
        return self._nodes[name]

    def nodes(self) -> Iterator[UpNode]:
        assert self.spec is not None
        return (self.node(n.name) for n in self.spec.nodes)

    def listens(self, host: str, port: int) -> bool:
        """Does something answer on host:port: a service running on the node at `host`
        that listens on `port`, on a node whose services answer?"""
        assert self.spec is not None
        spec = self.spec
        node = next((n.name for n in spec.nodes if str(spec.address_of(n.name)) == host), None)
        return node in self.answering and any(
            port in self.service_ports(service) for where, service in self.running if where == node
        )

    def service_ports(self, service: str) -> set[int]:
        """The ports a service listens on: dockerd its API, a KV store its client port."""
        assert self.spec is not None
        kv = self.spec.kv
        if service == "dockerd":
            return {self.spec.engine.api_port}
        if kv is not None and service == kv.backend:
            return {kv.client_port}
        if service in DEFAULT_KV_PORTS:  # a store beside the lab's (classic swarm's consul)
            return {DEFAULT_KV_PORTS[service]}
        raise FakeLabError(f"which ports {service} listens on: add it to service_ports")

    def master_cli(self, node: str, url: str, args: list[str]) -> tuple[int, str, str]:
        """`docker -H tcp://MASTER:3376 info` run on node: a classic swarm manager answers
        where its container runs, and lists each agent that registered (its --advertise)
        as Healthy; the nodes in `agents_unlisted` never registered."""
        assert self.spec is not None
        engine = self.engines.get(node)
        manager = engine.ran.get(MASTER) if engine else None
        if args != ["info", "--format", "{{json .}}"]:
            raise FakeLabError(f"docker {args} through the master")
        if manager is None or manager.status != "running" or url != _manage_url(manager):
            return (
                1,
                "",
                f"Cannot connect to the Docker daemon at {url}. Is the docker daemon running?",
            )
        status = []
        for name, agent_engine in sorted(self.engines.items()):
            agent = agent_engine.ran.get(AGENT)
            if agent is None or agent.status != "running" or name in self.agents_unlisted:
                continue
            status += [[f" {name}", agent.args[agent.args.index("--advertise") + 1]]]
            status += [["  └ Status", "Healthy"], ["  └ Error", "(none)"]]
        return 0, json.dumps({"SystemStatus": [["Nodes", str(len(status) // 3)], *status]}), ""

    def actions(self, *kinds: str) -> list[tuple[Any, ...]]:
        """The recorded calls of these kinds, in order (every kind when none is named)."""
        return [call for call in self.calls if not kinds or call[0] in kinds]


def _manage_url(manager: UpRunContainer) -> str:
    """Where a classic swarm manager listens: its --advertise address."""
    return f"tcp://{manager.args[manager.args.index('--advertise') + 1]}"


# --- `ip`, for the local provider --------------------------------------------------------------
class FakeNetlink:
    """The local provider's plumbing (namespaces, links, addresses) over a model.

    It refuses what netlink refuses: a link that exists already, a device or namespace
    that does not. Deleting one end of a veth pair deletes both. `commands` records
    every change in order.
    """

    def __init__(self) -> None:
        self.namespaces: set[str] = set()
        self.links: set[tuple[str | None, str]] = set()  # (namespace or None for host, name)
        self.peers: dict[tuple[str | None, str], tuple[str | None, str]] = {}
        self.commands: list[tuple[str | None, ...]] = []

    def create_namespace(self, name: str) -> None:
        if name not in self.namespaces:  # like plumbing: an existing one is fine
            self.namespaces.add(name)
            self.commands.append(("netns add", name))

    @contextlib.contextmanager
    def open_links(self, namespace: str | None) -> Iterator[FakeLinks]:
        if namespace is not None and namespace not in self.namespaces:
            raise OverlaylabError(f"no network namespace {namespace}")
        yield FakeLinks(self, namespace)

    def mutations(self) -> list[tuple[str | None, ...]]:
        """What changed the model: ("netns add", ns) / ("link add"|"link del", ns, name)."""
        return [c for c in self.commands if c[0] in ("netns add", "link add", "link del")]

    def delete_link(self, end: tuple[str | None, str]) -> None:
        """Remove a link, and its peer if it is one end of a veth pair."""
        self.links.discard(end)
        peer = self.peers.pop(end, None)
        if peer is not None:
            self.links.discard(peer)
            self.peers.pop(peer, None)


class FakeLinks:
    """`plumbing.Links` for one namespace of a `FakeNetlink`."""

    def __init__(self, net: FakeNetlink, namespace: str | None) -> None:
        self.net = net
        self.namespace = namespace

    def exists(self, name: str) -> bool:
        return name == "lo" or (self.namespace, name) in self.net.links

    def _add(self, *ends: tuple[str | None, str]) -> None:
        if any(e in self.net.links for e in ends):
            raise OverlaylabError(f"link {ends[0][1]} exists in {self.namespace}")
        self.net.links.update(ends)
        self.net.commands.append(("link add", self.namespace, ends[0][1]))

    def add_bridge(self, name: str) -> None:
        if not self.exists(name):
            self._add((self.namespace, name))

    def add_veth(self, name: str, peer: str, peer_namespace: str | None, mtu: int) -> None:
        other = self.namespace if peer_namespace is None else peer_namespace
        if other is not None and other not in self.net.namespaces:
            raise OverlaylabError(f"no network namespace {other}")
        here, there = (self.namespace, name), (other, peer)
        self._add(here, there)
        self.net.peers[here], self.net.peers[there] = there, here

    def delete(self, name: str) -> None:
        if (self.namespace, name) in self.net.links:
            self.net.delete_link((self.namespace, name))
            self.net.commands.append(("link del", self.namespace, name))

    def set(self, name: str, **settings: object) -> None:
        if not self.exists(name):
            raise OverlaylabError(f"link {name} is missing in {self.namespace}")
        master = settings.get("master")
        if master is not None and not self.exists(str(master)):
            raise OverlaylabError(f"bridge {master} is missing in {self.namespace}")
        self.net.commands.append(("link set", self.namespace, name, repr(sorted(settings.items()))))

    def replace_address(self, name: str, address: str, prefixlen: int) -> None:
        if not self.exists(name):
            raise OverlaylabError(f"link {name} is missing in {self.namespace}")
        self.net.commands.append(("addr replace", self.namespace, name, f"{address}/{prefixlen}"))
