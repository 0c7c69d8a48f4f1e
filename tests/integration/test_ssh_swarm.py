"""Swarm mode on hosts reached over SSH: the same steps and checks as on the local
provider, through the ssh provider's node handles (real sshd on bare hosts)."""

from __future__ import annotations

from pathlib import Path

import yaml
from hostsnap import HostSnapshot, wait_until_clean
from lab_cli import ROOT, failures, invoke, verify_json
from sshd_hosts import ssh_spec, sshd_hosts

ROLES = {"kv": ("m1", "manager"), "n1": ("w1", "worker"), "n2": ("w2", "worker")}


def swarm_spec(path: Path) -> Path:
    """The ssh test lab made a swarm: no KV store, one manager, two workers."""
    spec = yaml.safe_load(path.read_text())
    hosts = spec["provider"]["hosts"]
    spec["provider"]["hosts"] = {ROLES[n][0]: hosts[n] for n in hosts}
    spec["kv"] = None
    spec["engine"] = {"cluster-store": None, "cluster-advertise": None}
    spec["orchestration"] = {"mode": "swarm-mode"}
    spec["nodes"] = [
        {"name": ROLES[n["name"]][0], "address": n["address"], "roles": [ROLES[n["name"]][1]]}
        for n in spec["nodes"]
    ]
    spec["stacks"] = [
        {
            "name": "demo",
            "file": str(ROOT / "stacks/swarm-demo/docker-compose.yml"),
            "services": {"web": "w1", "api": "w2"},
        }
    ]
    swarm = path.with_name("ssh-swarm.yml")
    swarm.write_text(yaml.safe_dump(spec, sort_keys=False))
    return swarm


def test_swarm_mode_over_ssh_verifies_green(tmp_path: Path) -> None:
    before = HostSnapshot.take()
    with sshd_hosts(tmp_path) as hosts:
        spec = swarm_spec(ssh_spec(tmp_path, hosts))
        try:
            up = invoke("up", "-i", str(spec))
            assert "initialised the swarm" in up.stderr and "joined as worker" in up.stderr
            report = verify_json(str(spec))
            assert report["ok"], failures(report)
            passed = {c["id"] for c in report["checks"] if c["status"] == "pass"}
            assert {"swarm.nodes", "swarm.replicas", "swarm.services"} <= passed
        finally:
            down = invoke("down", "-i", str(spec), check=False)
            assert down.returncode == 0, down.stderr
    assert wait_until_clean(before) == []
