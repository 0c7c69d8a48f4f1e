"""A local node: a network namespace on this machine, its files in the lab's folder."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path, PurePosixPath

import docker

from overlaylab import nodeconf
from overlaylab.layout import LabLayout
from overlaylab.providers.base import ping_api_version
from overlaylab.providers.command import CommandResult
from overlaylab.providers.host_runner import HostRunner
from overlaylab.providers.local import plumbing
from overlaylab.providers.local.netns import http_get, tcp_answers, tcp_connect_ok
from overlaylab.spec.models import ClusterSpec
from overlaylab.waiting import wait_until

# Logs are appended across restarts; this line opens each run of a service.
START_MARKER = "--- overlaylab: starting"


def service_env(node_dir: Path) -> dict[str, str]:
    """The environment of a service the node runs: ours, with its temporary files kept
    in the node's folder. An engine that finds its containerd unhealthy asks it for a
    stack dump (SIGUSR1) before killing it, and containerd writes that dump to $TMPDIR:
    left to /tmp, every such moment left a file on the machine after `down`."""
    tmp = node_dir / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    return {**os.environ, "TMPDIR": str(tmp)}


class LocalNode:
    """The `Node` of a local lab: same filesystem as the host, its own network."""

    def __init__(
        self,
        spec: ClusterSpec,
        layout: LabLayout,
        name: str,
        host_address: ipaddress.IPv4Address | None,
    ) -> None:
        self.spec = spec
        self.layout = layout
        self.name = name
        # The host's address on the lab network, when it has one: TLS clients reach the
        # engine there; without it, only the unix socket does.
        self.host_address = host_address
        self.netns = layout.node_ns(name)
        self.address = ipaddress.IPv4Address(spec.address_of(name))
        self.paths = layout.node_paths(name)
        self.cgroup_parent: str | None = layout.cgroup_parent(name)

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
        wrapped = self.in_node(argv)
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
        self.spawn(service, argv)

    def service_alive(self, service: str, binary: str | None = None) -> bool:
        return self.service_pid(service, binary) is not None

    def service_log(self, service: str) -> str | None:
        return self.current_log(service)

    def service_log_location(self, service: str) -> str:
        return str(self.layout.log_file(self.name, service))

    def in_node(self, argv: Sequence[str]) -> list[str]:
        """`argv` inside the node: its network namespace, and a UTS namespace of its own
        named after the node."""
        return plumbing.in_namespace(self.netns, self.name, argv)

    def spawn(self, service: str, argv: Sequence[str]) -> int:
        """Start a long-running service inside the node's namespaces, detached.

        nsenter and unshare exec in place, so the pid we get is the service's own.
        """
        node_dir = self.layout.node_dir(self.name)
        node_dir.mkdir(parents=True, exist_ok=True)
        log = self.layout.log_file(self.name, service).open("ab")
        # Logs are appended across restarts; the marker lets readers take only the
        # current run (an old panic must not explain a new death).
        log.write(f"{START_MARKER} {service} at {time.time():.3f}\n".encode())
        log.flush()
        cmd = self.in_node(argv)
        with log:
            proc = subprocess.Popen(
                cmd,
                env=service_env(node_dir),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
            )
        self.layout.pid_file(self.name, service).write_text(f"{proc.pid}\n")
        return proc.pid

    def service_pid(self, service: str, binary: str | None = None) -> int | None:
        """The service's pid if it is alive (and really is `binary`), else None."""
        try:
            pid = int(self.layout.pid_file(self.name, service).read_text().split()[0])
        except (FileNotFoundError, ValueError, IndexError):
            return None
        try:
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return None
        # A zombie left by our own Popen is dead for our purposes.
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return None
        if binary and comm != binary[:15]:
            return None
        return pid

    def stop_service(self, service: str, binary: str, timeout: float = 10) -> None:
        pid = self.service_pid(service, binary)
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
            # A stopped service (SIGSTOP: hung) acts on SIGTERM only once it runs again;
            # without this it sat out the whole timeout before its SIGKILL (systemd and
            # kill(1)'s habit too).
            os.kill(pid, signal.SIGCONT)
        if not wait_until(lambda: self.service_pid(service, binary) is None, timeout):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def current_log(self, service: str) -> str | None:
        """The service's log since its latest start, or None when there is none."""
        try:
            text = self.layout.log_file(self.name, service).read_text(errors="replace")
        except FileNotFoundError:
            return None
        return text.rsplit(START_MARKER, 1)[-1]

    def engine_env(self) -> dict[str, str]:
        """DOCKER_* variables that point the docker CLI at this node's engine."""
        spec = self.spec
        if spec.engine.tls and self.host_address is not None:
            return nodeconf.tls_engine_env(spec, self.name, self.layout.client_cert_dir)
        return {"DOCKER_HOST": f"unix://{self.layout.docker_socket(self.name)}"}

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
        return self.engine_env()

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
