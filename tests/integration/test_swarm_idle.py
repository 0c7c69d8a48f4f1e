"""Swarm mode with nothing deployed (tests/testdata/labs/swarm-idle.yml): one manager,
two workers and an attachable overlay. A swarm overlay shows on a worker only once
something there uses it, and the first verify looks for it while its probes start:
that is no missing network, and never a KV store's fault (the lab has none)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hostsnap import HostSnapshot, wait_until_clean
from lab_cli import ROOT, failures, invoke, verify_json

SPEC = ROOT / "tests/testdata/labs/swarm-idle.yml"


@pytest.fixture(scope="module")
def idle_swarm() -> Iterator[None]:
    before = HostSnapshot.take()
    try:
        invoke("up", "-i", str(SPEC))
        yield
    finally:
        invoke("down", "-i", str(SPEC), check=False)
    assert wait_until_clean(before) == []


def present(report: dict) -> list[dict]:
    [check] = [c for c in report["checks"] if c["id"] == "networks.present"]
    return check["results"]


def test_first_verify_on_idle_workers_is_green(idle_swarm: None) -> None:
    """Right after `up` no worker uses appnet, so none lists it yet."""
    report = verify_json(str(SPEC))
    assert report["ok"], (failures(report), report["diagnosis"])
    [result] = present(report)
    assert result["status"] == "pass"
    assert not any("KV" in d["cause"] + d["detail"] for d in report["diagnosis"])


def test_a_worker_lists_the_overlay_once_its_probes_use_it(idle_swarm: None) -> None:
    report = verify_json(str(SPEC))
    assert report["ok"], failures(report)
    [result] = present(report)
    assert result["status"] == "pass" and "on 3 engines" in result["message"], result
