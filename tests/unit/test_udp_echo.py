"""The UDP test's client script against the probes' echo server, both real socat on
this host's loopback (the probe image runs the host's socat binary)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest

from overlaylab.checks.connectivity import udp_script, udp_token
from overlaylab.checks.probes import PROBE_COMMAND, PROBE_UDP_DATAGRAM, SOCAT, Probe

pytestmark = pytest.mark.skipif(shutil.which("socat") is None, reason="needs socat")
HOST_SOCAT = shutil.which("socat") or "socat"


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def echo_server_argv(port: int) -> list[str]:
    """The probe's own socat command line, on `port`."""
    server = PROBE_COMMAND[2].split("exec ", 1)[1].replace(SOCAT, HOST_SOCAT)
    return server.replace(":7071,", f":{port},").split()


@pytest.fixture
def port() -> Iterator[int]:
    yield free_udp_port()


def client_argv(token: str, port: int) -> list[str]:
    script = udp_script(token).replace(SOCAT, HOST_SOCAT)
    return ["sh", "-c", script, "udp", "127.0.0.1", str(port), "0"]


def client(token: str, port: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(client_argv(token, port), capture_output=True, text=True, timeout=10)


def test_the_token_fills_exactly_one_datagram_the_server_reads() -> None:
    for name in ("probe-dn-n1", "probe-" + "x" * 80):
        assert len(udp_token(Probe("n1", "dn", name, "10.0.9.2"))) + 1 == PROBE_UDP_DATAGRAM


def test_many_peers_at_once_all_get_their_own_echo(port: int) -> None:
    server = subprocess.Popen(echo_server_argv(port))
    try:
        time.sleep(0.3)
        tokens = [f"overlaylab-udp-peer{i}".ljust(PROBE_UDP_DATAGRAM - 1, "-") for i in range(30)]
        clients = [
            subprocess.Popen(client_argv(t, port), stdout=subprocess.PIPE, text=True)
            for t in tokens
        ]
        answers = [c.communicate(timeout=10)[0] for c in clients]
    finally:
        server.kill()
        server.wait()
    # Each peer hears its own token back, never another peer's.
    assert [t in a for t, a in zip(tokens, answers, strict=True)] == [True] * len(tokens)
    assert all(a.count("overlaylab-udp-") == 1 for a in answers)


def test_a_datagram_refused_before_the_server_listens_is_sent_again(port: int) -> None:
    token = "overlaylab-udp-late".ljust(PROBE_UDP_DATAGRAM - 1, "-")
    late = subprocess.Popen(["sh", "-c", f"sleep 0.6; exec {' '.join(echo_server_argv(port))}"])
    try:
        answer = client(token, port)
    finally:
        late.kill()
        late.wait()
    assert token in answer.stdout, answer.stderr


def test_no_server_means_no_echo_within_the_patience(port: int) -> None:
    token = "overlaylab-udp-nobody".ljust(PROBE_UDP_DATAGRAM - 1, "-")
    answer = client(token, port)
    assert token not in answer.stdout
