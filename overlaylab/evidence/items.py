"""What `invoke logs` collects: per node through its handle (so local, SSH and Vagrant
labs alike), lab-wide from the spec, the KV store and the swarm. Each item is a path in
the archive, where it comes from, and a function that produces it within its limit;
collect.py runs them.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from overlaylab.context import LabContext
from overlaylab.evidence.since import lines_since
from overlaylab.host_programs import ZOOKEEPER_SERVER
from overlaylab.overlay.gossip import serf_view
from overlaylab.providers.base import ENGINE_SERVICE, Node
from overlaylab.up.classic_swarm import MASTER, masters

COMMAND_TIMEOUT = 15.0  # one command on a node


ENGINE_TIMEOUT = 10  # one engine API call


# sysctls that decide what an overlay can do on a node.
SYSCTLS = (
    "net/ipv4/ip_forward",
    "net/ipv4/conf/all/rp_filter",
    "net/ipv4/conf/default/rp_filter",
    "net/bridge/bridge-nf-call-iptables",
    "net/ipv4/neigh/default/gc_thresh1",
    "net/ipv4/route/mtu_expires",
    "net/core/rmem_max",
)


MODULES = ("vxlan", "ip_vs", "br_netfilter", "overlay", "bridge", "veth")


_MODULES = (
    'for m in "$@"; do if [ -d "/sys/module/$m" ]; then echo "$m: loaded (or built in)"; '
    'else echo "$m: absent"; fi; done; uname -a'
)


_SYSCTLS = 'for f in "$@"; do [ -r "$f" ] && echo "$f = $(cat "$f")"; done; exit 0'


# Each sandbox under the engine's exec root (the containers' and, on the legacy
# overlay, each network's, which holds the VXLAN device and its peer entries: the
# node's own namespace does not).
_SANDBOXES = (
    'for f in "$1"/netns/*; do [ -e "$f" ] || continue; echo "== $f"; '
    'nsenter --net="$f" ip -d link show; nsenter --net="$f" bridge fdb show; '
    'nsenter --net="$f" ip neigh show; done'
)


@dataclass
class Item:
    path: str
    source: str
    what: str
    produce: Callable[[], bytes | str | None]  # None: nothing there (recorded as missing)
    timeout: float = COMMAND_TIMEOUT


def _json(data: Any) -> bytes:
    return json.dumps(data, indent=2, sort_keys=True, default=str).encode() + b"\n"


def _run(handle: Node, argv: list[str], timeout: float = COMMAND_TIMEOUT) -> str:
    result = handle.run(argv, check=False, timeout=timeout)
    if result.returncode != 0 and not result.stdout:
        raise RuntimeError(f"exit {result.returncode}: {result.stderr.strip()[:300]}")
    return result.stdout


def _log(handle: Node, service: str, cutoff: datetime | None) -> str | None:
    text = handle.service_log(service)
    if text is None:
        return None
    return lines_since(text, cutoff) if cutoff is not None else text


def _engine_items(ctx: LabContext, name: str, cutoff: datetime | None) -> list[Item]:
    handle = ctx.node(name)
    here = f"{name}/engine"

    def with_engine(read: Callable[[Any], Any]) -> Callable[[], bytes]:
        def produce() -> bytes:
            with handle.engine(timeout=ENGINE_TIMEOUT) as client:
                return _json(read(client))

        return produce

    def overlays(client: Any) -> dict[str, Any]:
        found = {}
        for net in client.api.networks():
            if net.get("Driver") == "overlay":
                found[net["Name"]] = client.api.inspect_network(net["Id"], verbose=True)
        return found

    def gossip() -> bytes:
        log = handle.service_log(ENGINE_SERVICE) or ""
        node_at = {str(n.address): n.name for n in ctx.spec.engine_nodes}
        lines = [line for line in log.splitlines() if "serf:" in line or "memberlist" in line]
        return _json({"members": sorted(serf_view(log, node_at)), "serf_lines": lines[-200:]})

    return [
        Item(
            f"{here}/dockerd.log", name, "the engine's log", lambda: _log(handle, "dockerd", cutoff)
        ),
        Item(
            f"{here}/daemon.json",
            name,
            str(handle.paths.daemon_config),
            lambda: handle.read_file(handle.paths.daemon_config),
        ),
        Item(f"{here}/info.json", name, "docker info (API)", with_engine(lambda c: c.info())),
        Item(
            f"{here}/version.json", name, "docker version (API)", with_engine(lambda c: c.version())
        ),
        Item(
            f"{here}/overlays.json", name, "docker network inspect --verbose", with_engine(overlays)
        ),
        Item(
            f"{here}/containers.json",
            name,
            "docker inspect of every container",
            with_engine(lambda c: [x.attrs for x in c.containers.list(all=True)]),
        ),
        Item(f"{here}/gossip.json", name, "serf membership from the engine's log", gossip),
        Item(
            f"{name}/net/overlay-sandboxes.txt",
            name,
            "ip -d link, bridge fdb, ip neigh in each sandbox of the engine",
            lambda: _run(handle, ["sh", "-c", _SANDBOXES, "sh", str(handle.paths.exec_root)]),
        ),
    ]


def _node_items(ctx: LabContext, name: str) -> list[Item]:
    handle = ctx.node(name)
    commands = {
        "net/ip-addr.txt": ["ip", "-d", "addr", "show"],
        "net/ip-link.txt": ["ip", "-d", "link", "show"],
        "net/ip-route.txt": ["ip", "route", "show", "table", "all"],
        "net/ip-neigh.txt": ["ip", "neigh", "show"],
        "net/bridge-fdb.txt": ["bridge", "fdb", "show"],
        "net/iptables-save.txt": ["iptables-save"],
    }
    items = [
        Item(f"{name}/{path}", name, " ".join(argv), lambda argv=argv: _run(handle, argv))
        for path, argv in commands.items()
    ]
    sysctls = ["sh", "-c", _SYSCTLS, "sh", *(f"/proc/sys/{s}" for s in SYSCTLS)]
    items.append(
        Item(f"{name}/kernel/sysctl.txt", name, "selected sysctls", lambda: _run(handle, sysctls))
    )
    modules = ["sh", "-c", _MODULES, "sh", *MODULES]
    items.append(
        Item(f"{name}/kernel/modules.txt", name, "kernel modules", lambda: _run(handle, modules))
    )
    return items


def _kv_items(ctx: LabContext, cutoff: datetime | None) -> list[Item]:
    kv = ctx.spec.kv
    if kv is None:
        return []
    handle = ctx.node(kv.node)
    ip, port = str(ctx.spec.address_of(kv.node)), kv.client_port

    def keys() -> bytes | str:
        if kv.backend == "etcd":
            status, body = handle.http_get(ip, port, "/v2/keys/docker?recursive=true", 10.0)
            return body if status == 200 else f"HTTP {status}: {body}"
        if kv.backend == "consul":
            status, body = handle.http_get(ip, port, "/v1/kv/docker?recurse=true", 10.0)
            return body if status == 200 else f"HTTP {status}: {body}"
        cli = str(ZOOKEEPER_SERVER.with_name("zkCli.sh"))
        return _run(handle, [cli, "-server", f"{ip}:{port}", "ls", "-R", "/docker"], 30.0)

    return [
        Item(
            f"{kv.node}/{kv.backend}.log",
            kv.node,
            f"the {kv.backend} server's log",
            lambda: _log(handle, kv.backend, cutoff),
        ),
        Item(
            f"lab/kv-keys-{kv.backend}.txt", kv.node, f"{kv.backend}: the docker/ keys", keys, 35.0
        ),
    ]


def _swarm_items(ctx: LabContext) -> list[Item]:
    spec = ctx.spec
    if spec.orchestration.mode == "swarm-mode":
        leader = next(n.name for n in spec.engine_nodes if "manager" in n.roles)

        def swarm() -> bytes:
            with ctx.node(leader).engine(timeout=ENGINE_TIMEOUT) as client:
                return _json(
                    {
                        "manager": leader,
                        "nodes": [n.attrs for n in client.nodes.list()],
                        "services": [s.attrs for s in client.services.list()],
                        "tasks": client.api.tasks(),
                    }
                )

        return [Item("lab/swarm.json", leader, "nodes, services, tasks from the manager", swarm)]
    if spec.orchestration.mode == "classic-swarm" and masters(spec):
        master = masters(spec)[0].name

        def master_log() -> bytes:
            with ctx.node(master).engine(timeout=ENGINE_TIMEOUT) as client:
                data: bytes = client.containers.get(MASTER).logs(tail=2000)
                return data

        return [Item("lab/classic-swarm-master.log", master, f"docker logs {MASTER}", master_log)]
    return []


def _lab_items(ctx: LabContext) -> list[Item]:
    def spec_text() -> bytes:
        return ctx.spec_path.read_bytes()

    def host() -> bytes:
        def version(argv: list[str]) -> str:
            try:
                done = subprocess.run(argv, capture_output=True, text=True, timeout=10)
                return (done.stdout or done.stderr).strip().splitlines()[0]
            except (OSError, subprocess.TimeoutExpired, IndexError) as exc:
                return f"unavailable: {exc}"

        return _json(
            {
                "kernel": platform.uname()._asdict(),
                "python": platform.python_version(),
                "dockerd": version([ctx.spec.engine.dockerd or "dockerd", "--version"]),
                "docker_cli": version(["docker", "--version"]),
                "docker_compose": version(["docker-compose", "version", "--short"]),
                "etcd": version(["etcd", "--version"]),
                "provider": ctx.spec.provider.type,
            }
        )

    def compose(stack_file: str) -> Callable[[], str]:
        def produce() -> str:
            path = ctx.resolve_spec_path(stack_file)
            # A clean environment: compose fills ${VAR} from it, and the operator's
            # shell may hold secrets that have no place in a bug report.
            done = subprocess.run(
                ["docker-compose", "-f", str(path), "config"],
                capture_output=True,
                text=True,
                timeout=COMMAND_TIMEOUT,
                env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
            )
            if done.returncode != 0:
                raise RuntimeError(done.stderr.strip()[:300])
            return done.stdout

        return produce

    items = [
        Item("lab/spec.yml", "this machine", str(ctx.spec_path), spec_text),
        Item("lab/host.json", "this machine", "kernel and program versions", host),
        Item(
            "lab/faults.json",
            "this machine",
            "faults injected by overlaylab",
            lambda: _json({"active": [], "note": "this version injects no faults itself"}),
        ),
    ]
    items += [
        Item(
            f"lab/compose/{stack.name}.yml",
            "this machine",
            f"docker-compose -f {stack.file} config",
            compose(stack.file),
            COMMAND_TIMEOUT,
        )
        for stack in ctx.spec.stacks
    ]
    return items


def plan(ctx: LabContext, since: timedelta | None) -> list[Item]:
    """Every item to collect from this lab."""
    cutoff = datetime.now(UTC) - since if since is not None else None
    items: list[Item] = []
    for node in ctx.spec.nodes:
        items += _node_items(ctx, node.name)
    for node in ctx.spec.engine_nodes:
        items += _engine_items(ctx, node.name, cutoff)
    return items + _kv_items(ctx, cutoff) + _swarm_items(ctx) + _lab_items(ctx)
