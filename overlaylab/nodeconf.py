"""What a node runs, as files and command lines: pure functions of the spec and the
node's paths.

`up` writes these through each node's handle (up/steps/engines.py, up/steps/kv.py, a
host's own docker service in providers/ssh/host_engine.py); `invoke render` writes the
same text into a folder (artifacts/). Nothing here reaches a node, builds a provider or
opens a lab: render works offline and shows exactly what `up` writes. This module sits
below providers: it imports the spec, the layout (paths), the templates and where this
machine's programs are (host_programs) only.
"""

from __future__ import annotations

import json
import re
from pathlib import Path, PurePosixPath
from typing import Any

from overlaylab.host_programs import ZOOKEEPER_SERVER
from overlaylab.layout import LabLayout, NodePaths
from overlaylab.spec.models import ClusterSpec, LocalProviderSpec, Node
from overlaylab.templates import render

# --- a host's own docker service (`provider.engine: host`, and render for real hosts) --
# The places docker-machine configured its engines in: /etc/docker/daemon.json, TLS
# files beside it, and a systemd drop-in that starts dockerd without flags (dockerd
# refuses `hosts` from a flag and from daemon.json at once).
HOST_DAEMON_JSON = PurePosixPath("/etc/docker/daemon.json")
HOST_TLS_DIR = PurePosixPath("/etc/docker/overlaylab")
HOST_DOCKER_SOCKET = PurePosixPath("/var/run/docker.sock")
DROP_IN = PurePosixPath("/etc/systemd/system/docker.service.d/overlaylab.conf")
# Debian's docker.io (the lab's engine line, 20.10) installs /usr/sbin/dockerd; Docker
# CE's packages /usr/bin/dockerd.
DEBIAN_DOCKERD = "/usr/sbin/dockerd"


def host_engine_paths(root: PurePosixPath) -> NodePaths:
    """A host whose one dockerd is the lab's engine: its configuration where the host's
    docker service reads it, the lab's own files (backups, records) under `root`."""
    return NodePaths(
        root=root,
        daemon_config=HOST_DAEMON_JSON,
        tls_dir=HOST_TLS_DIR,
        docker_socket=HOST_DOCKER_SOCKET,
        private_engine=False,
    )


def dockerd_drop_in(cluster: str, node: str, dockerd: str = DEBIAN_DOCKERD) -> str:
    """The systemd drop-in that starts dockerd without flags (templates/dockerd-dropin.conf.j2)."""
    return render(
        "dockerd-dropin.conf.j2",
        cluster=cluster,
        node=node,
        daemon_json=str(HOST_DAEMON_JSON),
        drop_in=str(DROP_IN),
        dockerd=dockerd,
    )


# --- dockerd: daemon.json -------------------------------------------------------------


def daemon_config(
    spec: ClusterSpec, node: Node, paths: NodePaths, cgroup_parent: str | None
) -> dict[str, Any]:
    """The node's daemon.json as a dict (rendered from templates/daemon.json.j2).

    An engine that is its folder's only tenant (`paths.private_engine`: a folder per
    engine when several share a machine) keeps its data, exec root and pid file there;
    a host's one engine keeps dockerd's own places. Without `cgroup_parent` dockerd
    keeps its own cgroups.
    """
    hosts = [f"unix://{paths.docker_socket}"]
    if spec.engine.tls:
        hosts.append(f"tcp://{node.address}:{spec.engine.api_port}")
    where = {
        "node_dir": str(paths.root) if paths.private_engine else None,
        "cgroup_parent": cgroup_parent,
    }
    text = render(
        "daemon.json.j2",
        hosts=hosts,
        tls=spec.engine.tls,
        tls_dir=str(paths.tls_dir),
        cluster_store=spec.cluster_store_url(),
        cluster_advertise=spec.engine.cluster_advertise,
        cluster_store_opts=spec.engine.cluster_store_opts,
        labels=[f"{k}={v}" for k, v in sorted(node.labels.items())],
        extra=spec.engine.daemon,
        mtu=spec.lab.mtu,
        **{key: value for key, value in where.items() if value is not None},
    )
    config: dict[str, Any] = json.loads(text)
    return config


def daemon_json(config: dict[str, Any]) -> str:
    """daemon.json's text as `up` writes it and compares it (sorted keys, 2-space indent)."""
    return json.dumps(config, indent=2, sort_keys=True) + "\n"


# --- the engine, seen from this machine's docker CLI ------------------------------------


def tls_engine_env(spec: ClusterSpec, node: str, client_cert_dir: Path) -> dict[str, str]:
    """DOCKER_* for a node's engine over TCP, with the lab's client certificate."""
    return {
        "DOCKER_HOST": f"tcp://{spec.address_of(node)}:{spec.engine.api_port}",
        "DOCKER_TLS_VERIFY": "1",
        "DOCKER_CERT_PATH": str(client_cert_dir),
        "DOCKER_MACHINE_NAME": node,
    }


def local_engine_env(spec: ClusterSpec, layout: LabLayout, node: str) -> dict[str, str]:
    """DOCKER_* for a local node's engine, as its handle gives them: TCP when the host
    has a link (and so an address) into the lab and the engines speak TLS, else the
    engine's socket in the node's folder."""
    if spec.engine.tls and isinstance(spec.provider, LocalProviderSpec) and spec.provider.host_link:
        return tls_engine_env(spec, node, layout.client_cert_dir)
    return {"DOCKER_HOST": f"unix://{layout.docker_socket(node)}"}


# --- the KV store ---------------------------------------------------------------------

ZOOKEEPER_CONFIG = "zoo.cfg"
# The name each backend's server runs as in /proc/PID/comm (zkServer.sh execs java).
KV_BINARIES = {"etcd": "etcd", "zookeeper": "java", "consul": "consul"}


def zookeeper_config(spec: ClusterSpec, node_dir: Path) -> str:
    """zoo.cfg for a store whose data lives under `node_dir` (the file goes there too)."""
    assert spec.kv is not None
    ip, port = spec.address_of(spec.kv.node), spec.kv.client_port
    return (
        f"tickTime=2000\ndataDir={node_dir / spec.kv.backend}\nclientPort={port}\n"
        f"clientPortAddress={ip}\nadmin.enableServer=false\n4lw.commands.whitelist=ruok\n"
    )


def kv_argv(spec: ClusterSpec, node_dir: Path) -> tuple[str, list[str]]:
    """(binary name as seen in /proc/PID/comm, argv) of the spec's KV server, its data
    under `node_dir` (zookeeper's config file too, whose text `zookeeper_config` gives)."""
    assert spec.kv is not None
    node = spec.kv.node
    ip, port = str(spec.address_of(node)), spec.kv.client_port
    data = node_dir / spec.kv.backend
    if spec.kv.backend == "etcd":
        # Docker's libkv speaks only etcd's v2 API, which etcd 3.4 serves on request.
        url = f"http://{ip}:{port}"
        peer = "http://127.0.0.1:2380"  # single member: peers never leave the node
        return KV_BINARIES["etcd"], [
            "etcd",
            "--name",
            node,
            "--data-dir",
            str(data),
            "--enable-v2=true",
            "--listen-client-urls",
            url,
            "--advertise-client-urls",
            url,
            "--listen-peer-urls",
            peer,
            "--initial-advertise-peer-urls",
            peer,
            "--initial-cluster",
            f"{node}={peer}",
            # A lone member elects itself once its election timeout passes: at etcd's
            # default (1000 ms) it served after 0.1-1.0 s here, at 100 ms after 0.05-
            # 0.09 s. With no peers, a short timeout cannot cost an election.
            "--heartbeat-interval",
            "10",
            "--election-timeout",
            "100",
            "--logger=zap",
            "--log-outputs=stderr",
        ]
    if spec.kv.backend == "zookeeper":
        config = node_dir / ZOOKEEPER_CONFIG
        return KV_BINARIES["zookeeper"], [str(ZOOKEEPER_SERVER), "start-foreground", str(config)]
    # One server that elects itself; no UI, no update checks (nothing leaves the lab).
    # raft_multiplier 1 (consul's default is 5, for slow shared machines): a lone server
    # at default timing took about 7 s to elect itself, the whole of a consul lab's `up`.
    return KV_BINARIES["consul"], [
        "consul",
        "agent",
        "-server",
        "-bootstrap-expect=1",
        "-hcl",
        "disable_update_check = true",
        "-hcl",  # consul takes -hcl several times, one fragment each
        "performance { raft_multiplier = 1 }",
        "-disable-host-node-id",
        "-data-dir",
        str(data),
        "-bind",
        ip,
        "-client",
        ip,
        "-http-port",
        str(port),
        "-node",
        node,
    ]


# --- the KV store as a systemd unit (a real KV host) -----------------------------------

# systemd wants absolute paths. etcd is Debian's etcd-server; Debian has no consul,
# so a consul binary is put where hand-installed binaries go.
KV_EXECUTABLES = {"etcd": "/usr/bin/etcd", "consul": "/usr/local/bin/consul"}
_SYSTEMD_PLAIN = re.compile(r"^[A-Za-z0-9_@%$+=:,./-]+$")


def systemd_quote(arg: str) -> str:
    """One ExecStart argument: quoted when needed; % and $ doubled (systemd expands
    specifiers and variables even inside quotes)."""
    escaped = arg.replace("%", "%%").replace("$", "$$")
    if _SYSTEMD_PLAIN.match(escaped):
        return escaped
    return '"' + escaped.replace("\\", "\\\\").replace('"', '\\"') + '"'


def kv_unit_name(spec: ClusterSpec) -> str:
    assert spec.kv is not None
    return f"overlaylab-{spec.name}-{spec.kv.backend}.service"


def kv_unit(spec: ClusterSpec, node_dir: Path, *, local: bool) -> str:
    """A systemd unit running the KV store with the arguments `up` uses (`kv_argv`).
    `local`: the lab's nodes are namespaces of this machine, where `up` starts the
    command itself; the unit says so."""
    assert spec.kv is not None
    _, argv = kv_argv(spec, node_dir)
    executable = KV_EXECUTABLES.get(argv[0], argv[0])
    return render(
        "kv.service.j2",
        cluster=spec.name,
        node=spec.kv.node,
        backend=spec.kv.backend,
        local=local,
        namespace=LabLayout.for_cluster(spec.name).node_ns(spec.kv.node),
        unit_name=kv_unit_name(spec),
        exec_start=" ".join(systemd_quote(a) for a in [executable, *argv[1:]]),
    )
