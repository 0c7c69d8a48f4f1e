"""A fake lab for unit tests: the real checks run against it and produce the results.

The model is small: engine nodes with their engines, the KV node, probe and stack
containers on the spec's overlays, serf membership, registrations in the store. A
test brings it up healthy, injects faults the way an operator would (kill an engine,
cut a switch port, drop a port with iptables, advertise the NAT address...) and runs
`run_verify`. Every answer (TCP connects, etcd listings, engine API calls, the
commands run in containers) is derived from that one model, so the results that
diagnosis reads are the ones the checks' own code builds.

Checks reach the lab through `ctx.node(name)`, the provider's `Node` handles; this
fake's nodes answer exactly the I/O the checks perform. Anything else (a command it
does not know, a service it does not model, a module of `overlaylab.checks` holding a
local provider helper or a socket library that would reach around the handle) raises
`FakeLabError`, so a check that changes what it does fails its test instead of being
answered by a guess or by the machine the tests run on.

Where the real lab was observed (tests/integration/test_faults.py), the fake follows
the observation: a gossip port dropped a moment ago does not yet change any serf
view; a cut-off node and a dead engine are already marked failed by their peers.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import ipaddress
import json
import pkgutil
import re
import shlex
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from types import ModuleType, SimpleNamespace
from typing import Any, NoReturn

import docker.errors
import yaml
from docker.models.containers import ExecResult
from lab_specs import REPO, lab_data, lab_variant

import overlaylab.checks
from overlaylab.checks import probe_batch
from overlaylab.checks.base import Check
from overlaylab.checks.connectivity import DF_SCRIPT
from overlaylab.checks.probes import (
    PROBE_COMMAND,
    PROBE_PORT,
    PROBE_UDP_PORT,
    SLOTS,
    probe_name,
)
from overlaylab.checks.verify import ALL_CHECKS, VerifyReport, run_verify
from overlaylab.context import LabContext
from overlaylab.layout import LABEL_CLUSTER, LABEL_ROLE, LabLayout
from overlaylab.probe_tools import UDP_SEND
from overlaylab.providers.base import NodePaths
from overlaylab.runners import CommandResult
from overlaylab.spec.models import DRIVER_MTU_OPTION, PROBE_IMAGE, ClusterSpec
from overlaylab.steps import images
from overlaylab.steps.images import PROBE_PAGE

FAULTS_YML = REPO / "tests" / "testdata" / "labs" / "faults.yml"
FAULTS_NAT_YML = REPO / "tests" / "testdata" / "labs" / "faults-nat.yml"
NAT_ADDRESS = "10.0.2.15"  # the NAT eth0 every VirtualBox-style node has (provider nat: true)
GWBRIDGE = ipaddress.IPv4Network("172.18.0.0/16")
ENGINE_VERSION = "20.10.24"
SERF_PORT = 7946
VXLAN = ("udp", 4789)
VXLAN_OVERHEAD = 50  # outer IPv4 + UDP + VXLAN + inner Ethernet headers
ICMP_OVERHEAD = 28  # IPv4 + ICMP headers on a ping payload
DEFAULT_PING_PAYLOAD = 56
DEAD_SOCKET = (
    "Error while fetching server API version: ('Connection aborted.', "
    "FileNotFoundError(2, 'No such file or directory'))"
)
TCP_SCRIPT = re.compile(r'^printf "GET / HTTP/1\.0.*" \| nc -w \d+ "\$1" "\$2"$')
ADVERTISE_SCRIPT = "ip -o -4 addr; echo ==; hostname; echo ==; cat /etc/hosts"
# Modules whose functions reach the machine directly: a check holding one of them would
# bypass the node handles (the local provider's plumbing, sockets, host commands).
DIRECT_IO = (
    "overlaylab.providers.local",
    "overlaylab.runners",
    "socket",
    "ssl",
    "http.client",
    "urllib",
    "requests",
    "subprocess",
)


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
                    net: {"IPAddress": address, "Aliases": list(self.aliases.get(net, []))}
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
        network = options["network"]
        if not self.lab.lists_network(self.node, network):
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


class FakeEngine:
    """What a node's `engine()` yields: a docker.DockerClient look-alike."""

    def __init__(self, lab: FakeLab, node: str) -> None:
        self.lab, self.node = lab, node
        self.containers = FakeContainers(lab, node)
        self.images = FakeImages(lab, node)
        self.api = FakeAPI(lab, node)

    def version(self) -> dict[str, str]:
        if self.node in self.lab.api_errors:
            raise docker.errors.APIError(
                "500 Server Error for http+docker://localhost/version: Internal Server Error"
            )
        return {"Version": ENGINE_VERSION, "ApiVersion": "1.41"}

    def info(self) -> dict[str, Any]:
        return {
            "ServerVersion": ENGINE_VERSION,
            "ClusterStore": self.lab.stores[self.node] or "",
            "ClusterAdvertise": self.lab.advertised[self.node] or "",
        }


class FakeNode:
    """A node of the fake lab, as checks reach it: the whole `Node` protocol.

    The engine, its log and its liveness, and the lab network seen from the node are
    answered from the model; what checks never do (run commands on the node, place or
    read files, start or stop services) is a `FakeLabError`, as is asking a node for
    a service or an engine it does not have.
    """

    def __init__(self, lab: FakeLab, name: str) -> None:
        self.lab = lab
        self.name = name
        self.address = ipaddress.IPv4Address(lab.address(name))
        self.paths = NodePaths.under(PurePosixPath(lab.layout.node_dir(name)))
        self.cgroup_parent: str | None = lab.layout.cgroup_parent(name)

    def __repr__(self) -> str:
        return f"FakeNode({self.name!r})"

    # --- commands and files: no check uses them ------------------------------------------
    def run(
        self,
        argv: Sequence[str],
        *,
        check: bool = True,
        timeout: float | None = 60,
        input: str | None = None,
    ) -> CommandResult:
        unknown(f"the command {list(argv)} on the node {self.name}")

    def put_file(self, path: PurePosixPath, data: bytes, mode: int = 0o644) -> None:
        unknown(f"writing {path} on {self.name}")

    def read_file(self, path: PurePosixPath) -> bytes | None:
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
        # Faults (a healthy lab has none).
        self.dead: set[str] = set()
        self.cut: set[str] = set()
        self.kv_running = True
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
        self.registrations_expired = False
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

    def cut_off(self, node: str) -> None:
        """Its switch port down: nothing crosses between it and any other node."""
        self.cut.add(node)

    def stop_kv(self) -> None:
        self.kv_running = False

    def drop(self, node: str, proto: str, port: int, source: str | None = None) -> None:
        """iptables -I INPUT -p PROTO --dport PORT [-s SOURCE's address] -j DROP in node's
        namespace (for a published port, the DOCKER-USER rule on the DNAT-ed connection):
        what other nodes send to `port` on node is dropped."""
        self.dropped.append((node, proto, port, source))

    def misadvertise(self, node: str, address: str) -> None:
        """The engine runs with a cluster-advertise peers cannot reach (e.g. NAT eth0):
        serf binds it, VXLAN peers send to it, the store registers it."""
        self.advertised[node] = address

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

    def expire_registrations(self) -> None:
        """The discovery TTL (60 s) passes: keys no engine refreshes are gone."""
        self.registrations_expired = True

    def break_engine_api(self, node: str) -> None:
        """The engine answers its ping but errors (500) on /version."""
        self.api_errors.add(node)

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
        advertised = self.advertised[node]
        return advertised is not None and advertised.rsplit(":", 1)[0] == self.address(node)

    def _dropped(self, dst: str, proto: str, port: int, src: str) -> bool:
        return any(
            (node, p, q) == (dst, proto, port) and source in (None, src)
            for node, p, q, source in self.dropped
        )

    def _listens(self, node: str, port: int) -> bool:
        if self.spec.kv is not None and node == self.spec.kv.node:
            return self.kv_running and port == self.spec.kv.client_port
        if node in self.dead or node not in self.engine_nodes:
            return False
        if port == self.spec.engine.api_port and self.spec.engine.tls:
            return True
        if port == SERF_PORT and self.stores[node] is not None:
            return self.advertises_lab_address(node)  # serf binds the advertised address
        return any(
            int(binding["HostPort"]) == port
            for c in self.running_containers()
            if c.node == node and c.networks
            for key, bindings in c.ports.items()
            if key.endswith("/tcp")
            for binding in bindings
        )

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
        )

    def lists_network(self, node: str, network: str) -> bool:
        # Global-scope networks live in the store: an engine that cannot read it lists none.
        return any(n.name == network for n in self.spec.networks) and self.in_store(node)

    def network_info(self, name: str) -> dict[str, Any]:
        net = next(n for n in self.spec.networks if n.name == name)
        return {
            "Name": name,
            "Id": hashlib.sha256(f"network/{name}".encode()).hexdigest(),
            "Driver": net.driver,
            "Scope": "global",
            "IPAM": {"Config": [{"Subnet": str(self._subnet(name))}]},
        }

    def registrations(self) -> set[str]:
        """Keys under docker/nodes: refreshed every heartbeat by engines in the store,
        left to expire (discovery TTL) by the others."""
        return {
            str(self.advertised[n])
            for n in self.engine_nodes
            if self.advertised[n] and (self.in_store(n) or not self.registrations_expired)
        }

    def _joined(self, node: str) -> set[str]:
        """Members node's serf agent ever met: its island, minus agents on addresses
        peers cannot reach (an engine advertising one meets no one)."""
        if not self.advertises_lab_address(node):
            return {node}
        island = next((i for i in self.islands if node in i), {node})
        return {m for m in island if m == node or self.advertises_lab_address(m)}

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
        lines += [line("EventMemberJoin", m) for m in joined]
        lines += [line("EventMemberFailed", m) for m in joined if m not in view]
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
        if target.node == src.node:
            return (src.node, proto) not in self.same_host_blocked
        fits = payload + ICMP_OVERHEAD + VXLAN_OVERHEAD <= self.spec.lab.mtu
        return self.tunnel(src.node, target.node) and fits

    def names(self, c: FakeContainer, network: str) -> set[str]:
        own = [c.name, *c.aliases.get(network, [])]
        return {*own, *(f"{n}.{network}" for n in own)}

    def resolve(self, src: FakeContainer, name: str) -> list[str]:
        """The embedded DNS (127.0.0.11) of src's engine. Records of other hosts'
        containers come from the store, so they outlive gossip and tunnels."""
        answers: list[str] = []
        for network in src.networks:
            for c in self.running_containers():
                if network in c.networks and name in self.names(c, network):
                    stale = c.node != src.node and c.name in self.stale_records
                    answers.append(self.stale_records[c.name] if stale else c.networks[network])
        return list(dict.fromkeys(answers))

    # --- commands in containers ----------------------------------------------------------
    def run_in(self, c: FakeContainer, argv: list[str]) -> tuple[int, str]:
        match argv:
            case ["sh", "-c", script, "probe-batch", *tests] if script == probe_batch.RUNNER:
                return 0, self._probe_batch(c, tests)
            case ["ping", "-c", "1", "-W", "1", address]:
                return self._busybox_ping(c, address)
            case ["sh", "-c", script, "df", address] if script == DF_SCRIPT:
                code, out = self._iputils_ping(c, address, self.mtu(c) - ICMP_OVERHEAD)
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

    def _nslookup(self, c: FakeContainer, name: str) -> tuple[int, str]:
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

    def _allocate(self, network: str) -> str:
        with self._lock:
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
    ) -> FakeContainer:
        with self._lock:
            gw = self._next_gwbridge.get(node, 2)
            self._next_gwbridge[node] = gw + 1
            c = FakeContainer(
                lab=self,
                node=node,
                name=name,
                hostname=hostname or "",
                command=list(command),
                networks={net: self._allocate(net) for net in networks},
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

    # --- the seam the checks must keep to ------------------------------------------------
    def _refuse_direct_io(self) -> None:
        """Checks reach a node only through its `Node` handle, which this fake answers.

        A module of `overlaylab.checks` that holds a local provider's helper, a socket
        library or a host command runner would reach the machine around the handle:
        its test would be answered by the real machine (or fail for reasons unrelated to
        the lab), so it stops here instead.
        """
        for info in pkgutil.iter_modules(overlaylab.checks.__path__):
            module = importlib.import_module(f"overlaylab.checks.{info.name}")
            for attr, value in vars(module).items():
                is_module = isinstance(value, ModuleType)
                origin = value.__name__ if is_module else getattr(value, "__module__", None)
                if isinstance(origin, str) and _direct_io(origin):
                    where = origin if is_module else f"{origin}.{attr}"
                    unknown(f"{where}, which {module.__name__} holds: reach nodes through Node")

    def http_get(self, src: str, host: str, port: int, path: str) -> tuple[int, str]:
        """A GET from src's network, as a node's `http_get` does it: only etcd's listing
        of the engines' registrations is served (and an empty service registry)."""
        ok, why = self.tcp(src, host, port)
        if not ok:
            raise (TimeoutError if "timed out" in why else ConnectionRefusedError)(why)
        kv = self.spec.kv
        if kv is None or kv.backend != "etcd" or not path.startswith("/v2/keys/"):
            unknown(f"GET {path} on {host}:{port}")
        if path == "/v2/keys/services?recursive=true":
            # No app of the fake lab registers itself for discovery.
            return 404, json.dumps({"errorCode": 100, "message": "Key not found"})
        directory = "/" + path.removeprefix("/v2/keys/").strip("/")
        if directory != f"{kv.path}/docker/nodes":
            unknown(f"the etcd key {directory}")
        keys = sorted(self.registrations())
        if not keys:
            return 404, json.dumps({"errorCode": 100, "message": "Key not found"})
        nodes = [{"key": f"{directory}/{k}", "value": k, "ttl": 57} for k in keys]
        return 200, json.dumps(
            {"action": "get", "node": {"key": directory, "dir": True, "nodes": nodes}}
        )


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
