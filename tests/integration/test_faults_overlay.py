"""Faults inside the legacy overlay itself, on real engines: a protocol filtered in a
node's overlay sandbox, discovery entries an engine cannot read, VXLAN peer entries
that are missing or stale. Each needs evidence from the node (the engine's log, its
overlay sandbox's fdb) for verify to name the right cause, and `up` to repair what an
engine restart repairs."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from lab_cli import causes, failures, invoke, verify_json
from shared_labs import SharedLab

from overlaylab.context import LabContext
from overlaylab.faults import ActiveFault, active_faults, heal_faults, inject_fault, services
from overlaylab.faults.classic import plant_stale_peer_entry, remove_stale_peer_entries
from overlaylab.layout import LabLayout
from overlaylab.waiting import wait_until

SPEC = "tests/testdata/labs/faults.yml"
LAYOUT = LabLayout.for_cluster("fl")


def netns_exec(node: str, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["nsenter", f"--net=/run/netns/{LAYOUT.node_ns(node)}", *argv],
        check=check,
        capture_output=True,
        text=True,
    )


def docker(node: str, *argv: str) -> str:
    env = {**os.environ, "DOCKER_HOST": f"unix://{LAYOUT.docker_socket(node)}"}
    return subprocess.run(
        ["docker", *argv], env=env, check=True, capture_output=True, text=True
    ).stdout.strip()


def verify(*extra: str, timeout: float = 8) -> dict:
    return verify_json(SPEC, *extra, timeout=timeout)


@pytest.fixture
def lab(shared_faults_lab: SharedLab) -> Iterator[LabContext]:
    """The faults lab, shared with test_faults.py (conftest.py): up before the first test
    that needs it, down after the last, and the host then as it was before."""
    ctx = shared_faults_lab.context
    yield ctx
    assert active_faults(ctx) == []  # every test healed what it injected


@contextmanager
def protocol_filtered(ctx: LabContext, node: str, proto: str) -> Iterator[None]:
    """The catalogue's `protocol` fault: ebtables in the node's overlay sandbox of dn."""
    inject_fault(ctx, "protocol", [node], {"proto": proto, "network": "dn"})
    try:
        yield
    finally:
        heal_faults(ctx, "protocol")


def test_healthy_lab_has_every_overlay_peer_entry(lab) -> None:
    report = verify("--only", "networks")
    assert report["ok"], failures(report)
    [peers] = [c for c in report["checks"] if c["id"] == "networks.peers"]
    assert {r["subject"] for r in peers["results"]} >= {"n1 on dn", "n2 on dn", "n3 on dn"}
    assert peers["status"] == "pass"


@pytest.mark.parametrize(("proto", "crossing"), [("icmp", "tcp, udp"), ("udp", "icmp, tcp")])
def test_one_protocol_filtered_in_an_overlay_sandbox_is_not_vxlan(
    lab: LabContext, proto: str, crossing: str
) -> None:
    with protocol_filtered(lab, "n2", proto):
        report = verify()
    failed = failures(report)
    checks = {"icmp": {"connectivity.icmp", "mtu.df"}, "udp": {"connectivity.udp"}}[proto]
    assert set(failed) == checks, failed
    assert all("n2" in r["nodes"] and r["network"] == "dn" for c in checks for r in failed[c])
    assert causes(report) == [f"{proto} is filtered on dn at n2: {crossing} cross, so VXLAN works"]
    [diagnosis] = report["diagnosis"]
    assert "same-host" in diagnosis["detail"] and "overlay sandbox" in diagnosis["detail"]
    assert verify()["ok"]


def test_unreadable_discovery_entries_then_missing_peer_entries(lab: LabContext) -> None:
    # The catalogue's discovery-junk: junk keys in docker/nodes, n3's engine restarted.
    inject_fault(lab, "discovery-junk", ["n3"])
    try:
        junk = verify()
        # The junk taken out by hand, the engine left as it is (heal would restart it).
        for key in services.JUNK_KEYS:
            services._etcd(lab, "DELETE", key)
        # The engine starts serf once it can read the list again (its next watch event).
        assert wait_until(
            lambda: netns_exec("n3", "ss", "-ltn", "sport = :7946").stdout.count("LISTEN"),
            60,
            1,
        )
        no_peers = verify()
        up = invoke("up", "-i", SPEC)
        healed = up.stdout + up.stderr  # progress goes to stderr
        after = verify()
    finally:
        heal_faults(lab, "discovery-junk")
    [first, *_] = junk["diagnosis"]
    assert first["cause"] == (
        "n3's engine does not gossip: discovery error: address garbage: missing port in address"
    )
    assert first["nodes"] == ["n3"]
    assert not any("firewall" in d["detail"] or "islands" in d["cause"] for d in junk["diagnosis"])
    assert causes(no_peers) == ["no overlay peer entries on n3"]
    assert {r["subject"] for r in failures(no_peers)["networks.peers"]} >= {"n3 on dn"}
    assert "no overlay peer entries" in healed, healed
    assert after["ok"], failures(after)


def test_stale_peer_entry_for_a_free_address(lab: LabContext) -> None:
    """An fdb entry that sends a free address's MAC to the node itself: the next container
    to get that address on another node is unreachable from here (classic swarm's
    recycled addresses left exactly this on a node whose agent came back: the catalogue's
    classic-agent fault plants it with this very helper)."""
    undo: dict[str, object] = {}
    address = plant_stale_peer_entry(lab, "n1", "dn", undo)  # sent to n1 itself
    try:
        report = verify()
        up = invoke("up", "-i", SPEC)
        healed = up.stdout + up.stderr
    finally:
        remove_stale_peer_entries(lab, ActiveFault("classic-agent", ["n1"], {}, undo))
    assert address == "10.0.9.254"
    failed = failures(report)
    assert set(failed) == {"networks.peers"}, failed
    peers = [(r["subject"], r["message"]) for r in failed["networks.peers"]]
    assert len(peers) == 1, peers
    [stale] = failed["networks.peers"]
    assert stale["subject"] == "n1 on dn" and "10.0.9.254" in stale["message"]
    assert causes(report) == [
        "stale overlay peer entries on n1 (recycled addresses); restart n1's engine"
    ]
    assert "stale overlay peer entries" in healed
    after = verify()
    assert after["ok"], failures(after)


def test_a_second_container_carrying_a_stack_alias_is_blamed_not_the_stack(lab) -> None:
    # mongo (demo stack) runs on n2; another container on n3 answers to `mongo` too.
    docker(
        "n3", "run", "-d", "--name", "mongo-copy", "--network", "dn", "--network-alias", "mongo",
        "overlaylab/probe:1", "sleep", "3600",
    )  # fmt: skip
    try:
        report = verify("--only", "names")
    finally:
        docker("n3", "rm", "-f", "mongo-copy")
    wrong = failures(report)["names.resolve"]
    assert wrong and {r["target"] for r in wrong} == {"n3"}
    assert all("mongo-copy on n3, which answers to" in r["message"] for r in wrong)
    [found] = report["diagnosis"]
    assert found["nodes"] == ["n3"] and "stale" not in found["detail"]
