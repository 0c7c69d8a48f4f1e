"""The legacy overlay over ZooKeeper instead of etcd (libkv's zk backend)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from hostsnap import HostSnapshot, wait_until_clean
from lab_cli import invoke

from overlaylab.layout import LabLayout
from overlaylab.steps.kv import ZOOKEEPER_SERVER

SPEC = "tests/testdata/labs/zk.yml"
LAYOUT = LabLayout.for_cluster("zk")
CROSS_HOST_CHECKS = (
    "connectivity.icmp",
    "connectivity.dns",
    "connectivity.tcp",
    "connectivity.udp",
)

pytestmark = pytest.mark.skipif(not ZOOKEEPER_SERVER.exists(), reason="zookeeper not installed")


def _docker(node: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DOCKER_HOST": f"unix://{LAYOUT.docker_socket(node)}"}
    return subprocess.run(["docker", *args], capture_output=True, text=True, env=env, timeout=60)


def test_zookeeper_backed_lab_comes_up_and_verify_tells_the_truth() -> None:
    """dockerd 20.10 (Debian) panics in libnetwork (endpointCnt.Key on a nil count) as
    soon as a container joins a ZooKeeper-backed overlay. Whichever way the engine
    behaves, verify must say what happened: traffic flows, or it names the crash."""
    before = HostSnapshot.take()
    try:
        invoke("up", "-i", SPEC)
        info = _docker("alpha", "info", "--format", "{{.Name}}")
        assert info.stdout.strip() == "alpha"
        config = Path(LAYOUT.daemon_config("alpha")).read_text()
        assert '"cluster-store": "zk://192.168.98.10:2181"' in config
        # The store works: the overlay made on alpha is the same network on beta.
        ids = {
            _docker(n, "network", "inspect", "-f", "{{.Id}}", "zn").stdout.strip()
            for n in ("alpha", "beta")
        }
        assert len(ids) == 1 and "" not in ids
        # Both engines registered under the discovery znode, read with zkCli on the KV node.
        registered = invoke("verify", "-i", SPEC, "--only", "kv.registered", "--format", "json")
        [check] = json.loads(registered.stdout)["checks"]
        assert check["status"] == "pass"
        assert check["results"][0]["details"]["registered"] == [
            "192.168.98.11:2376",
            "192.168.98.12:2376",
        ]
        result = invoke("verify", "-i", SPEC, "--format", "json", "--timeout", "3", check=False)
        assert "Traceback" not in result.stderr
        report = json.loads(result.stdout)
        if report["ok"]:
            # A pass must be traffic that crossed the ZooKeeper-coordinated overlay, both ways.
            results = {c["id"]: c["results"] for c in report["checks"]}
            for check in CROSS_HOST_CHECKS:
                passed = {
                    (r["source"], r["target"])
                    for r in results.get(check, [])
                    if r["status"] == "pass" and r["network"] == "zn" and r["path"] == "cross-host"
                }
                assert passed == {("alpha", "beta"), ("beta", "alpha")}, (check, results.get(check))
        else:
            crashed = [
                r
                for c in report["checks"]
                if c["id"] == "engines.api"
                for r in c["results"]
                if r["status"] == "fail"
            ]
            assert crashed, report["diagnosis"]
            assert all("crashed: panic:" in r["message"] for r in crashed)
            assert any("libnetwork" in r["message"] for r in crashed)
            assert report["diagnosis"][0]["cause"].startswith("the engine on ")
    finally:
        invoke("down", "-i", SPEC, check=False)
    assert wait_until_clean(before) == []
