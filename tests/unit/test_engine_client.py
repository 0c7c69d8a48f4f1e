"""A node's docker client is told the engine's API version from /_ping.

docker-py's own negotiation asks GET /version, for which dockerd 20.10 runs `runc
--version` and `docker-init --version`; the lab makes a client per call to an engine.
Here a fake engine on a unix socket records what it is asked.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from lab_specs import LAB_YML

from overlaylab.layout import LabLayout
from overlaylab.providers.base import ping_api_version
from overlaylab.providers.local import LocalProvider
from overlaylab.spec import load_spec

PING = b"HTTP/1.0 200 OK\r\nApi-Version: 1.41\r\nContent-Length: 2\r\n\r\nOK"
OLD_PING = b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nOK"  # an engine that does not say


def test_the_version_is_read_from_the_ping_header() -> None:
    assert ping_api_version(PING) == "1.41"
    assert ping_api_version(b"HTTP/1.1 200 OK\r\nAPI-VERSION:  1.51 \r\n\r\nOK") == "1.51"
    assert ping_api_version(OLD_PING) is None
    assert (
        ping_api_version(b"HTTP/1.0 500 Internal Server Error\r\nApi-Version: 1.41\r\n\r\n") is None
    )
    assert ping_api_version(b"") is None


class FakeEngine:
    """Answers /_ping as told, /version and /containers/json as dockerd would."""

    def __init__(self, path: Path, ping: bytes) -> None:
        self.asked: list[str] = []
        self.ping = ping
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(path))
        self.server.listen(8)
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            with conn:
                self.answer(conn)

    def answer(self, conn: socket.socket) -> None:
        request = b""
        while b"\r\n\r\n" not in request:
            chunk = conn.recv(4096)
            if not chunk:
                return
            request += chunk
        path = request.split(b" ")[1].decode()
        self.asked.append(path.split("?")[0])
        if path == "/_ping":
            conn.sendall(self.ping)
            return
        body = json.dumps({"ApiVersion": "1.41"} if path.endswith("/version") else []).encode()
        conn.sendall(
            b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )


@pytest.fixture
def node_and_socket(tmp_path: Path) -> Iterator[tuple[object, Path]]:
    spec = load_spec(LAB_YML)
    layout = LabLayout.for_cluster(spec.name, tmp_path)
    node = LocalProvider(spec, layout).node("node1")
    socket_path = Path(str(node.paths.docker_socket))
    socket_path.parent.mkdir(parents=True)
    yield node, socket_path


def test_a_client_asks_no_version_when_the_ping_says_it(
    node_and_socket: tuple[object, Path],
) -> None:
    node, path = node_and_socket
    engine = FakeEngine(path, PING)
    with node.engine() as client:  # type: ignore[attr-defined]
        assert client.api.api_version == "1.41"
        assert client.containers.list() == []
    assert engine.asked == ["/_ping", "/v1.41/containers/json"]


def test_an_engine_whose_ping_says_nothing_is_asked_its_version(
    node_and_socket: tuple[object, Path],
) -> None:
    node, path = node_and_socket
    engine = FakeEngine(path, OLD_PING)
    with node.engine() as client:  # type: ignore[attr-defined]
        assert client.api.api_version == "1.41"
    assert engine.asked == ["/_ping", "/version"]
