"""The ssh provider end to end against real sshd: up, verify, down over SSH (fabric),
and the hosts left as they were. The node contract holds for SSH nodes too."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from hostsnap import HostSnapshot, wait_until_clean
from lab_cli import evidence, failures, forwarding_per_engine, invoke, verify_json
from sshd_hosts import HOST_OF, ssh_spec, sshd_hosts

from overlaylab.context import LabContext, open_lab


@pytest.fixture(scope="module")
def ssh_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, LabContext]]:
    before = HostSnapshot.take()
    folder = tmp_path_factory.mktemp("ssh")
    # Hosts with sshd and Docker and nothing else (no etcd): the lab brings its own.
    with sshd_hosts(folder, hidden=["etcd"]) as hosts:
        spec = ssh_spec(folder, hosts)
        try:
            up = invoke("up", "-i", str(spec))
            assert "lab 'ss' is up" in up.stderr
            yield spec, open_lab(spec)
        finally:
            down = invoke("down", "-i", str(spec), check=False)
            assert down.returncode == 0, down.stderr
    assert wait_until_clean(before) == []


def test_every_engine_believes_forwarding_is_on_right_after_up(
    ssh_lab: tuple[Path, LabContext],
) -> None:
    _, ctx = ssh_lab
    seen = forwarding_per_engine(ctx)
    assert seen and set(seen.values()) == {("1", True)}


def test_a_kv_host_without_etcd_runs_the_copy_the_lab_brought(
    ssh_lab: tuple[Path, LabContext],
) -> None:
    _, ctx = ssh_lab
    kv_host = ctx.node("kv")
    assert kv_host.run(["sh", "-c", "command -v etcd"], check=False).returncode != 0
    brought = kv_host.paths.root / "bin" / "etcd"
    processes = kv_host.run(["sh", "-c", "ps -eo args"]).stdout
    assert any(line.startswith(f"{brought} ") for line in processes.splitlines()), processes


def test_up_over_ssh_verifies_green(ssh_lab: tuple[Path, LabContext]) -> None:
    spec, _ = ssh_lab
    report = verify_json(str(spec))
    assert report["ok"], failures(report)
    ran = {c["id"] for c in report["checks"] if c["status"] == "pass"}
    assert {"engines.advertise", "kv.registered", "connectivity.tcp", "names.resolve"} <= ran


def test_logs_collects_every_hosts_evidence_over_ssh(
    ssh_lab: tuple[Path, LabContext], tmp_path: Path
) -> None:
    spec, _ = ssh_lab
    target = tmp_path / "ssh-evidence.tar.gz"
    invoke("logs", "-i", str(spec), "--no-verify", "-o", str(target))
    manifest, files = evidence(target)
    assert manifest["not_collected"] == []
    for node in ("n1", "n2"):
        assert b"API listen on" in files[f"{node}/engine/dockerd.log"]
        assert json.loads(files[f"{node}/engine/info.json"])["Name"] == HOST_OF[node]
        assert b"vxlan" in files[f"{node}/net/overlay-sandboxes.txt"]
    assert files["kv/etcd.log"] and b"/docker/nodes/" in files["lab/kv-keys-etcd.txt"]
    assert b"PRIVATE KEY" not in b"".join(files.values())


def test_a_second_up_changes_nothing(ssh_lab: tuple[Path, LabContext]) -> None:
    spec, _ = ssh_lab
    again = invoke("up", "-i", str(spec))
    assert "is up to date: nothing changed" in again.stderr
