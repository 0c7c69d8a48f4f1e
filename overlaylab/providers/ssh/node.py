"""A node reached over SSH (fabric): an existing host, or a Vagrant machine.

Everything goes through one SSH connection per node and a handful of POSIX tools
every Debian host has (sh, bash, base64, setsid, timeout): no agent is installed
on the hosts and nothing but the lab's own folder is written there. The engine is
reached over its TCP API with the lab's mutual TLS, from this machine.

One module (~380 lines) because it is one `Node` over one connection: the contract's
methods (commands, files, services, engine, network) share its session and quoting.
"""

from __future__ import annotations

import base64
import contextlib
import io
import ipaddress
import json
import shlex
import socket
import ssl
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path, PurePosixPath

import docker
import docker.errors
import docker.tls
from fabric import Connection
from invoke.exceptions import CommandTimedOut
from paramiko.ssh_exception import SSHException

from overlaylab.errors import CommandError
from overlaylab.providers.base import ENGINE_SERVICE, NodePaths, ping_api_version
from overlaylab.providers.command import TIMED_OUT, CommandResult
from overlaylab.providers.ssh.host_engine import HostDocker
from overlaylab.waiting import wait_until

START_MARKER = "--- overlaylab: starting"

# Start a service detached, appending to its log; its pid goes to a file. The spec's
# values travel as arguments ("$@"), never inside the script text.
_START = (
    'set -e; root=$1 service=$2; shift 2; mkdir -p "$root"; '
    'printf "%s %s at %s\\n" "' + START_MARKER + '" "$service" "$(date +%s)" '
    '>> "$root/$service.log"; '
    # Temporary files (containerd's stack dumps, when its engine kills it) in the lab's
    # folder, which `down` removes, not the host's /tmp.
    'mkdir -p "$root/tmp"; TMPDIR="$root/tmp" '
    'setsid "$@" >> "$root/$service.log" 2>&1 < /dev/null & echo $! > "$root/$service.pid"'
)
# Exit 0 when the pid file names a live process that is `binary` (any, when empty).
_ALIVE = (
    'pid=$(cat "$1" 2>/dev/null) || exit 1; [ -n "$pid" ] && [ -d /proc/$pid ] || exit 1; '
    'state=$(cut -d")" -f2 /proc/$pid/stat | cut -d" " -f2); [ "$state" != Z ] || exit 1; '
    '[ -z "$2" ] || [ "$(cat /proc/$pid/comm)" = "$2" ]'
)
_STOP = (
    'pid=$(cat "$1" 2>/dev/null) || exit 0; kill -TERM "$pid" 2>/dev/null || exit 0; '
    # A stopped (hung) service acts on SIGTERM only once it runs again.
    'kill -CONT "$pid" 2>/dev/null; '
    'i=0; while kill -0 "$pid" 2>/dev/null && [ $i -lt $2 ]; do sleep 0.1; i=$((i+1)); done; '
    'kill -KILL "$pid" 2>/dev/null; true'
)
# Data travels base64-encoded in arguments, in chunks well under Linux's 128 KiB limit
# for one argument: a remote stdin is not closed promptly enough to wait for its end.
_PUT_CHUNK = (
    'set -e; mkdir -p "$(dirname "$1")"; umask 077; printf %s "$3" | base64 -d >> "$1.part"'
)
_PUT_START = 'rm -f "$1.part"'
_PUT_DONE = 'chmod "$2" "$1.part" && mv "$1.part" "$1"'
CHUNK = 64 * 1024
# Past this size a file goes as one command's standard input (SSHNode._put_streamed).
STREAM_ABOVE = 1024 * 1024
STREAM_TIMEOUT = 120.0
_PUT_STREAM = (
    'set -e; mkdir -p "$(dirname "$1")"; umask 077; cat > "$1.part"; '
    'chmod "$2" "$1.part"; mv "$1.part" "$1"'
)
_READ = '[ -e "$1" ] || exit 3; base64 < "$1"'
_TCP = 'exec 3<>"/dev/tcp/$1/$2"'
_HTTP = (
    'exec 3<>"/dev/tcp/$1/$2"; '
    'printf "GET %s HTTP/1.0\\r\\nHost: %s:%s\\r\\n\\r\\n" "$3" "$1" "$2" >&3; '
    "cat <&3"
)
# Exit 0 with a byte read (an answer), 1 at end of file (a close); `read -t` exits
# above 128 when the time runs out with the connection open and silent.
_ANSWERS = (
    'exec 3<>"/dev/tcp/$1/$2" || exit 2; printf "GET / HTTP/1.0\\r\\n\\r\\n" >&3; '
    'IFS= read -r -N 1 -t "$3" _ <&3'
)
MISSING = 3

# Commands at once on one connection. Each is an SSH session (a channel), and sshd
# refuses more than MaxSessions (10 by default) per connection: verify's checks run side
# by side, and each may run commands on every node.
SESSIONS = 8


class SSHNode:
    """The `Node` of a host reached over SSH."""

    def __init__(
        self,
        name: str,
        address: ipaddress.IPv4Address,
        connection: Connection,
        paths: NodePaths,
        *,
        api_port: int,
        client_cert_dir: Path,
        cgroup_parent: str | None = None,
        host_docker: HostDocker | None = None,
    ) -> None:
        self.name = name
        self.address = address
        self.connection = connection
        self.paths = paths
        # Containers grouped under the lab's name, so that `down` can remove the groups.
        self.cgroup_parent = cgroup_parent
        self.api_port = api_port
        self.client_cert_dir = client_cert_dir
        self.sudo = connection.user != "root"
        # Set when the lab's engine is the host's own Docker service (`engine: host`):
        # the engine service is then that service, every other one the lab's own.
        self.host_docker = host_docker
        self._opening = threading.Lock()
        self._sessions = threading.BoundedSemaphore(SESSIONS)

    def __repr__(self) -> str:
        return f"SSHNode({self.name!r}, {self.connection.user}@{self.connection.host})"

    # --- commands and files ------------------------------------------------------------
    def run(
        self,
        argv: Sequence[str],
        *,
        check: bool = True,
        timeout: float | None = 60,
        input: str | None = None,
    ) -> CommandResult:
        command = shlex.join(argv)
        if self.sudo:
            command = "sudo -n -- " + command
        try:
            self._connect()
            with self._sessions:
                done = self.connection.run(
                    command,
                    warn=True,
                    hide=True,
                    timeout=timeout,
                    in_stream=io.StringIO(input) if input is not None else False,
                )
            result = CommandResult(tuple(argv), done.exited, done.stdout, done.stderr, self.name)
        except CommandTimedOut as exc:
            raise CommandError(
                argv, TIMED_OUT, "", f"timed out after {timeout}s", self.name
            ) from exc
        # paramiko's and the socket's failures (SSHException: something not sshd answered)
        except (OSError, EOFError, SSHException) as exc:
            raise CommandError(argv, 255, "", f"ssh to {self.name}: {exc}", self.name) from exc
        return result.check() if check else result

    def _connect(self) -> None:
        """Open the connection once, whichever thread comes first. Checks run commands on
        a node from many threads; each opening the one connection itself raced, and
        paramiko then failed some of them with "No existing session"."""
        with self._opening:
            if not self.connection.is_connected:
                self.connection.open()

    def _sh(self, script: str, *args: str, input: str | None = None) -> CommandResult:
        return self.run(["sh", "-c", script, "sh", *args], check=False, input=input)

    def put_file(self, path: PurePosixPath, data: bytes, mode: int = 0o644) -> None:
        if len(data) > STREAM_ABOVE:
            self._put_streamed(path, data, mode)
            return
        encoded = base64.b64encode(data).decode()
        self._sh(_PUT_START, str(path)).check()
        for start in range(0, max(1, len(encoded)), CHUNK):
            self._sh(_PUT_CHUNK, str(path), "", encoded[start : start + CHUNK]).check()
        self._sh(_PUT_DONE, str(path), f"{mode:o}").check()

    def _put_streamed(self, path: PurePosixPath, data: bytes, mode: int) -> None:
        """A large file (a program brought along) as the standard input of one command:
        in chunks of shell commands 20 MB took hundreds of round trips, and SFTP needs a
        subsystem not every sshd offers (and writes as the login user, not root)."""
        argv = ["sh", "-c", _PUT_STREAM, "sh", str(path), f"{mode:o}"]
        command = shlex.join(argv)
        if self.sudo:
            command = "sudo -n -- " + command
        try:
            self._connect()
            client = self.connection.client
            stdin, stdout, stderr = client.exec_command(command, timeout=STREAM_TIMEOUT)
            try:
                stdin.write(data)
                stdin.channel.shutdown_write()
            except OSError:
                pass  # the command ended early (sudo, mkdir): its status and stderr say why
            if not stdout.channel.status_event.wait(STREAM_TIMEOUT):
                raise CommandError(
                    argv, TIMED_OUT, "", f"timed out after {STREAM_TIMEOUT:g}s", self.name
                )
            code = stdout.channel.recv_exit_status()
            out, err = (
                stdout.read().decode(errors="replace"),
                stderr.read().decode(errors="replace"),
            )
        except (OSError, EOFError, SSHException) as exc:
            raise CommandError(argv, 255, "", f"ssh to {self.name}: {exc}", self.name) from exc
        CommandResult(tuple(argv), code, out, err, self.name).check()

    def read_file(self, path: PurePosixPath) -> bytes | None:
        result = self._sh(_READ, str(path))
        if result.returncode == MISSING:
            return None
        return base64.b64decode(result.check().stdout)

    # --- services ------------------------------------------------------------------------
    def _service_file(self, service: str, suffix: str) -> str:
        return str(self.paths.root / f"{service}.{suffix}")

    def _host_service(self, service: str) -> HostDocker | None:
        return self.host_docker if service == ENGINE_SERVICE else None

    def start_service(self, service: str, argv: Sequence[str]) -> None:
        if host := self._host_service(service):
            host.start(self)  # dockerd reads /etc/docker/daemon.json: `argv` has nothing more
            return
        self._sh(_START, str(self.paths.root), service, *argv).check()

    def stop_service(self, service: str, binary: str, timeout: float = 10) -> None:
        if host := self._host_service(service):
            host.stop(self)
            return
        if self.service_alive(service, binary):
            ticks = str(int(timeout * 10))
            self._sh(_STOP, self._service_file(service, "pid"), ticks).check()

    def service_alive(self, service: str, binary: str | None = None) -> bool:
        if host := self._host_service(service):
            return host.alive(self)
        pid_file = self._service_file(service, "pid")
        return self._sh(_ALIVE, pid_file, (binary or "")[:15]).returncode == 0

    def service_log(self, service: str) -> str | None:
        if host := self._host_service(service):
            return host.log(self)
        data = self.read_file(PurePosixPath(self._service_file(service, "log")))
        if data is None:
            return None
        return data.decode(errors="replace").rsplit(START_MARKER, 1)[-1]

    def service_log_location(self, service: str) -> str:
        if host := self._host_service(service):
            return f"{self.name}:{host.log_location(self)}"
        return f"{self.name}:{self._service_file(service, 'log')}"

    # --- the engine ------------------------------------------------------------------------
    def _tls(self) -> docker.tls.TLSConfig:
        certs = self.client_cert_dir
        return docker.tls.TLSConfig(
            client_cert=(str(certs / "cert.pem"), str(certs / "key.pem")),
            ca_cert=str(certs / "ca.pem"),
            verify=True,
        )

    @contextlib.contextmanager
    def engine(self, timeout: int = 30) -> Iterator[docker.DockerClient]:
        # The API version is asked here, not by docker-py ("auto"): its own request would
        # let an environment's REQUESTS_CA_BUNDLE replace the lab's CA.
        client = docker.DockerClient(
            base_url=f"tcp://{self.address}:{self.api_port}",
            tls=self._tls(),
            timeout=timeout,
            version=self._api_version(timeout),
        )
        client.api.trust_env = False  # nor may a proxy or CA bundle from the environment
        try:
            yield client
        finally:
            client.close()

    def _get(self, path: str, timeout: float) -> bytes:
        """A GET on the engine API over the lab's mutual TLS: the raw response."""
        certs = self.client_cert_dir
        context = ssl.create_default_context(cafile=str(certs / "ca.pem"))
        context.load_cert_chain(str(certs / "cert.pem"), str(certs / "key.pem"))
        address = (str(self.address), self.api_port)
        with (
            socket.create_connection(address, timeout) as raw,
            context.wrap_socket(raw, server_hostname=str(self.address)) as sock,
        ):
            sock.sendall(f"GET {path} HTTP/1.0\r\nHost: docker\r\n\r\n".encode())
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks)

    def _api_version(self, timeout: float) -> str:
        # /_ping states it (see ping_api_version); /version makes dockerd run programs.
        try:
            stated = ping_api_version(self._get("/_ping", timeout))
            if stated:
                return stated
            body = self._get("/version", timeout).partition(b"\r\n\r\n")[2]
            return str(json.loads(body)["ApiVersion"])
        except (OSError, ssl.SSLError, ValueError, KeyError) as exc:
            raise docker.errors.DockerException(
                f"engine on {self.name} ({self.address}:{self.api_port}) does not answer: {exc}"
            ) from exc

    def engine_ping(self, timeout: float = 1.0) -> bool:
        """GET /_ping over the lab's mutual TLS, without a client library."""
        try:
            return self._get("/_ping", timeout).startswith(b"HTTP/1.0 200")
        except (OSError, ssl.SSLError):
            return False

    def docker_env(self) -> dict[str, str]:
        return {
            "DOCKER_HOST": f"tcp://{self.address}:{self.api_port}",
            "DOCKER_TLS_VERIFY": "1",
            "DOCKER_CERT_PATH": str(self.client_cert_dir),
            "DOCKER_MACHINE_NAME": self.name,
        }

    # --- the lab network, seen from the node -------------------------------------------------
    def tcp_connect(self, host: str, port: int, timeout: float = 2.0) -> tuple[bool, str]:
        seconds = str(max(1, round(timeout)))
        try:
            result = self.run(
                ["timeout", seconds, "bash", "-c", _TCP, "tcp", host, str(port)], check=False
            )
        except CommandError as exc:
            return False, str(exc)
        if result.returncode == 0:
            return True, ""
        why = result.stderr.strip().splitlines()[-1:] or [f"timed out after {seconds}s"]
        return False, why[0] if result.returncode != 124 else f"timed out after {seconds}s"

    def http_get(self, host: str, port: int, path: str, timeout: float = 2.0) -> tuple[int, str]:
        seconds = str(max(1, round(timeout)))
        result = self.run(
            ["timeout", seconds, "bash", "-c", _HTTP, "http", host, str(port), path], check=False
        )
        if result.returncode not in (0, 124) or not result.stdout.startswith("HTTP/"):
            raise ConnectionError(
                f"GET http://{host}:{port}{path} from {self.name} failed: "
                f"{result.stderr.strip() or f'exit {result.returncode}'}"
            )
        head, _, body = result.stdout.partition("\r\n\r\n")
        return int(head.split(" ", 2)[1]), body

    def tcp_answers(self, host: str, port: int, timeout: float = 2.0) -> tuple[bool, str]:
        seconds = max(1, round(timeout))
        try:
            argv = ["bash", "-c", _ANSWERS, "tcp", host, str(port), str(seconds)]
            result = self.run(["timeout", str(seconds + 2), *argv], check=False)
        except CommandError as exc:
            return False, str(exc)
        if result.returncode in (0, 1):
            closed = "accepts connections, then closes them"
            return True, "answers" if result.returncode == 0 else closed
        if result.returncode == 124:
            return False, f"timed out after {seconds + 2}s"
        if result.returncode > 128:
            return False, f"accepts connections, then answers nothing within {seconds}s"
        why = result.stderr.strip().splitlines()[-1:] or [f"exit {result.returncode}"]
        return False, why[0]

    def tcp_probe_command(self, host: str, port: int) -> str:
        target = f"{self.connection.user}@{self.connection.host}"
        return f"ssh {target} timeout 2 bash -c '</dev/tcp/{host}/{port}'"


def wait_for_ssh(connection: Connection, timeout: float) -> str | None:
    """None once the host takes SSH commands, else why not (after `timeout` seconds)."""
    why: list[str] = []

    def answers() -> bool:
        try:
            connection.run("true", hide=True, timeout=10, in_stream=False)
            return True
        except Exception as exc:  # paramiko raises many kinds; all mean "not yet"
            why.append(f"{type(exc).__name__}: {exc}")
            with contextlib.suppress(Exception):
                connection.close()
            return False

    return None if wait_until(answers, timeout, interval=0.3) else why[-1]
