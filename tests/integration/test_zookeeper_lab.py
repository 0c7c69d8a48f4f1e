"""The legacy overlay over ZooKeeper instead of etcd (libkv's zk backend)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from conftest import invoke
from hostsnap import HostSnapshot, wait_until_clean

from overlaylab.layout import LabLayout
from overlaylab.steps.kv import ZOOKEEPER_SERVER

SPEC = "tests/testdata/labs/zk.yml"
LAYOUT = LabLayout.for_cluster("zk")

pytestmark = pytest.mark.skipif(not ZOOKEEPER_SERVER.exists(), reason="zookeeper not installed")


def _docker(node: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DOCKER_HOST": f"unix://{LAYOUT.docker_socket(node)}"}
    return subprocess.run(["docker", *args], capture_output=True, text=True, env=env, timeout=60)


def test_zookeeper_backed_overlay_carries_traffic() -> None:
    before = HostSnapshot.take()
    try:
        invoke("up", "-i", SPEC)
        info = _docker("alpha", "info", "--format", "{{.Name}}")
        assert info.stdout.strip() == "alpha"
        config = Path(LAYOUT.daemon_config("alpha")).read_text()
        assert '"cluster-store": "zk://192.168.98.10:2181"' in config
        verify = invoke("verify", "-i", SPEC, "--only", "connectivity")
        assert "0/6 checks failed" in verify.stdout, verify.stdout
    finally:
        invoke("down", "-i", SPEC, check=False)
    assert wait_until_clean(before) == []
