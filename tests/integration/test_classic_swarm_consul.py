"""Classic swarm discovering through consul while the engines' store is etcd, as the
article's swarm used consul: a consul agent runs beside etcd on the KV node
(`orchestration.discovery: consul`). Needs `swarm` and `consul` on PATH; skips without."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from hostsnap import HostSnapshot, wait_until_clean
from lab_cli import ROOT, failures, invoke, verify_json

pytestmark = pytest.mark.skipif(
    shutil.which("swarm") is None or shutil.which("consul") is None,
    reason="needs a static classic swarm binary (`swarm`) and `consul` on PATH",
)


def test_agents_register_in_consul_while_engines_use_etcd(tmp_path: Path) -> None:
    spec = yaml.safe_load((ROOT / "tests/testdata/labs/classic.yml").read_text())
    spec.update(name="clc", lab={"subnet": "192.168.83.0/24"})
    spec["orchestration"]["discovery"] = "consul"
    spec["stacks"][0]["file"] = str(ROOT / "stacks/demo/docker-compose.swarm.yml")
    path = tmp_path / "classic-consul.yml"
    path.write_text(yaml.safe_dump(spec))
    before = HostSnapshot.take()
    try:
        up = invoke("up", "-i", str(path))
        assert "etcd serving" in up.stderr and "consul serving" in up.stderr
        report = verify_json(str(path))
        assert report["ok"], failures(report)
        checks = {c["id"]: c for c in report["checks"]}
        discovered = checks["swarm.nodes"]["results"][0]["details"]["discovered"]
        assert discovered == ["192.168.83.11:2376", "192.168.83.12:2376", "192.168.83.13:2376"]
        # The engines still keep their overlay state in etcd.
        assert checks["kv.registered"]["status"] == "pass"
    finally:
        invoke("down", "-i", str(path), check=False)
    assert wait_until_clean(before) == []
