"""The article's second stack with real code: an app that registers itself (built twice,
naive and fixed) in the lab's registry; verify calls what was registered from the other
host. Over etcd always; over consul too when its programs are on PATH."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from hostsnap import HostSnapshot, wait_until_clean
from lab_cli import ROOT, invoke, verify_json
from test_consul_lab import DOCKERD as CONSUL_DOCKERD

SPEC = ROOT / "tests/testdata/labs/discovery.yml"
STACK = ROOT / "stacks/discovery/docker-compose.yml"


def variant(folder: Path, backend: str) -> Path:
    if backend == "etcd":
        return SPEC
    if shutil.which("consul") is None or CONSUL_DOCKERD is None:
        pytest.skip("needs `consul` and a consul-capable dockerd (dockerd*) on PATH")
    spec = yaml.safe_load(SPEC.read_text())
    spec["kv"]["backend"] = "consul"
    spec["engine"] = {"dockerd": CONSUL_DOCKERD}
    spec["stacks"][0]["file"] = str(STACK)
    path = folder / "discovery-consul.yml"
    path.write_text(yaml.safe_dump(spec))
    return path


@pytest.mark.parametrize("backend", ["etcd", "consul"])
def test_the_naive_app_is_caught_by_what_it_registered(backend: str, tmp_path: Path) -> None:
    spec = variant(tmp_path, backend)
    before = HostSnapshot.take()
    try:
        invoke("up", "-i", str(spec))
        report = verify_json(str(spec))
        [check] = [c for c in report["checks"] if c["id"] == "discovery.endpoints"]
        results = {r["subject"].split()[0]: r for r in check["results"]}
        assert set(results) == {"fee-service-naive", "fee-service-fixed"}
        naive, fixed = results["fee-service-naive"], results["fee-service-fixed"]
        assert fixed["status"] == "pass", fixed
        assert fixed["details"]["registered"].startswith("10.0.9.")
        assert naive["status"] == "fail" and naive["details"]["gwbridge"] is True
        assert naive["details"]["failed_from"].keys() == {"n2"}  # the other host
        assert not naive["details"]["registered"].startswith("10.0.9.")
        [cause] = report["diagnosis"]
        assert "registered their docker_gwbridge address" in cause["cause"]
        assert cause["nodes"] == ["n1"]
        # The declared rule does not judge apps that register: their registration does.
        [advertise] = [c for c in report["checks"] if c["id"] == "advertise.address"]
        assert {r["status"] for r in advertise["results"]} == {"skip"}
    finally:
        invoke("down", "-i", str(spec), check=False)
    assert wait_until_clean(before) == []
