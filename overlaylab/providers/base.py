"""The one way in to a lab's hosts (after kind's `Provider` and `nodes.Node`).

A provider makes hosts and takes them away; a node handle is everything steps,
checks and tasks may do on one host: run a command, place a file, run a service and
read its log, talk to its engine, and look at the lab network from where the node
stands. Nothing above this seam knows whether a node is a network namespace on this
machine, a Vagrant machine or a server reached over SSH, so every provider gets
every feature.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import PurePosixPath
from typing import Protocol

import docker

from overlaylab.layout import IMAGES_RECORD as IMAGES_RECORD
from overlaylab.layout import NodePaths
from overlaylab.providers.command import CommandResult

# The service name of a node's Docker engine, for `Node.start_service` and the others.
ENGINE_SERVICE = "dockerd"


class Node(Protocol):
    """One host of the lab, reached through its provider."""

    name: str
    address: ipaddress.IPv4Address  # the node's address on the lab network
    paths: NodePaths
    # The cgroup parent its engine should give containers, when the provider wants one
    # (the local provider groups a lab's containers so that `down` finds them).
    cgroup_parent: str | None

    def run(
        self,
        argv: Sequence[str],
        *,
        check: bool = True,
        timeout: float | None = 60,
        input: str | None = None,
    ) -> CommandResult: ...

    def put_file(self, path: PurePosixPath, data: bytes, mode: int = 0o644) -> None: ...

    def read_file(self, path: PurePosixPath) -> bytes | None:
        """The file's bytes, or None when it does not exist."""
        ...

    def start_service(self, service: str, argv: Sequence[str]) -> None:
        """Start a long-running program for the lab on the node, detached."""
        ...

    def stop_service(self, service: str, binary: str, timeout: float = 10) -> None: ...

    def service_alive(self, service: str, binary: str | None = None) -> bool: ...

    def service_log(self, service: str) -> str | None:
        """The service's output since its latest start, or None when it never ran."""
        ...

    def service_log_location(self, service: str) -> str:
        """Where a person finds that log (a path on this machine, or host:path)."""
        ...

    def engine(self, timeout: int = 30) -> AbstractContextManager[docker.DockerClient]: ...

    def engine_ping(self, timeout: float = 1.0) -> bool: ...

    def docker_env(self) -> dict[str, str]:
        """DOCKER_* variables that point a docker CLI on this machine at the engine."""
        ...

    def tcp_connect(self, host: str, port: int, timeout: float = 2.0) -> tuple[bool, str]:
        """Can the node open a TCP connection to host:port? (ok, why not)."""
        ...

    def http_get(self, host: str, port: int, path: str, timeout: float = 2.0) -> tuple[int, str]:
        """A plain HTTP GET made from the node: (status, body). Raises OSError."""
        ...

    def tcp_answers(self, host: str, port: int, timeout: float = 2.0) -> tuple[bool, str]:
        """Does something serve host:port? Connect, send a request line and wait: an
        answer or a close is a server at work; a connection that opens and stays
        silent is not (a paused process: the kernel completes the handshake for it).
        (ok, what happened)."""
        ...

    def tcp_probe_command(self, host: str, port: int) -> str:
        """A shell command a person can paste to repeat `tcp_connect`."""
        ...


class Provider(Protocol):
    """Makes a lab's hosts, hands out their nodes, and takes every trace away."""

    name: str

    def preflight(self) -> list[tuple[str, str]]:
        """What this machine lacks to run the lab: (what, fix) for every gap."""
        ...

    def provision(self, on_item: Callable[[str, str], None] | None = None) -> None:
        """Create (or complete) the hosts and the lab network between them."""
        ...

    def destroy(self) -> list[str]:
        """Remove everything the lab made; say what was done. Raises if traces remain."""
        ...

    def exists(self) -> bool: ...

    def node(self, name: str) -> Node: ...

    def nodes(self) -> Iterator[Node]: ...

    @property
    def host_address(self) -> ipaddress.IPv4Address | None:
        """This machine's own address on the lab network, when it has one."""
        ...


def ping_api_version(response: bytes) -> str | None:
    """The API version an engine states in its answer to GET /_ping (the `Api-Version`
    header), or None. A docker client is made for every call to an engine; told its
    version, it skips docker-py's own negotiation, a GET /version, for which dockerd 20.10
    runs `runc --version` and `docker-init --version`: two programs per client, the
    largest share of the engines' work in a `verify` that starts no container."""
    head, _, _ = response.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    if not lines or " 200 " not in f"{lines[0]} ":
        return None
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "api-version" and value.strip():
            return value.strip()
    return None
