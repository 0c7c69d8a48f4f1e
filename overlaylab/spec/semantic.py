"""Cross-field checks on a schema-valid cluster spec.

The pydantic models check each value on its own; the mistakes that cost an afternoon
are relations between values (an address outside the lab subnet, a cluster-store the
chosen engine no longer has, a stack placed on a KV-only node). Every check says where
the problem is (YAML path and line) and what would fix it.

Paths use the YAML spelling (`engine.cluster-store`, not `engine.cluster_store`).
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from overlaylab.spec.compose import UNREADABLE as COMPOSE_UNREADABLE
from overlaylab.spec.compose import ComposeFile, NotARegularFile, read_compose_file
from overlaylab.spec.models import (
    BUILT_IMAGES,
    DRIVER_MTU_OPTION,
    KV_SCHEMES,
    PROBE_IMAGE,
    PROVIDER_INTERFACES,
    ClusterSpec,
    LocalProviderSpec,
    Node,
    SSHProviderSpec,
)
from overlaylab.spec.paths import resolve_in_spec_dir

Loc = tuple[str | int, ...]
# Maps a YAML path to (line number, whether the path itself is in the file). A path that
# is not in the file holds a default; the line is then that of its nearest ancestor.
Locate = Callable[[Loc], tuple[int, bool]]

_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_WHOLE_NUMBER = re.compile(r"[0-9]+")
# libkv discovery URL: one or more HOST:PORT (comma separated), optional path prefix.
_STORE_URL = re.compile(
    r"^(?P<scheme>[a-z]+)://(?P<hosts>[A-Za-z0-9_.-]+:\d{1,5}(,[A-Za-z0-9_.-]+:\d{1,5})*)"
    r"(?P<path>(/[A-Za-z0-9._-]+)*)/?$"
)
# The engine line that removed --cluster-store (moby PR #42247, released in 23.0).
_CLUSTER_STORE_REMOVED_IN = (23, 0)


def format_path(loc: Loc) -> str:
    """`('nodes', 2, 'address')` -> `nodes[2].address`; odd keys are quoted."""
    out = ""
    for element in loc:
        if isinstance(element, int):
            out += f"[{element}]"
        elif _PLAIN_KEY.match(element):
            out += f".{element}" if out else element
        else:
            out += f"[{element!r}]"
    return out or "(top level)"


def format_problem(line: int, loc: Loc, message: str, *, default: bool = False) -> str:
    suffix = " (default)" if default else ""
    return f"line {line}, {format_path(loc)}{suffix}: {message}"


def suggest(word: str, choices: Iterable[str]) -> str:
    """`; did you mean 'x'?` when a choice is close to `word`, else ``."""
    choices = list(choices)
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    # A truncated name (`key` for `key_file`) is too short for difflib's ratio.
    close = close or [c for c in choices if len(word) >= 3 and c.startswith(word)][:1]
    return f"; did you mean {close[0]!r}?" if close else ""


@dataclass
class Report:
    """Collects problems with their line so they can be listed in file order."""

    locate: Locate
    problems: list[tuple[int, str]] = field(default_factory=list)

    def add(self, loc: Loc, message: str) -> None:
        line, present = self.locate(loc)
        self.problems.append((line, format_problem(line, loc, message, default=not present)))


Check = Callable[[ClusterSpec, Path, Report], None]


def semantic_problems(spec: ClusterSpec, spec_dir: Path, locate: Locate) -> list[tuple[int, str]]:
    """Run every check; return `(line, message)` pairs in file order.

    `spec_dir` is the folder relative stack and image paths resolve against (the spec
    file's own). The spec must already have its defaults applied (node addresses), as
    `load_spec` does.
    """
    report = Report(locate)
    for check in CHECKS:
        check(spec, spec_dir, report)
    return sorted(report.problems, key=lambda item: item[0])


# --- helpers --------------------------------------------------------------------------


def _names(spec: ClusterSpec) -> list[str]:
    return [n.name for n in spec.nodes]


def _find(spec: ClusterSpec, name: str) -> Node | None:
    return next((n for n in spec.nodes if n.name == name), None)


def _unknown_node(spec: ClusterSpec, name: str) -> str:
    return (
        f"no node is named {name!r}{suggest(name, _names(spec))} (nodes: {', '.join(_names(spec))})"
    )


def _version(text: str) -> tuple[int, int]:
    major, minor = text.split(".")
    return int(major), int(minor)


def _duplicates(values: Iterable[object]) -> Iterator[tuple[int, int]]:
    """Yield (index, index of first occurrence) for each repeated value."""
    first: dict[object, int] = {}
    for index, value in enumerate(values):
        if value in first:
            yield index, first[value]
        else:
            first[value] = index


def _host_address(spec: ClusterSpec) -> ipaddress.IPv4Address | None:
    """The host's own address on the lab switch, when the provider gives it one."""
    provider = spec.provider
    if provider.type == "local" and provider.host_link:
        return provider.host_address
    return None


# --- nodes ----------------------------------------------------------------------------


def check_node_names(spec: ClusterSpec, spec_dir: Path, report: Report) -> None:
    for index, first in _duplicates(_names(spec)):
        report.add(
            ("nodes", index, "name"),
            f"duplicate node name {spec.nodes[index].name!r} (also nodes[{first}]); "
            "node names must be unique",
        )


def check_engine_nodes(spec: ClusterSpec, spec_dir: Path, report: Report) -> None:
    if not spec.engine_nodes:
        report.add(
            ("nodes",),
            "no node runs an engine; give at least one node a role other than kv, "
            "e.g. roles: [engine]",
        )


def check_addresses(spec: ClusterSpec, spec_dir: Path, report: Report) -> None:
    subnet = spec.lab.subnet
    host = _host_address(spec)
    addresses = [n.address for n in spec.nodes]
    for index, first in _duplicates(addresses):
        if addresses[index] is None:
            continue
        report.add(
            ("nodes", index, "address"),
            f"address {addresses[index]} is already used by nodes[{first}] "
            f"({spec.nodes[first].name}); every node needs its own address",
        )
    for index, node in enumerate(spec.nodes):
        address = node.address
        loc: Loc = ("nodes", index, "address")
        if address is None:  # load_spec fills these in; nothing to check otherwise
            continue
        if address not in subnet:
            report.add(
                loc,
                f"{address} is outside lab.subnet {subnet}; use an address inside it "
                "or change lab.subnet",
            )
        elif address in _reserved(subnet):
            kind = "network" if address == subnet.network_address else "broadcast"
            report.add(
                loc,
                f"{address} is the {kind} address of lab.subnet {subnet}; "
                f"use a host address between {subnet.network_address + 1} and "
                f"{subnet.broadcast_address - 1}",
            )
        elif host is not None and address == host:
            report.add(
                loc,
                f"{address} is the host's own address on the lab switch "
                "(provider.host_address); pick another address or move host_address",
            )


def _reserved(subnet: ipaddress.IPv4Network) -> tuple[ipaddress.IPv4Address, ...]:
    # /31 and /32 have no network or broadcast address (RFC 3021).
    if subnet.prefixlen > 30:
        return ()
    return (subnet.network_address, subnet.broadcast_address)


def check_host_address(spec: ClusterSpec, spec_dir: Path, report: Report) -> None:
    host = _host_address(spec)
    subnet = spec.lab.subnet
    if host is not None and host not in subnet:
        report.add(
            ("provider", "host_address"),
            f"{host} is outside lab.subnet {subnet}; use an address inside it",
        )


# --- overlay networks -----------------------------------------------------------------


def check_networks(spec: ClusterSpec, spec_dir: Path, report: Report) -> None:
    names = [n.name for n in spec.networks]
    for index, first in _duplicates(names):
        report.add(
            ("networks", index, "name"),
            f"duplicate network name {names[index]!r} (also networks[{first}]); "
            "network names must be unique",
        )
    for index, network in enumerate(spec.networks):
        _check_network_subnet(spec, index, report)
        if network.gateway is not None:
            _check_gateway(spec, index, report)
        mtu = network.options.get(DRIVER_MTU_OPTION)
        if mtu is not None and not _WHOLE_NUMBER.fullmatch(mtu):
            # dockerd refuses it at `network create` ("failed to parse"), mid-`up`.
            report.add(
                ("networks", index, "options", DRIVER_MTU_OPTION),
                f'{mtu!r} is not a whole number of bytes; write the MTU in quotes, e.g. "1450"',
            )


def _check_network_subnet(spec: ClusterSpec, index: int, report: Report) -> None:
    subnet = spec.networks[index].subnet
    if subnet is None:
        return
    loc: Loc = ("networks", index, "subnet")
    if subnet.overlaps(spec.lab.subnet):
        report.add(
            loc,
            f"{subnet} overlaps lab.subnet {spec.lab.subnet}; containers could not tell "
            "overlay peers from lab hosts; pick a disjoint range such as 10.0.9.0/24",
        )
    for other_index, other in enumerate(spec.networks[:index]):
        if other.subnet is not None and subnet.overlaps(other.subnet):
            report.add(
                loc,
                f"{subnet} overlaps networks[{other_index}] ({other.name}, {other.subnet}); "
                "give each overlay a disjoint subnet",
            )


def _check_gateway(spec: ClusterSpec, index: int, report: Report) -> None:
    network = spec.networks[index]
    loc: Loc = ("networks", index, "gateway")
    # docker network create refuses --gateway without --subnet, and outside it.
    if network.subnet is None:
        report.add(loc, "a gateway needs a subnet; add subnet: or drop gateway:")
    elif network.gateway not in network.subnet:
        report.add(loc, f"{network.gateway} is outside the network's subnet {network.subnet}")


def check_overlay_needs_control_plane(spec: ClusterSpec, spec_dir: Path, report: Report) -> None:
    # Without a KV store or swarm mode, `docker network create -d overlay` fails with
    # "This node is not a swarm manager".
    if spec.engine.uses_cluster_store or spec.orchestration.mode == "swarm-mode":
        return
    for index, network in enumerate(spec.networks):
        if network.driver == "overlay":
            report.add(
                ("networks", index, "driver"),
                "an overlay network needs engine.cluster-store (legacy overlay) or "
                "orchestration.mode: swarm-mode; set one of them",
            )


# --- KV store and engine options ------------------------------------------------------


def check_kv(spec: ClusterSpec, spec_dir: Path, report: Report) -> None:
    kv_role = [i for i, n in enumerate(spec.nodes) if "kv" in n.roles]
    if spec.kv is None:
        for index in kv_role:
            report.add(
                ("nodes", index, "roles"),
                f"node {spec.nodes[index].name!r} has role kv but kv is null; "
                "configure kv: (backend, node) or drop the kv role",
            )
        return
    node = _find(spec, spec.kv.node)
    if node is None:
        report.add(
            ("kv", "node"),
            f"{_unknown_node(spec, spec.kv.node)}; add a node with roles: [kv] or "
            "set kv: null for no KV store",
        )
    elif "kv" not in node.roles:
        report.add(
            ("kv", "node"),
            f"node {node.name!r} lacks role kv; add kv to its roles",
        )
    for index in kv_role:
        if spec.nodes[index].name != spec.kv.node:
            report.add(
                ("nodes", index, "roles"),
                f"node {spec.nodes[index].name!r} has role kv but the store runs on "
                f"kv.node {spec.kv.node!r}; only that node may have role kv",
            )


def check_cluster_store(spec: ClusterSpec, spec_dir: Path, report: Report) -> None:
    store = spec.engine.cluster_store
    loc: Loc = ("engine", "cluster-store")
    if store is None:
        return
    if store == "auto":
        if spec.kv is None:
            report.add(
                loc,
                "auto derives the URL from kv:, but kv is null; configure kv: or set "
                "cluster-store: null (swarm mode) or a URL",
            )
    else:
        _check_store_url(store, report)
    if _version(spec.engine.version) >= _CLUSTER_STORE_REMOVED_IN:
        report.add(
            loc,
            f"Docker removed cluster-store in 23.0; dockerd {spec.engine.version} refuses "
            'to start with it; use engine.version: "20.10", or orchestration.mode: '
            "swarm-mode with cluster-store: null",
        )
    if spec.orchestration.mode == "swarm-mode":
        report.add(
            loc,
            "dockerd 20.10 says '--cluster-store and --cluster-advertise daemon "
            "configurations are incompatible with swarm mode'; set cluster-store: null "
            "and cluster-advertise: null for swarm-mode",
        )


def _check_store_url(store: str, report: Report) -> None:
    schemes = sorted(set(KV_SCHEMES.values()))
    match = _STORE_URL.match(store)
    if match is None:
        report.add(
            ("engine", "cluster-store"),
            f"{store!r} is not SCHEME://HOST:PORT[/path] with SCHEME one of "
            f"{', '.join(schemes)}; e.g. etcd://192.168.99.10:2379, or auto",
        )
    elif match["scheme"] not in schemes:
        report.add(
            ("engine", "cluster-store"),
            f"scheme {match['scheme']!r} is not a libkv discovery backend; "
            f"use one of {', '.join(schemes)}{suggest(match['scheme'], schemes)}",
        )


def check_cluster_advertise(spec: ClusterSpec, spec_dir: Path, report: Report) -> None:
    engine = spec.engine
    host = engine.advertise_host
    loc: Loc = ("engine", "cluster-advertise")
    if host is None:
        return
    if not engine.uses_cluster_store:
        report.add(
            loc,
            "cluster-advertise without cluster-store is refused by dockerd; "
            "set cluster-advertise: null or configure cluster-store",
        )
        return
    try:
        address = ipaddress.IPv4Address(host)
    except ValueError:
        _check_advertise_interface(spec, host, report)
    else:
        _check_advertise_ip(spec, address, report)


def _provider_interfaces(spec: ClusterSpec) -> tuple[str, ...]:
    if isinstance(spec.provider, SSHProviderSpec):
        return tuple(spec.provider.interfaces)
    if isinstance(spec.provider, LocalProviderSpec) and spec.provider.nat:
        return ("eth0", "eth1")
    return PROVIDER_INTERFACES[spec.provider.type]


def _check_advertise_interface(spec: ClusterSpec, iface: str, report: Report) -> None:
    # dockerd treats a non-IP host as an interface name and takes its first IPv4.
    interfaces = _provider_interfaces(spec)
    if iface not in interfaces:
        where = "provider.interfaces" if spec.provider.type == "ssh" else "they have"
        report.add(
            ("engine", "cluster-advertise"),
            f"interface {iface!r} does not exist on {spec.provider.type} nodes "
            f"({where}: {', '.join(interfaces)}){suggest(iface, interfaces) or '; use'} "
            f"e.g. {interfaces[-1]}:{spec.engine.advertise_port}",
        )


def _check_advertise_ip(spec: ClusterSpec, address: ipaddress.IPv4Address, report: Report) -> None:
    engines = spec.engine_nodes
    loc: Loc = ("engine", "cluster-advertise")
    hint = "use an interface name instead, e.g. eth1:2376"
    # The overlay driver insists the advertise IP is local: one IP fits one node only.
    if len(engines) > 1:
        report.add(
            loc,
            f"an IP address ({address}) is only right for one node, but "
            f"{len(engines)} nodes run an engine; {hint}",
        )
    elif engines and engines[0].address != address:
        report.add(
            loc,
            f"{address} is not the address of engine node {engines[0].name!r} "
            f"({engines[0].address}); dockerd needs a local address; {hint}",
        )


# --- orchestration --------------------------------------------------------------------


def check_orchestration(spec: ClusterSpec, spec_dir: Path, report: Report) -> None:
    mode = spec.orchestration.mode
    loc: Loc = ("orchestration", "mode")
    if spec.orchestration.discovery != "kv" and mode != "classic-swarm":
        report.add(
            ("orchestration", "discovery"),
            f"discovery is classic swarm's store, and mode is {mode}; set mode: "
            "classic-swarm or drop discovery",
        )
    for index, stack in enumerate(spec.stacks):
        if stack.via == "swarm-master" and mode != "classic-swarm":
            report.add(
                ("stacks", index, "via"),
                f"via: swarm-master deploys through a classic swarm master, but "
                f"orchestration.mode is {mode}; set mode: classic-swarm or via: node",
            )
    if mode == "classic-swarm":
        if spec.kv is None:
            report.add(
                loc,
                "classic-swarm discovers its agents through the KV store, but kv is null; "
                "configure kv:",
            )
        if not any("swarm-master" in n.roles for n in spec.nodes):
            report.add(
                loc,
                "classic-swarm needs a node with role swarm-master (several: one primary, "
                "the others replicas); add swarm-master to a node's roles",
            )
    elif mode == "swarm-mode" and not any("manager" in n.roles for n in spec.nodes):
        report.add(
            loc,
            "swarm-mode needs at least one node with role manager; add manager to a node's roles",
        )


# daemon.json keys the lab sets itself: overriding them from engine.daemon would point
# a node at the host's own Docker data or sockets, or break teardown.
MANAGED_DAEMON_KEYS = (
    "data-root",
    "exec-root",
    "pidfile",
    "deprecated-key-path",
    "cgroup-parent",
    "hosts",
    "tls",
    "tlsverify",
    "tlscacert",
    "tlscert",
    "tlskey",
    "cluster-store",
    "cluster-advertise",
    "cluster-store-opts",
    "labels",
)


def check_daemon_keys(spec: ClusterSpec, spec_dir: Path, report: Report) -> None:
    for key in spec.engine.daemon:
        if key in MANAGED_DAEMON_KEYS:
            report.add(
                ("engine", "daemon", key),
                f"{key!r} is set by overlaylab for every node; remove it from engine.daemon "
                "(use the engine's own spec fields: cluster-store, cluster-advertise, tls, "
                "nodes[].labels)",
            )


# --- images and stacks ----------------------------------------------------------------


def check_images(spec: ClusterSpec, spec_dir: Path, report: Report) -> None:
    for index, image in enumerate(spec.images):
        for node_index, name in enumerate(image.nodes or []):
            node = _find(spec, name)
            loc: Loc = ("images", index, "nodes", node_index)
            if node is None:
                report.add(loc, _unknown_node(spec, name))
            elif not node.runs_engine:
                report.add(loc, f"node {name!r} runs no engine to load the image into")


def check_image_tarballs(spec: ClusterSpec, spec_dir: Path, report: Report) -> None:
    # Found now rather than halfway through `up`, with engines already running.
    for index, image in enumerate(spec.images):
        if image.tarball is None:
            continue
        path = resolve_in_spec_dir(spec_dir, image.tarball)
        if not path.exists():
            report.add(
                ("images", index, "tarball"),
                f"tarball {path} not found; {_relative_to(spec_dir)}; "
                f"write it with `docker save -o {path} {image.name}`",
            )
        elif not path.is_file():
            report.add(
                ("images", index, "tarball"),
                f"{path} is not a file; name the `docker save` tarball of {image.name}",
            )


def _relative_to(spec_dir: Path) -> str:
    return f"paths are relative to the spec's folder {spec_dir}"


def check_ssh_hosts(spec: ClusterSpec, spec_dir: Path, report: Report) -> None:
    if not isinstance(spec.provider, SSHProviderSpec):
        return
    hosts = spec.provider.hosts
    for node in spec.nodes:
        if node.name not in hosts:
            report.add(
                ("provider", "hosts"),
                f"no entry for node {node.name!r}; add {node.name}: {{host: ...}}",
            )
    for name in hosts:
        if _find(spec, name) is None:
            report.add(("provider", "hosts", name), _unknown_node(spec, name))


def check_stacks(spec: ClusterSpec, spec_dir: Path, report: Report) -> None:
    for index, stack in enumerate(spec.stacks):
        _check_placements(spec, index, report)
        compose = _read_compose(spec, index, spec_dir, report)
        if compose is None:
            continue
        services, lines = compose
        for service in stack.services:
            if service not in services:
                report.add(
                    ("stacks", index, "services", service),
                    f"{stack.file} defines no service {service!r}"
                    f"{suggest(service, services)} (services: {', '.join(services) or 'none'})",
                )
        for service, definition in services.items():
            _check_service_image(spec, index, service, definition, lines[service], report)
        for service in stack.advertise:
            if service not in stack.services:
                report.add(
                    ("stacks", index, "advertise", service),
                    f"{service!r} is not placed by this stack's services:"
                    f"{suggest(service, list(stack.services))} "
                    f"(placed: {', '.join(stack.services)})",
                )


def _check_placements(spec: ClusterSpec, index: int, report: Report) -> None:
    for service, name in spec.stacks[index].services.items():
        node = _find(spec, name)
        loc: Loc = ("stacks", index, "services", service)
        if node is None:
            report.add(loc, _unknown_node(spec, name))
        elif not node.runs_engine:
            engines = ", ".join(n.name for n in spec.engine_nodes)
            report.add(loc, f"node {name!r} runs no engine; place {service} on one of: {engines}")


def _read_compose(
    spec: ClusterSpec, index: int, spec_dir: Path, report: Report
) -> tuple[dict[str, object], dict[str, int]] | None:
    """Services of the stack's compose file and the line each starts on, or None."""
    stack = spec.stacks[index]
    loc: Loc = ("stacks", index, "file")
    path = resolve_in_spec_dir(spec_dir, stack.file)
    try:
        compose = read_compose_file(path)
    except FileNotFoundError:
        report.add(loc, f"compose file {path} not found; {_relative_to(spec_dir)}")
        return None
    except NotARegularFile as exc:
        report.add(loc, f"{exc}: a stack's file must be a compose YAML file")
        return None
    except COMPOSE_UNREADABLE as exc:
        report.add(loc, f"cannot read compose file {stack.file}: {_one_line(exc)}")
        return None
    services = compose.services
    if services is None:
        report.add(loc, f"{stack.file} has no services mapping")
        return None
    _check_compose_version(spec, index, compose, report)
    return services, compose.service_lines


def _check_compose_version(
    spec: ClusterSpec, index: int, compose: ComposeFile, report: Report
) -> None:
    """The compose file version the stack's way of deploying speaks: `docker stack
    deploy` (swarm mode) reads only 3.x; compose through a classic swarm master (API
    1.30) allows 2.0 to 2.3."""
    loc: Loc = ("stacks", index, "file")
    if spec.orchestration.mode == "swarm-mode":
        version = compose.version(default="3")
        if not version.startswith("3"):
            report.add(
                loc,
                f"{compose.path} is compose file version {version}; `docker stack deploy` "
                '(swarm mode) needs version 3.x. Write it as version: "3.8" (deploy:, not '
                "container_name: or depends_on: conditions)",
            )
    elif spec.orchestration.mode == "classic-swarm" and spec.stacks[index].via == "swarm-master":
        version = compose.version(default="1")
        if not re.fullmatch(r"2(\.[0-3])?", version):
            report.add(
                loc,
                f"{compose.path} is compose file version {version} (via: swarm-master); "
                "swarm 1.2.9 speaks API 1.30, which compose allows for versions 2.0 to 2.3: "
                'write it as version: "2.3", or use via: node',
            )


def _check_service_image(
    spec: ClusterSpec, index: int, service: str, definition: object, line: int, report: Report
) -> None:
    stack = spec.stacks[index]
    image = definition.get("image") if isinstance(definition, dict) else None
    where = f"service {service!r} in {stack.file} (line {line})"
    listed = {_normalise_image(i.name) for i in spec.images}
    if image is None:
        report.add(
            ("stacks", index, "file"),
            f"{where} has no image; the lab builds nothing and pulls nothing, "
            f"so use {PROBE_IMAGE} or an image listed under images:",
        )
    elif _normalise_image(str(image)) not in listed | set(BUILT_IMAGES):
        report.add(
            ("stacks", index, "file"),
            f"{where} uses image {image!r}, which is neither one the lab builds "
            f"({', '.join(BUILT_IMAGES)}) nor listed under images:; add '- name: {image}' "
            "under images: (nothing is pulled)",
        )


def _normalise_image(reference: str) -> str:
    """`mongo` and `docker.io/library/mongo:latest` name the same image."""
    for prefix in ("docker.io/library/", "docker.io/", "index.docker.io/library/"):
        if reference.startswith(prefix):
            reference = reference[len(prefix) :]
            break
    last = reference.rsplit("/", 1)[-1]
    if "@" not in reference and ":" not in last:
        reference += ":latest"
    return reference


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


CHECKS: tuple[Check, ...] = (
    check_node_names,
    check_engine_nodes,
    check_addresses,
    check_host_address,
    check_networks,
    check_overlay_needs_control_plane,
    check_kv,
    check_cluster_store,
    check_cluster_advertise,
    check_orchestration,
    check_daemon_keys,
    check_images,
    check_image_tarballs,
    check_ssh_hosts,
    check_stacks,
)
