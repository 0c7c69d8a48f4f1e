"""A local node: a network namespace on this machine, its files in the lab's folder."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
from collections.abc import Iterator, Sequence
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

import docker

from overlaylab.providers.base import NodePaths, ping_api_version
from overlaylab.providers.command import CommandResult
from overlaylab.providers.host_runner import HostRunner
from overlaylab.providers.local.netns import http_get, tcp_answers, tcp_connect_ok

if TYPE_CHECKING:
    from overlaylab.providers.local.provider import LocalProvider


class LocalNode:
    """The `Node` of a local lab: same filesystem as the host, its own network."""

    def __init__(self, provider: LocalProvider, name: str) -> None:
        self.provider = provider
        self.name = name
        self.netns = provider.layout.node_ns(name)
        address = provider.spec.address_of(name)
        self.address = ipaddress.IPv4Address(address)
        self.paths = NodePaths.under(PurePosixPath(provider.layout.node_dir(name)))
        self.cgroup_parent: str | None = provider.layout.cgroup_parent(name)

    def __repr__(self) -> str:
        return f"LocalNode({self.name!r}, netns={self.netns!r})"

    # --- commands and files ------------------------------------------------------------
    def run(
        self,
        argv: Sequence[str],
        *,
        check: bool = True,
        timeout: float | None = 60,
        input: str | None = None,
    ) -> CommandResult:
        # nsenter, not `ip netns exec`: the latter also makes a new mount namespace and
        # remounts /sys, which breaks dockerd ("Devices cgroup isn't mounted"). A UTS
        # namespace of its own gives the command the node's hostname, as its services have.
        wrapped = self.provider.in_node(self.name, argv)
        result = HostRunner().run(wrapped, check=False, timeout=timeout, input=input)
        # Report the command as the user asked for it, run where it ran.
        result = CommandResult(
            tuple(argv), result.returncode, result.stdout, result.stderr, self.name
        )
        return result.check() if check else result

    def put_file(self, path: PurePosixPath, data: bytes, mode: int = 0o644) -> None:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        # Written under its final mode from the start: keys are never readable by others.
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with open(fd, "wb") as handle:
            handle.write(data)
        target.chmod(mode)

    def read_file(self, path: PurePosixPath) -> bytes | None:
        try:
            return Path(path).read_bytes()
        except FileNotFoundError:
            return None

    # --- services ------------------------------------------------------------------------
    def start_service(self, service: str, argv: Sequence[str]) -> None:
        self.provider.spawn(self.name, service, argv)

    def stop_service(self, service: str, binary: str, timeout: float = 10) -> None:
        self.provider.stop_service(self.name, service, binary, timeout)

    def service_alive(self, service: str, binary: str | None = None) -> bool:
        return self.provider.service_pid(self.name, service, binary) is not None

    def service_log(self, service: str) -> str | None:
        return self.provider.current_log(self.name, service)

    def service_log_location(self, service: str) -> str:
        return str(self.provider.layout.log_file(self.name, service))

    # --- the engine ------------------------------------------------------------------------
    @contextlib.contextmanager
    def engine(self, timeout: int = 30) -> Iterator[docker.DockerClient]:
        """A client on the node's unix socket (reachable whatever the host link)."""
        client = docker.DockerClient(
            base_url=f"unix://{self.paths.docker_socket}",
            timeout=timeout,
            version=self._api_version(timeout),
        )
        try:
            yield client
        finally:
            client.close()

    def _api_version(self, timeout: float) -> str:
        """The engine's API version from its /_ping (see ping_api_version); "auto" (docker-py
        asks /version) when /_ping does not say, and to let a dead engine fail as before."""
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(timeout)
                sock.connect(str(self.paths.docker_socket))
                sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
                response = b""
                while b"\r\n\r\n" not in response and (chunk := sock.recv(4096)):
                    response += chunk
        except OSError:
            return "auto"
        return ping_api_version(response) or "auto"

    def engine_ping(self, timeout: float = 1.0) -> bool:
        """GET /_ping on the unix socket: cheap readiness without a client library."""
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(timeout)
                sock.connect(str(self.paths.docker_socket))
                sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
                return sock.recv(64).startswith(b"HTTP/1.0 200")
        except OSError:
            return False

    def docker_env(self) -> dict[str, str]:
        return self.provider.engine_env(self.name)

    # --- the lab network, seen from the node -------------------------------------------------
    def tcp_connect(self, host: str, port: int, timeout: float = 2.0) -> tuple[bool, str]:
        return tcp_connect_ok(self.netns, host, port, timeout)

    def http_get(self, host: str, port: int, path: str, timeout: float = 2.0) -> tuple[int, str]:
        return http_get(self.netns, host, port, path, timeout)

    def tcp_answers(self, host: str, port: int, timeout: float = 2.0) -> tuple[bool, str]:
        return tcp_answers(self.netns, host, port, timeout)

    def tcp_probe_command(self, host: str, port: int) -> str:
        """The shell command that repeats a `tcp_connect`, for reports."""
        return f"nsenter --net=/run/netns/{self.netns} nc -zv {host} {port}"
