"""The legacy overlay over ZooKeeper instead of etcd (libkv's zk backend)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from hostsnap import HostSnapshot, wait_until_clean
from lab_cli import invoke

from overlaylab.host_programs import ZOOKEEPER_SERVER
from overlaylab.layout import LabLayout

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
    soon as a container joins a ZooKeeper-backed overlay: in the first verify after `up`,
    when verify's own probes join it, after engines.api has passed. Whichever way the
    engine behaves, that first verify must say what happened: traffic flows, or it names
    the crash and what set it off, and blames nothing else (no firewall on 7946)."""
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
        # The first verify after `up`: any verify starts the probes, and with them the crash.
        result = invoke("verify", "-i", SPEC, "--format", "json", "--timeout", "3", check=False)
        assert "Traceback" not in result.stderr
        report = json.loads(result.stdout)
        results = {c["id"]: c["results"] for c in report["checks"]}
        # Both engines registered under the discovery znode, read with zkCli on the KV node.
        [registered] = results["kv.registered"][:1]
        assert registered["details"]["registered"] == ["192.168.98.11:2376", "192.168.98.12:2376"]
        # The store answered ZooKeeper's own health word, from each engine node.
        assert [r["message"] for r in results["kv.reachable"]] == ["connected; ruok: imok"] * 2
        if report["ok"]:
            _assert_traffic_crossed(results)
        else:
            _assert_the_crash_is_named(report, results)
    finally:
        invoke("down", "-i", SPEC, check=False)
    assert wait_until_clean(before) == []


def _assert_traffic_crossed(results: dict[str, list[dict]]) -> None:
    """A pass must be traffic that crossed the ZooKeeper-coordinated overlay, both ways."""
    for check in CROSS_HOST_CHECKS:
        passed = {
            (r["source"], r["target"])
            for r in results.get(check, [])
            if r["status"] == "pass" and r["network"] == "zn" and r["path"] == "cross-host"
        }
        assert passed == {("alpha", "beta"), ("beta", "alpha")}, (check, results.get(check))


def _assert_the_crash_is_named(report: dict, results: dict[str, list[dict]]) -> None:
    """Engines that answered when verify began and crashed during it: the death and its
    trigger (verify's probes joining zn) are named, nothing measured before the death
    still passes, and nothing else is blamed (before: "a firewall drops 7946")."""
    crashed = {r["target"]: r for r in results["engines.api"] if r["status"] == "fail"}
    assert crashed, report["diagnosis"]
    for node, dead in crashed.items():
        assert "crashed: panic:" in dead["message"] and "libnetwork" in dead["message"]
        assert dead["details"]["died_during_verify"], dead
        assert "probe containers on zn" in dead["message"], dead["message"]
        # The store is reached from the node, not through its engine: kv.* may pass.
        assert not [
            (r["check"], r["subject"])
            for rs in results.values()
            for r in rs
            if r["status"] == "pass" and r["target"] == node and not r["check"].startswith("kv.")
        ]
    assert [d["cause"] for d in report["diagnosis"]] == [
        f"the engine on {node} died during verify" for node in sorted(crashed)
    ]
