"""The node contract: the same assertions over every kind of node handle that can run
here (after pytest-testinfra's backends). Steps and checks rely on exactly these."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import PurePosixPath
from typing import TypeVar

import pytest
from hostsnap import HostSnapshot, wait_until_clean
from lab_cli import ROOT, invoke
from sshd_hosts import ssh_spec, sshd_hosts

from overlaylab import lab
from overlaylab.context import LabContext
from overlaylab.errors import CommandError
from overlaylab.providers.base import Node
from overlaylab.waiting import wait_until

T = TypeVar("T")

SMALL = ROOT / "tests/testdata/labs/small.yml"


@pytest.fixture(scope="module", autouse=True)
def host_unchanged() -> Iterator[None]:
    """Taken before either lab and compared after both are down: the labs of this module
    overlap, so neither may judge the host while the other runs."""
    before = HostSnapshot.take()
    yield
    assert wait_until_clean(before) == []


@pytest.fixture(scope="module")
def local_lab(host_unchanged: None) -> Iterator[LabContext]:
    invoke("up", "-i", str(SMALL))
    try:
        yield lab.open_lab(SMALL)
    finally:
        invoke("down", "-i", str(SMALL), check=False)


@pytest.fixture(scope="module")
def ssh_lab(host_unchanged: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabContext]:
    """The same kind of lab on hosts reached over SSH (real sshd on bare hosts)."""
    folder = tmp_path_factory.mktemp("ssh")
    with sshd_hosts(folder) as hosts:
        spec = ssh_spec(folder, hosts)
        invoke("up", "-i", str(spec))
        try:
            yield lab.open_lab(spec)
        finally:
            invoke("down", "-i", str(spec), check=False)


# One entry per kind of node this machine can run: (lab fixture, engine node, KV node).
KINDS = {"local": ("local_lab", "a", "kv"), "ssh": ("ssh_lab", "n1", "kv")}


@pytest.fixture(params=sorted(KINDS))
def kind(request: pytest.FixtureRequest) -> tuple[LabContext, str, str]:
    fixture, engine, kv = KINDS[request.param]
    return request.getfixturevalue(fixture), engine, kv


@pytest.fixture
def node(kind: tuple[LabContext, str, str]) -> Node:
    ctx, engine, _ = kind
    return ctx.node(engine)


@pytest.fixture
def kv_node(kind: tuple[LabContext, str, str]) -> Node:
    ctx, _, kv = kind
    return ctx.node(kv)


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


def wait_for(read: Callable[[], T], timeout: float = 5.0) -> T:
    return wait_until(read, timeout, interval=0.05)
