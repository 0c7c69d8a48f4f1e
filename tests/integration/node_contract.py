"""The node contract: the same assertions over every kind of node handle that can run
here (after pytest-testinfra's backends). Steps and checks rely on exactly these.

A test module runs them by importing them next to two fixtures of its own: `node` (an
engine node) and `kv_node` (the node running etcd). test_node_contract.py does it for
local and SSH nodes, test_vagrant_provider.py for Vagrant machines, on the lab it has
up anyway (a lab of its own would cost a minute).
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import PurePosixPath
from typing import TypeVar

import pytest

from overlaylab.errors import CommandError
from overlaylab.providers.base import Node
from overlaylab.waiting import wait_until

T = TypeVar("T")


def test_run_sees_the_node_network_and_reports_failures(node: Node) -> None:
    result = node.run(["ip", "-4", "-o", "addr", "show"])
    assert result.ok and f"inet {node.address}/" in result.stdout
    failed = node.run(["sh", "-c", "echo oops >&2; exit 3"], check=False)
    assert (failed.returncode, failed.stderr.strip()) == (3, "oops")
    with pytest.raises(CommandError) as raised:
        node.run(["false"])
    assert raised.value.where == node.name and raised.value.argv == ["false"]


def test_files_round_trip_with_their_mode(node: Node) -> None:
    path = node.paths.root / "contract" / "secret.pem"
    data = b"private\n\x00\xff" + bytes(range(256)) * 700  # binary, larger than one chunk
    node.put_file(path, data, 0o600)
    assert node.read_file(path) == data
    assert node.run(["stat", "-c", "%a", str(path)]).stdout.strip() == "600"
    assert node.read_file(PurePosixPath(str(path) + ".missing")) is None


def test_a_program_sized_file_round_trips(node: Node) -> None:
    """A program brought along (etcd, 21 MB) takes the large-file path of a handle."""
    path = node.paths.root / "contract" / "bin" / "program"
    data = bytes(range(256)) * (12 * 1024)  # 3 MiB: past every handle's small-file path
    node.put_file(path, data, 0o755)
    assert node.read_file(path) == data
    assert node.run(["stat", "-c", "%a", str(path)]).stdout.strip() == "755"


def test_a_service_starts_logs_and_stops(node: Node) -> None:
    node.start_service("contract", ["sh", "-c", "echo started-on-$(hostname); exec sleep 60"])
    hostname = node.run(["hostname"]).stdout.strip()
    try:
        # Alive as `sleep` once the shell has exec'd it.
        assert wait_for(lambda: node.service_alive("contract", "sleep"))
        log = wait_for(lambda: node.service_log("contract") or "")
        assert f"started-on-{hostname}" in log  # on that very host, as its commands run
    finally:
        node.stop_service("contract", "sleep")
    assert not node.service_alive("contract")
    assert node.service_log_location("contract")


def test_the_engine_answers_through_the_handle(node: Node) -> None:
    assert node.engine_ping()
    with node.engine() as client:
        assert client.version()["Version"].startswith("20.10")
    env = node.docker_env()
    shown = subprocess.run(
        ["docker", "info", "--format", "{{.Name}}"],
        env={"PATH": "/usr/local/bin:/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert shown.stdout.strip() == node.run(["hostname"]).stdout.strip(), shown.stderr


def test_the_lab_network_seen_from_the_node(node: Node, kv_node: Node) -> None:
    ok, why = node.tcp_connect(str(kv_node.address), 2379)
    assert ok, why
    closed, why = node.tcp_connect(str(kv_node.address), 2)
    assert not closed and why
    status, body = node.http_get(str(kv_node.address), 2379, "/version")
    assert status == 200 and "etcdserver" in body
    assert str(kv_node.address) in node.tcp_probe_command(str(kv_node.address), 2379)
    answered, what = node.tcp_answers(str(kv_node.address), 2379)  # etcd answers any GET
    assert answered and what == "answers", what
    refused, why = node.tcp_answers(str(kv_node.address), 2)
    assert not refused and why


def wait_for(read: Callable[[], T], timeout: float = 5.0) -> T:
    return wait_until(read, timeout, interval=0.05)
