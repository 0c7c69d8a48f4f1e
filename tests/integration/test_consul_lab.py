"""The legacy overlay over a real consul KV node, with engines from a dockerd that has
the consul store (Debian's docker.io is built without it: preflight refuses that).

The green lab needs programs no registry has here: `consul` (1.0.x) and a consul-capable
dockerd (Docker CE's static 20.10, or one built from moby 20.10), both on PATH; the
dockerd may be named `dockerd-*`. Without them that test skips and says what is
missing. The refusal needs neither and runs everywhere: with Debian's dockerd, and with
a stand-in dockerd built without the consul store.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import yaml
from hostsnap import HostSnapshot, wait_until_clean
from lab_cli import failures, invoke, verify_json

from overlaylab.providers.tool_gaps import binary_has_store


def consul_dockerd() -> str | None:
    """A dockerd on PATH whose binary holds libkv's consul store."""
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        for candidate in sorted(Path(folder).glob("dockerd*")) if Path(folder).is_dir() else []:
            if os.access(candidate, os.X_OK) and binary_has_store(str(candidate), "consul"):
                return str(candidate)
    return None


DOCKERD = consul_dockerd()
needs_consul = pytest.mark.skipif(
    shutil.which("consul") is None or DOCKERD is None,
    reason="needs `consul` and a consul-capable dockerd (dockerd*) on PATH; Debian has neither",
)
# A dockerd 20.10 as Debian builds it, as far as preflight looks: its version, and
# libkv's etcd and zookeeper stores in its bytes but not consul's.
STAND_IN_DOCKERD = """#!/bin/sh
# libkv/store/etcd libkv/store/zookeeper
echo "Docker version 20.10.24+dfsg1, build 297e128"
"""


def spec(folder: Path, dockerd: str) -> Path:
    path = folder / "consul.yml"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "overlaylab/v1",
                "kind": "Cluster",
                "name": "cs",
                "lab": {"subnet": "192.168.87.0/24"},
                "kv": {"backend": "consul", "node": "kv"},
                "engine": {"dockerd": dockerd},
                "nodes": [{"name": "kv", "roles": ["kv"]}, {"name": "a"}, {"name": "b"}],
                "networks": [{"name": "cn", "subnet": "10.0.27.0/24"}],
            }
        )
    )
    return path


@pytest.mark.parametrize("dockerd", ["debian", "stand-in"])
def test_preflight_refuses_consul_with_a_dockerd_built_without_it(
    tmp_path: Path, dockerd: str
) -> None:
    binary = "dockerd"
    if dockerd == "stand-in":
        stand_in = tmp_path / "dockerd-stand-in"
        stand_in.write_text(STAND_IN_DOCKERD)
        stand_in.chmod(0o755)
        binary = str(stand_in)
    refused = invoke("up", "-i", str(spec(tmp_path, binary)), check=False)
    debian = shutil.which("dockerd")
    if dockerd == "debian" and debian and binary_has_store(debian, "consul"):
        pytest.skip(f"{debian} has the consul store: nothing to refuse")
    assert refused.returncode != 0
    assert "built without the consul cluster store" in refused.stderr
    assert not Path("/var/lib/overlaylab/cs").exists()  # nothing was started


@needs_consul
def test_a_consul_backed_overlay_verifies_green(tmp_path: Path) -> None:
    assert DOCKERD is not None
    path = spec(tmp_path, DOCKERD)
    before = HostSnapshot.take()
    try:
        invoke("up", "-i", str(path))
        report = verify_json(str(path))
        assert report["ok"], failures(report)
        [registered] = [c for c in report["checks"] if c["id"] == "kv.registered"]
        assert [r["status"] for r in registered["results"]] == ["pass", "pass"]
        assert registered["results"][0]["details"]["registered"] == [
            "192.168.87.11:2376",
            "192.168.87.12:2376",
        ]
    finally:
        invoke("down", "-i", str(path), check=False)
    assert wait_until_clean(before) == []
