"""Fault injection on real engines: break one thing, the matching check must fail with
the right diagnosis and the unrelated checks must not. Faults are iptables rules in a
node's namespace, killed processes, a cut switch port and real misconfigurations."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from lab_cli import causes, failures, invoke, verify_json
from shared_labs import SharedLab

from overlaylab.layout import LabLayout
from overlaylab.waiting import wait_until

SPEC = "tests/testdata/labs/faults.yml"
SPRING = "tests/testdata/labs/faults-spring.yml"
LAYOUT = LabLayout.for_cluster("fl")
DATA = ("connectivity.icmp", "connectivity.tcp", "connectivity.udp", "mtu.df")


def verify(spec: str = SPEC, *extra: str, timeout: float = 8) -> dict:
    return verify_json(spec, *extra, timeout=timeout)


def netns_exec(node: str, *argv: str) -> None:
    subprocess.run(["nsenter", f"--net=/run/netns/{LAYOUT.node_ns(node)}", *argv], check=True)


@contextmanager
def iptables_drop(node: str, *rules: tuple[str, str]) -> Iterator[None]:
    for proto, port in rules:
        netns_exec(node, "iptables", "-I", "INPUT", "-p", proto, "--dport", port, "-j", "DROP")
    try:
        yield
    finally:
        for proto, port in rules:
            netns_exec(node, "iptables", "-D", "INPUT", "-p", proto, "--dport", port, "-j", "DROP")


def wait_for_gossip_to_heal(timeout: float = 120) -> bool:
    return wait_until(lambda: verify(SPEC, "--only", "underlay.members")["ok"], timeout, 5)


@pytest.fixture
def lab(shared_faults_lab: SharedLab) -> SharedLab:
    """The faults lab, shared with test_faults_overlay.py (conftest.py): up before the first test
    that needs it, down after the last, and the host then as it was before."""
    return shared_faults_lab


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


def test_vxlan_dropped_on_one_node(lab) -> None:
    with iptables_drop("n2", ("udp", "4789")):
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


@contextmanager
def link_mtu(node: str, mtu: int) -> Iterator[None]:
    netns_exec(node, "ip", "link", "set", "eth1", "mtu", str(mtu))
    try:
        yield
    finally:
        netns_exec(node, "ip", "link", "set", "eth1", "mtu", "1500")


def test_mended_link_mtu_is_not_blamed_for_a_cached_path_mtu(lab) -> None:
    with link_mtu("n2", 1400):
        small = verify()
    # The probes on n2 learned a path MTU of 1350 (ICMP "fragmentation needed" from n2's
    # VXLAN device); the kernel keeps it for net.ipv4.route.mtu_expires (600 s).
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


def test_mtu_and_vxlan_failing_together_are_both_named(lab) -> None:
    with link_mtu("n2", 1400), iptables_drop("n3", ("udp", "4789")):
        report = verify()
    assert causes(report) == [
        "full-size packets do not cross the overlay (MTU)",
        "overlay data (VXLAN, udp/4789) is blocked to and from n3",
    ]
    mtu, vxlan = report["diagnosis"]
    assert "n2" in mtu["nodes"] and "n3" not in mtu["nodes"] and mtu["checks"] == ["mtu.df"]
    assert vxlan["nodes"] == ["n3"]


def test_gossip_dropped_on_one_node(lab) -> None:
    with iptables_drop("n2", ("tcp", "7946"), ("udp", "7946")):
        # Quick, as the check is: given longer, serf itself declares n2 failed, and the
        # members check reports that consequence too.
        report = verify(timeout=3)
    failed = failures(report)
    assert set(failed) == {"underlay.gossip"}, failed
    assert {r["subject"] for r in failed["underlay.gossip"]} == {"n1 -> n2:7946", "n3 -> n2:7946"}
    assert causes(report) == ["serf gossip to n2 is blocked (tcp+udp 7946)"]


def test_node_cut_off_the_lab_switch(lab) -> None:
    port = LAYOUT.switch_port("n2")
    subprocess.run(["ip", "-n", LAYOUT.switch_ns, "link", "set", port, "down"], check=True)
    try:
        report = verify(SPEC, "--skip", "names")
    finally:
        subprocess.run(["ip", "-n", LAYOUT.switch_ns, "link", "set", port, "up"], check=True)
        healed = wait_for_gossip_to_heal()
    failed = failures(report)
    assert {"underlay.api", "underlay.gossip", "kv.reachable"} <= set(failed)
    assert all("n2" in r["nodes"] for results in failed.values() for r in results)
    assert "engines.api" not in failed
    assert causes(report) == ["n2 is cut off the lab network"]
    # serf marked n2 failed while it was away; its reconnect loop brings it back.
    assert healed, "the gossip cluster did not take n2 back within 120 s"


def test_kv_store_stopped(lab) -> None:
    pid = int((LAYOUT.node_dir("kv") / "etcd.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    try:
        report = verify(SPEC, "--skip", "names", "--skip", "advertise")
    finally:
        invoke("up", "-i", SPEC)  # brings the store back
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


def test_kv_store_hung(lab) -> None:
    """A stopped store still completes TCP handshakes: only a request in its own protocol
    (etcd's /health) shows that it does not answer."""
    pid = int((LAYOUT.node_dir("kv") / "etcd.pid").read_text())
    os.kill(pid, signal.SIGSTOP)
    try:
        report = verify(SPEC, "--skip", "names", "--skip", "advertise")
    finally:
        # As the diagnosis says: `up` stops the store that does not answer, starts it again.
        up = invoke("up", "-i", SPEC, check=False)
        replaced = int((LAYOUT.node_dir("kv") / "etcd.pid").read_text()) != pid
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)  # up failed to replace it: the next tests need it
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


def test_one_engine_killed(lab) -> None:
    pid = int((LAYOUT.node_dir("n3") / "dockerd.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    try:
        report = verify()
    finally:
        invoke("up", "-i", SPEC)
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
    assert verify(SPEC, "--only", "probes.running")["ok"]  # starts the probes if need be
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


def test_published_port_firewalled_on_its_node_blames_that_node_only(lab) -> None:
    # web (on n1) publishes 80 -> 5000; DOCKER-USER sees the DNAT-ed container port.
    rule = ("DOCKER-USER", "-p", "tcp", "--dport", "5000", "-j", "DROP")
    netns_exec("n1", "iptables", "-I", *rule)
    try:
        report = verify()
    finally:
        netns_exec("n1", "iptables", "-D", *rule)
    failed = failures(report)
    assert set(failed) == {"ports.published"}, failed
    assert {(r["source"], r["target"]) for r in failed["ports.published"]} == {
        ("n2", "n1"),
        ("n3", "n1"),
    }
    [cause] = report["diagnosis"]
    assert cause["cause"] == "2 published port(s) do not answer"
    assert cause["nodes"] == ["n1"]


def docker_on(node: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DOCKER_HOST": f"unix://{LAYOUT.docker_socket(node)}"}
    return subprocess.run(["docker", *args], env=env, check=check, capture_output=True, text=True)


def test_stack_container_cut_from_its_overlay_fails_and_up_repairs_it(lab) -> None:
    docker_on("n1", "network", "disconnect", "dn", "demo_web_1")
    try:
        report = verify()
        repaired = invoke("up", "-i", SPEC)
    finally:
        docker_on("n1", "network", "connect", "--alias", "web", "dn", "demo_web_1", check=False)
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


def test_paused_stack_container_is_not_running_and_its_port_does_not_answer(lab) -> None:
    docker_on("n1", "pause", "demo_web_1")
    try:
        report = verify()
    finally:
        docker_on("n1", "unpause", "demo_web_1", check=False)
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
