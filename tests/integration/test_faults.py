"""Fault injection on real engines: break one thing, the matching check must fail with
the right diagnosis and the unrelated checks must not. Faults come from the product's
catalogue (`overlaylab.faults`: iptables rules in a node's namespace, killed and hung
services, a lowered link MTU, a container cut from its overlay or paused), injected and
healed through the nodes' handles; the rest are real misconfigurations."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from lab_cli import causes, failures, invoke, verify_json
from shared_labs import SharedLab

from overlaylab.context import LabContext
from overlaylab.faults import active_faults, heal_faults, inject_fault
from overlaylab.layout import LabLayout
from overlaylab.waiting import wait_until

SPEC = "tests/testdata/labs/faults.yml"
SPRING = "tests/testdata/labs/faults-spring.yml"
LAYOUT = LabLayout.for_cluster("fl")
DATA = ("connectivity.icmp", "connectivity.tcp", "connectivity.udp", "mtu.df")


def verify(spec: str = SPEC, *extra: str, timeout: float = 8) -> dict:
    return verify_json(spec, *extra, timeout=timeout)


@contextmanager
def fault(ctx: LabContext, kind: str, *targets: str, **options: str) -> Iterator[None]:
    """The catalogue's fault `kind` injected on `targets`; healed (checked undone) after."""
    inject_fault(ctx, kind, list(targets), options)
    try:
        yield
    finally:
        heal_faults(ctx, kind)


def wait_for_gossip_to_heal(timeout: float = 120) -> bool:
    return wait_until(lambda: verify(SPEC, "--only", "underlay.members")["ok"], timeout, 5)


@pytest.fixture
def lab(shared_faults_lab: SharedLab) -> Iterator[LabContext]:
    """The faults lab, shared with test_faults_overlay.py (conftest.py): up before the first test
    that needs it, down after the last, and the host then as it was before."""
    ctx = shared_faults_lab.context
    yield ctx
    assert active_faults(ctx) == []  # every test healed what it injected


def test_healthy_lab_passes_every_check(lab) -> None:
    report = verify()
    assert report["ok"], failures(report)
    ids = {c["id"] for c in report["checks"] if c["status"] == "pass"}
    assert {
        "engines.api",
        "kv.registered",
        "underlay.gossip",
        "networks.present",
        "connectivity.udp",
        "mtu.df",
        "names.resolve",
        "advertise.address",
        "ports.published",
        "isolation.overlays",
    } <= ids
    assert report["diagnosis"] == []


def test_vxlan_dropped_on_one_node(lab: LabContext) -> None:
    with fault(lab, "vxlan", "n2"):
        report = verify()
    failed = failures(report)
    assert set(failed) == set(DATA)
    for check in DATA:
        for result in failed[check]:
            assert "n2" in (result["source"], result["target"]) and result["path"] == "cross-host"
            assert "udp/4789" in result["hint"]
    assert causes(report) == ["overlay data (VXLAN, udp/4789) is blocked to and from n2"]
    after = verify()  # and back to healthy once the rule is gone
    assert after["ok"], failures(after)


def test_mended_link_mtu_is_not_blamed_for_a_cached_path_mtu(lab: LabContext) -> None:
    with fault(lab, "mtu", "n2", mtu="1400"):
        small = verify()
        # Mended by hand, as a person does: the link's MTU back, no cache flushed (heal
        # flushes what the fault taught; a person's repair does not).
        lab.node("n2").run(["ip", "link", "set", "dev", "eth1", "mtu", "1500"])
        # The probes on n2 learned a path MTU of 1350 (ICMP "fragmentation needed" from
        # n2's VXLAN device); the kernel keeps it for net.ipv4.route.mtu_expires (600 s).
        mended = verify()
    assert causes(small) == ["full-size packets do not cross the overlay (MTU)"]
    assert set(failures(small)) == {"mtu.df"}
    assert small["diagnosis"][0]["nodes"] == ["n2"]
    assert mended["ok"], failures(mended)
    held = [
        r
        for c in mended["checks"]
        if c["id"] == "mtu.df"
        for r in c["results"]
        if r["details"]["cached_path_mtu"]
    ]
    assert held and {r["source"] for r in held} == {"n2"}
    assert all("still holds a path MTU of 1350" in r["message"] for r in held)


def test_mtu_and_vxlan_failing_together_are_both_named(lab: LabContext) -> None:
    with fault(lab, "mtu", "n2", mtu="1400"), fault(lab, "vxlan", "n3"):
        report = verify()
    assert causes(report) == [
        "full-size packets do not cross the overlay (MTU)",
        "overlay data (VXLAN, udp/4789) is blocked to and from n3",
    ]
    mtu, vxlan = report["diagnosis"]
    assert "n2" in mtu["nodes"] and "n3" not in mtu["nodes"] and mtu["checks"] == ["mtu.df"]
    assert vxlan["nodes"] == ["n3"]


def test_gossip_dropped_on_one_node(lab: LabContext) -> None:
    with fault(lab, "gossip", "n2"):
        # Quick, as the check is: given longer, serf itself declares n2 failed, and the
        # members check reports that consequence too.
        report = verify(timeout=3)
    failed = failures(report)
    assert set(failed) == {"underlay.gossip"}, failed
    assert {r["subject"] for r in failed["underlay.gossip"]} == {"n1 -> n2:7946", "n3 -> n2:7946"}
    assert causes(report) == ["serf gossip to n2 is blocked (tcp+udp 7946)"]


def test_node_cut_off_the_lab_switch(lab: LabContext) -> None:
    inject_fault(lab, "cut", ["n2"])
    try:
        report = verify(SPEC, "--skip", "names")
    finally:
        heal_faults(lab, "cut")
        healed = wait_for_gossip_to_heal()
    failed = failures(report)
    assert {"underlay.api", "underlay.gossip", "kv.reachable"} <= set(failed)
    assert all("n2" in r["nodes"] for results in failed.values() for r in results)
    assert "engines.api" not in failed
    assert causes(report) == ["n2 is cut off the lab network"]
    # serf marked n2 failed while it was away; its reconnect loop brings it back.
    assert healed, "the gossip cluster did not take n2 back within 120 s"


def test_kv_store_stopped(lab: LabContext) -> None:
    inject_fault(lab, "kv-stopped")
    try:
        report = verify(SPEC, "--skip", "names", "--skip", "advertise")
    finally:
        heal_faults(lab, "kv-stopped")  # brings the store back
        # Engines register again at their next heartbeat (every 20 s): the tests after
        # this one start from a lab whose store knows every engine.
        registered = wait_until(
            lambda: verify(SPEC, "--only", "kv.registered")["ok"], 90, interval=5
        )
    failed = failures(report)
    assert registered, "the engines did not register again within 90 s of the store's return"
    assert {"kv.reachable", "kv.registered"} <= set(failed)
    assert len(failed["kv.reachable"]) == 3
    assert not set(failed) & {*DATA, "engines.api", "underlay.api", "underlay.gossip"}
    assert causes(report) == ["the KV store (etcd on kv) is down or unreachable"]


def test_kv_store_hung(lab: LabContext) -> None:
    """A stopped store still completes TCP handshakes: only a request in its own protocol
    (etcd's /health) shows that it does not answer."""
    pid = int((LAYOUT.node_dir("kv") / "etcd.pid").read_text())
    inject_fault(lab, "kv-hung")
    try:
        report = verify(SPEC, "--skip", "names", "--skip", "advertise")
    finally:
        # As the diagnosis says: `up` stops the store that does not answer, starts it again.
        up = invoke("up", "-i", SPEC, check=False)
        replaced = int((LAYOUT.node_dir("kv") / "etcd.pid").read_text()) != pid
        heal_faults(lab, "kv-hung")  # had up failed to replace it: the next tests need it
        registered = wait_until(
            lambda: verify(SPEC, "--only", "kv.registered")["ok"], 90, interval=5
        )
    assert up.returncode == 0 and replaced, up.stdout + up.stderr
    failed = failures(report)
    assert registered, "the engines did not register again within 90 s of the store's return"
    reach = failed["kv.reachable"]
    assert len(reach) == 3
    assert all(r["details"]["connected"] and not r["details"]["answered"] for r in reach)
    assert all("etcd does not answer" in r["message"] for r in reach)
    assert not set(failed) & {*DATA, "engines.api", "underlay.api", "underlay.gossip"}
    assert causes(report) == ["the KV store (etcd on kv) does not answer"]


def test_one_engine_killed(lab: LabContext) -> None:
    with fault(lab, "engine-killed", "n3"):
        report = verify()
    failed = failures(report)
    assert [r["subject"] for r in failed["engines.api"]] == ["n3"]
    assert failed["engines.api"][0]["message"] == "dockerd on n3 is not running"
    elsewhere = [
        (r["check"], r["subject"], r["message"])
        for results in failed.values()
        for r in results
        if "n3" not in r["nodes"]
    ]
    assert elsewhere == []
    assert not set(failed) & {*DATA, "kv.reachable"}
    # n3 was never tested: that fails, once, and verify does not pass.
    assert not report["ok"]
    [no_probes] = failed["probes.running"]
    assert no_probes["target"] == "n3" and "no probe runs on n3" in no_probes["message"]
    assert not any(
        r["status"] == "skip" for c in report["checks"] for r in c["results"] if "n3" in r["nodes"]
    )
    assert causes(report) == ["the engine on n3 is down"]
    [dead] = report["diagnosis"]
    assert "probes.running" in dead["checks"] and dead["nodes"] == ["n3"]


def test_two_overlays_joined(lab) -> None:
    env = {**os.environ, "DOCKER_HOST": f"unix://{LAYOUT.docker_socket('n1')}"}
    # The probes run and every path between them answers first (starting them if need be):
    # a test before this one heals a node cut off, and the others' name records for it
    # come back in the engines' own time (CI once saw one lookup fail here).
    ready = ("--only", "probes.running", "--only", "connectivity")
    assert wait_until(lambda: verify(SPEC, *ready)["ok"], 60, 3)
    subprocess.run(["docker", "network", "connect", "other", "probe-dn-n1"], env=env, check=True)
    try:
        report = verify(SPEC, "--only", "isolation", "--only", "connectivity")
    finally:
        subprocess.run(
            ["docker", "network", "disconnect", "other", "probe-dn-n1"], env=env, check=True
        )
    failed = failures(report)
    assert set(failed) == {"isolation.overlays"}
    leaks = failed["isolation.overlays"]
    # Only the probe on n1 joined to `other` leaks; the same-host path always does (other
    # hosts' probes it reaches once the joined endpoint's gossip has spread).
    assert {(r["source"], r["network"], r["details"]["to_network"]) for r in leaks} == {
        ("n1", "dn", "other")
    }
    assert "n1" in {r["target"] for r in leaks} and {r["target"] for r in leaks} <= {
        "n1",
        "n2",
        "n3",
    }
    assert {r["details"]["from"] for r in leaks} == {"probe-dn-n1"}
    assert causes(report)[0].startswith("overlays that should be isolated are joined")


def test_published_port_firewalled_on_its_node_blames_that_node_only(lab: LabContext) -> None:
    # web (on n1) publishes 80 -> 5000; DOCKER-USER sees the DNAT-ed container port.
    with fault(lab, "port", "n1", port="5000"):
        report = verify()
    failed = failures(report)
    assert set(failed) == {"ports.published"}, failed
    assert {(r["source"], r["target"]) for r in failed["ports.published"]} == {
        ("n2", "n1"),
        ("n3", "n1"),
    }
    [cause] = report["diagnosis"]
    assert cause["cause"] == "2 published port(s) do not answer"
    assert cause["nodes"] == ["n1"]


def test_stack_container_cut_from_its_overlay_fails_and_up_repairs_it(lab: LabContext) -> None:
    with fault(lab, "disconnect", "n1", service="demo/web"):
        report = verify()
        repaired = invoke("up", "-i", SPEC)
    failed = failures(report)
    [running] = failed["stacks.running"]
    assert running["message"] == "demo_web_1 is not on dn" and running["target"] == "n1"
    # Its names and where it advertises are untested, and say why; its port is tested.
    for check in ("names.resolve", "advertise.address"):
        assert [r["details"]["untested_because"] for r in failed[check]] == ["stacks.running"]
    assert {(r["source"], r["target"]) for r in failed["ports.published"]} == {
        ("n2", "n1"),
        ("n3", "n1"),
    }
    assert causes(report) == ["demo/web on n1 does not serve: demo_web_1 is not on dn"]
    assert "demo/web is not on dn: starting it afresh" in repaired.stderr
    after = verify()
    assert after["ok"], failures(after)


def test_paused_stack_container_is_not_running_and_its_port_does_not_answer(
    lab: LabContext,
) -> None:
    with fault(lab, "pause", "n1", service="demo/web"):
        report = verify()
    failed = failures(report)
    assert set(failed) == {"stacks.running", "ports.published", "advertise.address"}, failed
    [running] = failed["stacks.running"]
    assert running["message"] == "demo_web_1 is paused"
    # docker-proxy and the container's kernel accept; nothing ever answers the request.
    assert all("answers nothing" in r["message"] for r in failed["ports.published"])
    assert len(failed["ports.published"]) == 2
    assert causes(report) == ["demo/web on n1 does not serve: demo_web_1 is paused"]
    after = verify()
    assert after["ok"], failures(after)


def test_app_advertising_its_docker_gwbridge_address(lab) -> None:
    invoke("up", "-i", SPRING)  # adds the spring stack: an app that picks the last interface
    report = verify(SPRING, "--skip", "isolation")
    failed = failures(report)
    assert set(failed) == {"advertise.address"}
    [result] = failed["advertise.address"]
    assert result["subject"] == "spring/fee on n3 (java-enumeration)"
    assert result["details"]["picked"]["network"] == "docker_gwbridge"
    assert "docker_gwbridge" in result["message"] and "eth1" in result["message"]
    assert "preferred-networks" in result["hint"]
    passed = [
        r
        for c in report["checks"]
        if c["id"] == "advertise.address"
        for r in c["results"]
        if r["status"] == "pass"
    ]
    assert {r["subject"] for r in passed} == {
        "demo/web on n1 (first-interface)",
        "demo/mongo on n2 (first-interface)",
    }
