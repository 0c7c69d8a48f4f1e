"""The local provider's preflight: everything a lab of namespaces on this machine needs,
checked before anything is created."""

from __future__ import annotations

import ipaddress
import os
import subprocess
from pathlib import Path

from overlaylab.host_programs import ZOOKEEPER_SERVER
from overlaylab.providers.tool_gaps import (
    APT,
    host_tool_gaps,
    kernel_feature,
    store_gaps,
    which,
)
from overlaylab.spec.models import ClusterSpec

SYSTEM_CONTAINERD_SOCKET = Path("/run/containerd/containerd.sock")


def system_containerd_running(socket: Path) -> bool:
    """Is the system's containerd socket there? Unknown (False) for a user who may not
    look into its root-only folder: that user already hears "not running as root"."""
    try:
        return socket.exists()
    except PermissionError:
        return False


# (binary, Debian package) the local provider always needs.
BASE_TOOLS = [
    ("ip", "iproute2"),
    ("nsenter", "util-linux"),
    ("unshare", "util-linux"),
    ("dockerd", "docker.io"),
    ("containerd", "containerd"),
    ("runc", "runc"),
    ("iptables", "iptables"),
]


def local_preflight(
    spec: ClusterSpec, host_address: ipaddress.IPv4Address | None
) -> list[tuple[str, str]]:
    gaps: list[tuple[str, str]] = []
    if os.geteuid() != 0:
        gaps.append(
            (
                "not running as root (namespaces and dockerd need it)",
                "run as root, e.g. `sudo -E invoke up`",
            )
        )
    for binary, package in BASE_TOOLS:
        if not which(binary):
            gaps.append((f"`{binary}` is not installed", f"{APT} {package}"))
    gaps += host_tool_gaps(spec)
    if spec.kv is not None:
        backend = spec.kv.backend
        if backend == "etcd" and not which("etcd"):
            gaps.append(("`etcd` is not installed (kv.backend: etcd)", f"{APT} etcd-server"))
        if backend == "zookeeper" and not ZOOKEEPER_SERVER.exists():
            gaps.append(
                (f"{ZOOKEEPER_SERVER} is missing (kv.backend: zookeeper)", f"{APT} zookeeper")
            )
        if backend == "consul" and not which("consul"):
            gaps.append(
                (
                    "`consul` is not on PATH (kv.backend: consul); Debian 12 does not package it",
                    "put a consul binary on PATH, or set kv.backend: etcd (same legacy overlay, "
                    "Debian's etcd-server)",
                )
            )
    swarm = spec.orchestration
    if swarm.mode == "classic-swarm" and swarm.discovery == "consul" and not which("consul"):
        gaps.append(
            (
                "`consul` is not on PATH (orchestration.discovery: consul); Debian 12 "
                "does not package it",
                "put a consul binary on PATH, or set orchestration.discovery: kv",
            )
        )
    gaps += store_gaps(spec)
    if system_containerd_running(SYSTEM_CONTAINERD_SOCKET):
        gaps.append(
            (
                f"a system containerd listens on {SYSTEM_CONTAINERD_SOCKET}; "
                "every lab engine would share it and containers would escape "
                "their node's namespace",
                "stop it for the lab's lifetime: `systemctl stop containerd` (or kill it)",
            )
        )
    for module in ("vxlan", "bridge", "veth", "overlay"):
        if module != "veth" and not kernel_feature(module):
            gaps.append((f"kernel feature `{module}` is not available", f"modprobe {module}"))
    if host_address is not None:
        gaps += route_clashes(spec)
    return gaps


def route_clashes(spec: ClusterSpec) -> list[tuple[str, str]]:
    """The host link would shadow a real network that overlaps the lab subnet."""
    out = subprocess.run(
        ["ip", "-4", "route", "show"], capture_output=True, text=True, check=False
    ).stdout
    gaps = []
    link = f"ol-{spec.name}"
    for line in out.splitlines():
        parts = line.split()
        device = parts[parts.index("dev") + 1] if "dev" in parts[:-1] else None
        if not parts or parts[0] == "default" or device == link:
            continue
        try:
            net = ipaddress.IPv4Network(parts[0], strict=False)
        except ValueError:
            continue
        if net.overlaps(spec.lab.subnet):
            gaps.append(
                (
                    f"lab subnet {spec.lab.subnet} overlaps the host's route {line.strip()!r}",
                    "choose another lab.subnet in the spec (and node addresses inside it)",
                )
            )
    return gaps
