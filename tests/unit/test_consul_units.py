"""A legacy overlay on a consul store, over the fake lab (no consul here: Debian has
none, and its dockerd lacks the consul store): the kv checks speak consul's API, and
apps registered as consul agent services are called like etcd's, on every CI."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakelab import FakeLab, consul_lab_spec


@pytest.fixture
def lab(tmp_path: Path) -> FakeLab:
    return FakeLab(consul_lab_spec(), tmp_path / "state")


def test_healthy_consul_lab_passes_and_reads_the_engines_keys(lab: FakeLab) -> None:
    report = lab.verify()
    assert report.ok, [(r.check, r.subject, r.message) for r in report.failed]
    reach = [r.message for r in report.results if r.check == "kv.reachable"]
    assert reach == ['connected; GET /v1/status/leader: "192.168.97.10:8300"'] * 3
    registered = [r.message for r in report.results if r.check == "kv.registered"]
    assert registered == [f"registered as 192.168.97.{i}:2376" for i in (11, 12, 13)]


def test_consul_down_is_the_store_named(lab: FakeLab) -> None:
    lab.stop_kv()
    report = lab.verify()
    # The apps' registry cannot be read either: discovery.endpoints is not tested.
    assert {r.check for r in report.failed} == {
        "kv.reachable",
        "kv.registered",
        "networks.present",
        "discovery.endpoints",
    }
    [found] = report.diagnosis
    assert found.cause == "the KV store (consul on kv) is down or unreachable"
    assert found.nodes == ["kv"]


def test_an_agent_service_at_its_docker_gwbridge_address_is_found(lab: FakeLab) -> None:
    lab.register_app("demo_web_1", "fee-service-naive", 5000, leg="gwbridge")
    report = lab.verify()
    assert {r.check for r in report.failed} == {"discovery.endpoints"}
    [cause] = report.diagnosis
    assert "registered their docker_gwbridge address" in cause.cause
    assert cause.nodes == ["n1"]
    lab.registry.clear()
    lab.register_app("demo_web_1", "fee-service", 5000)  # its overlay address
    assert lab.verify().ok
