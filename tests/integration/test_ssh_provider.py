"""The ssh provider end to end against real sshd: up, verify, down over SSH (fabric),
and the hosts left as they were. The node contract holds for SSH nodes too."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from hostsnap import HostSnapshot, wait_until_clean
from lab_cli import ROOT, failures, invoke, verify_json
from sshd_hosts import Hosts, sshd_hosts

from overlaylab import lab
from overlaylab.context import LabContext

HOST_OF = {"kv": "h0", "n1": "h1", "n2": "h2"}


def ssh_spec(folder: Path, hosts: Hosts) -> Path:
    spec = {
        "apiVersion": "overlaylab/v1",
        "kind": "Cluster",
        "name": "ss",
        "provider": {
            "type": "ssh",
            "key_file": hosts.key.name,  # relative: next to the spec, as compose resolves
            "hosts": {
                node: {"host": hosts.addresses[host], "user": "root"}
                for node, host in HOST_OF.items()
            },
        },
        "lab": {"subnet": "192.168.91.0/24"},
        "kv": {"backend": "etcd", "node": "kv"},
        "nodes": [
            {"name": "kv", "address": hosts.addresses["h0"], "roles": ["kv"]},
            {"name": "n1", "address": hosts.addresses["h1"]},
            {"name": "n2", "address": hosts.addresses["h2"]},
        ],
        "networks": [{"name": "dn", "subnet": "10.0.39.0/24"}],  # the demo stack's network
        "stacks": [
            {
                "name": "demo",
                "file": str(ROOT / "stacks/demo/docker-compose.yml"),
                "services": {"web": "n1", "mongo": "n2"},
            }
        ],
    }
    path = folder / "ssh-lab.yml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def ssh_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, LabContext]]:
    before = HostSnapshot.take()
    folder = tmp_path_factory.mktemp("ssh")
    with sshd_hosts(folder) as hosts:
        spec = ssh_spec(folder, hosts)
        try:
            up = invoke("up", "-i", str(spec))
            assert "lab 'ss' is up" in up.stderr
            yield spec, lab.open_lab(spec)
        finally:
            down = invoke("down", "-i", str(spec), check=False)
            assert down.returncode == 0, down.stderr
    assert wait_until_clean(before) == []


def test_up_over_ssh_verifies_green(ssh_lab: tuple[Path, LabContext]) -> None:
    spec, _ = ssh_lab
    report = verify_json(str(spec))
    assert report["ok"], failures(report)
    ran = {c["id"] for c in report["checks"] if c["status"] == "pass"}
    assert {"engines.advertise", "kv.registered", "connectivity.tcp", "names.resolve"} <= ran


def test_a_second_up_changes_nothing(ssh_lab: tuple[Path, LabContext]) -> None:
    spec, _ = ssh_lab
    again = invoke("up", "-i", str(spec))
    assert "is up to date: nothing changed" in again.stderr


def test_ssh_nodes_keep_the_node_contract(ssh_lab: tuple[Path, LabContext]) -> None:
    _, ctx = ssh_lab
    node, kv = ctx.node("n1"), ctx.node("kv")
    assert node.run(["hostname"]).stdout.strip() == "h1"  # a session on that very host
    path = node.paths.root / "contract" / "key.pem"
    node.put_file(path, b"\x00binary\xffkey\n", 0o600)
    assert node.read_file(path) == b"\x00binary\xffkey\n"
    assert node.run(["stat", "-c", "%a", str(path)]).stdout.strip() == "600"
    assert node.read_file(path.with_suffix(".missing")) is None
    assert node.engine_ping()
    with node.engine() as client:
        assert client.info()["ClusterAdvertise"] == f"{node.address}:2376"
    ok, why = node.tcp_connect(str(kv.address), 2379)
    assert ok, why
    closed, why = node.tcp_connect(str(kv.address), 2)
    assert not closed and why
    status, body = node.http_get(str(kv.address), 2379, "/version")
    assert status == 200 and "etcdserver" in body
    assert node.service_alive("dockerd", "dockerd")
    assert "API listen on" in (node.service_log("dockerd") or "")
