"""Small explicit fakes for the seams under `up`: the provider and its node handles,
docker engines, `ip`.

Each fake keeps the state the real thing would have (which services run, which
images an engine holds, which links exist) and records what it was asked to do,
so a test can set up "present", "half there" or "missing" and then assert the
step's decision on the recorded calls. They refuse what the real thing refuses
(adding a namespace twice, loading a corrupt tarball), so a wrong decision fails.
"""

from __future__ import annotations

import contextlib
import io
import ipaddress
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from types import SimpleNamespace
from typing import Any

import docker.errors
from lab_specs import LAB_YML, make_ctx
from rich.console import Console

from overlaylab.context import LabContext
from overlaylab.errors import OverlaylabError
from overlaylab.layout import LabLayout
from overlaylab.progress import Progress
from overlaylab.providers.base import NodePaths
from overlaylab.providers.command import CommandResult
from overlaylab.spec import load_spec
from overlaylab.spec.models import ClusterSpec
from overlaylab.up.steps.engines import ENABLE_FORWARDING


def captured_progress() -> tuple[Progress, io.StringIO]:
    """A Progress whose lines land in a buffer (plain text, wide enough not to wrap)."""
    buffer = io.StringIO()
    console = Console(file=buffer, width=300, highlight=False, color_system=None)
    return Progress(console=console), buffer


def fake_context(
    tmp_path: Path,
    provider: FakeProvider,
    spec: ClusterSpec | None = None,
    progress: Progress | None = None,
) -> LabContext:
    """The default lab's context (or `spec`'s) with `provider` in place of the real one."""
    ctx = make_ctx(spec or load_spec(LAB_YML), tmp_path / "state", progress=progress)
    provider.place(ctx.spec, ctx.layout)
    ctx.provider = provider
    return ctx


# --- docker engines -----------------------------------------------------------------------
class FakeImages:
    def __init__(self, engine: FakeEngine) -> None:
        self.engine = engine

    def get(self, name: str) -> SimpleNamespace:
        if name not in self.engine.image_names:
            raise docker.errors.ImageNotFound(f"No such image: {name}")
        return SimpleNamespace(id=name, labels=dict(self.engine.image_labels.get(name, {})))

    def load(self, data: bytes) -> list[str]:
        """A tarball made by `image_tarball` holds its image; anything else is corrupt."""
        self.engine.loaded.append(data)
        if not data.startswith(b"image:"):
            raise docker.errors.APIError(
                "500 Server Error", explanation="archive/tar: invalid tar header"
            )
        name = data.removeprefix(b"image:").decode()
        if self.engine.load_loses_images:
            return []
        self.engine.image_names.add(name)
        return [name]


def image_tarball(name: str) -> bytes:
    """The bytes a fake engine accepts as `docker save` output of `name`."""
    return b"image:" + name.encode()


class FakeApi:
    def __init__(self, engine: FakeEngine) -> None:
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


class FakeContainer:
    """A compose service's container, on the demo stack's network `dn`."""

    def __init__(self, engine: FakeEngine, key: tuple[str, str], status: str) -> None:
        self.engine, self.key, self.status = engine, key, status

    @property
    def attrs(self) -> dict[str, Any]:
        aliases = {"Aliases": [self.key[1]]}
        return {"State": {"Status": self.status}, "NetworkSettings": {"Networks": {"dn": aliases}}}

    def remove(self, force: bool = False) -> None:
        del self.engine.services[self.key]


class FakeContainers:
    def __init__(self, engine: FakeEngine) -> None:
        self.engine = engine

    def list(self, filters: dict[str, list[str]] | None = None) -> list[FakeContainer]:
        if filters is None:  # every running container: only compose services are modelled
            return []
        labels = dict(label.split("=", 1) for label in filters["label"])
        key = (labels["com.docker.compose.project"], labels["com.docker.compose.service"])
        status = self.engine.services.get(key)
        return [FakeContainer(self.engine, key, status)] if status else []


class FakeEngine:
    """One node's engine: images, networks, compose services, and what it was asked."""

    def __init__(self, node: str) -> None:
        self.node = node
        self.image_names: set[str] = set()
        self.image_labels: dict[str, dict[str, str]] = {}
        self.networks: dict[str, dict[str, Any]] = {}
        self.services: dict[tuple[str, str], str] = {}  # (project, service) -> status
        self.scope: list[FakeEngine] = [self]  # engines a created network appears on
        self.load_loses_images = False
        self.loaded: list[bytes] = []
        self.imported: list[str] = []
        self.created: list[tuple[str, dict[str, Any]]] = []
        self.images = FakeImages(self)
        self.api = FakeApi(self)
        self.containers = FakeContainers(self)
        # What dockerd read of net.ipv4.ip_forward when it last started.
        self.forwarding_at_start = True

    def info(self) -> dict[str, Any]:
        return {"ServerVersion": "20.10.24", "IPv4Forwarding": self.forwarding_at_start}


def engines_sharing_a_kv(nodes: list[str]) -> dict[str, FakeEngine]:
    engines = {node: FakeEngine(node) for node in nodes}
    for engine in engines.values():
        engine.scope = list(engines.values())
    return engines


# --- the provider and its nodes ----------------------------------------------------------------
class NotModelled(AssertionError):
    """A step asked a fake node for something the fakes do not model: extend the fake."""


class FakeNode:
    """One node of a `FakeProvider`: the `Node` protocol over plain data and real files.

    Files are real, in the node's folder of the lab's (temporary) state directory, as
    on a local node. Services and the network are the provider's model: a service runs
    once started until stopped, and a node in `provider.answering` answers on its
    address (its engine's /_ping, its services' ports). Starting and stopping services
    is recorded in `provider.calls`, network probes in `provider.probes`.
    """

    def __init__(self, provider: FakeProvider, name: str, layout: LabLayout, address: str) -> None:
        self.provider = provider
        self.layout = layout
        self.name = name
        self.address = ipaddress.IPv4Address(address)
        self.paths = NodePaths.under(PurePosixPath(layout.node_dir(name)))
        self.cgroup_parent: str | None = None

    def __repr__(self) -> str:
        return f"FakeNode({self.name!r})"

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
        if argv[:3] == ["sh", "-c", '[ -x "$1" ] && wc -c < "$1"']:  # a brought program
            target = self._local(PurePosixPath(argv[4]))
            size = f"{target.stat().st_size}\n" if target.exists() else ""
            return CommandResult(tuple(argv), 0 if size else 1, size, "", self.name)
        raise NotModelled(f"no step runs this command on a node yet: {list(argv)} on {self.name}")

    def _local(self, path: PurePosixPath) -> Path:
        target = Path(path)
        # A step that writes outside the lab's folder would scribble on the test machine.
        if not target.is_relative_to(self.layout.state_dir):
            raise NotModelled(f"{path} on {self.name} is outside the lab's folder")
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
        provider.running[(self.name, service)] = Path(argv[0]).name
        provider.logs.setdefault((self.name, service), "")
        if service == "dockerd":
            provider.gossip_join(self.name)
            if self.name in provider.engines:
                provider.engines[self.name].forwarding_at_start = self.name in provider.forwarding
        if provider.spawned_services_answer:
            provider.answering.add(self.name)

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
    @contextmanager
    def engine(self, timeout: int = 30) -> Iterator[FakeEngine]:
        if self.name not in self.provider.engines:
            raise NotModelled(f"no FakeEngine on {self.name}: put one in provider.engines")
        yield self.provider.engines[self.name]

    def engine_ping(self, timeout: float = 1.0) -> bool:
        return self.name in self.provider.answering

    def docker_env(self) -> dict[str, str]:
        return {"DOCKER_HOST": f"unix://{self.paths.docker_socket}"}

    # --- the lab network, seen from the node -------------------------------------------------
    def tcp_connect(self, host: str, port: int, timeout: float = 2.0) -> tuple[bool, str]:
        self.provider.probes.append((self.name, host, port, None))
        if self.provider.listens(host):
            return True, ""
        return False, "ConnectionRefusedError: [Errno 111] Connection refused"

    def tcp_answers(self, host: str, port: int, timeout: float = 2.0) -> tuple[bool, str]:
        ok, why = self.tcp_connect(host, port, timeout)
        return ok, "answers" if ok else why

    def http_get(self, host: str, port: int, path: str, timeout: float = 2.0) -> tuple[int, str]:
        self.provider.probes.append((self.name, host, port, path))
        if not self.provider.listens(host):
            raise ConnectionRefusedError(111, "Connection refused")
        if (host, port, path) not in self.provider.pages:
            raise NotModelled(f"GET {path} on {host}:{port}: put it in provider.pages")
        return self.provider.pages[(host, port, path)]

    def tcp_probe_command(self, host: str, port: int) -> str:
        return f"nc -zv {host} {port}  # from {self.name}"


class FakeProvider:
    """The provider seam, as plain data: the lab exists or not, services run or not.

    `running` maps (node, service) to the program it runs (what /proc/PID/comm says);
    a node in `answering` answers on its address (engine ping, service ports, the
    `pages` it serves). A started service answers at once unless
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
        self.engines: dict[str, FakeEngine] = {}
        self.pages: dict[tuple[str, int, str], tuple[int, str]] = {}  # GET -> (status, body)
        self.probes: list[tuple[str, str, int, str | None]] = []  # (from, host, port, path)
        self.started_at: list[tuple[str, float]] = []  # (node, monotonic) per start_service
        self.spec: ClusterSpec | None = None
        self.layout: LabLayout | None = None
        self._nodes: dict[str, FakeNode] = {}
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
    def node(self, name: str) -> FakeNode:
        if self.spec is None or self.layout is None:
            raise NotModelled("the provider serves no lab yet: build the context with fake_context")
        if name not in self._nodes:
            address = self.spec.address_of(name)  # raises for a name the spec does not have
            self._nodes[name] = FakeNode(self, name, self.layout, str(address))
        return self._nodes[name]

    def nodes(self) -> Iterator[FakeNode]:
        assert self.spec is not None
        return (self.node(n.name) for n in self.spec.nodes)

    def listens(self, host: str) -> bool:
        """Does something answer on `host` (a node's address)?"""
        assert self.spec is not None
        return any(
            str(self.spec.address_of(n.name)) == host and n.name in self.answering
            for n in self.spec.nodes
        )

    def actions(self, *kinds: str) -> list[tuple[Any, ...]]:
        """The recorded calls of these kinds, in order (every kind when none is named)."""
        return [call for call in self.calls if not kinds or call[0] in kinds]


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
