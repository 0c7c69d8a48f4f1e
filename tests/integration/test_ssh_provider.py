"""The ssh provider end to end against real sshd: up, verify, down over SSH (fabric),
and the hosts left as they were. The node contract holds for SSH nodes too."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from lab_cli import evidence, failures, forwarding_per_engine, invoke, verify_json
from shared_labs import SharedLab
from sshd_hosts import HOST_OF

from overlaylab.context import LabContext


@pytest.fixture
def ssh_lab(shared_ssh_lab: SharedLab) -> tuple[Path, LabContext]:
    """Hosts with sshd and Docker and nothing else (no etcd): the lab brings its own.
    Shared with test_node_contract.py (conftest.py); `down` must exit 0 and leave the
    host as it was before the hosts were made."""
    assert "lab 'ss' is up" in shared_ssh_lab.up.stderr
    return shared_ssh_lab.spec, shared_ssh_lab.context


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
