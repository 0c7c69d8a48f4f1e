"""Rules on the KV store and the engines' options: the store, cluster-store and -advertise,
the orchestration mode, daemon keys the lab manages itself."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

from overlaylab.spec.models import (
    KV_SCHEMES,
    PROVIDER_INTERFACES,
    ClusterSpec,
    LocalProviderSpec,
    SSHProviderSpec,
)
from overlaylab.spec.semantic.common import find_node, unknown_node, version_of
from overlaylab.spec.semantic.report import Loc, Report, suggest

# libkv discovery URL: one or more HOST:PORT (comma separated), optional path prefix.
_STORE_URL = re.compile(
    r"^(?P<scheme>[a-z]+)://(?P<hosts>[A-Za-z0-9_.-]+:\d{1,5}(,[A-Za-z0-9_.-]+:\d{1,5})*)"
    r"(?P<path>(/[A-Za-z0-9._-]+)*)/?$"
)


# The engine line that removed --cluster-store (moby PR #42247, released in 23.0).
_CLUSTER_STORE_REMOVED_IN = (23, 0)


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
    node = find_node(spec, spec.kv.node)
    if node is None:
        report.add(
            ("kv", "node"),
            f"{unknown_node(spec, spec.kv.node)}; add a node with roles: [kv] or "
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
    if version_of(spec.engine.version) >= _CLUSTER_STORE_REMOVED_IN:
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
