"""diagnose() over results the real checks produce: a fake lab (tests/unit/fakelab.py)
is brought up healthy, one fault (or two) is injected as an operator would, every
check runs against it, and the diagnosis must name the one cause behind the failures.

The results are never written by hand, so a check that stops filling in the fields
diagnosis reads (source, target, network, path, details) fails these tests."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from fakelab import (
    NAT_ADDRESS,
    SWARM_IDLE_YML,
    SWARM_YML,
    FakeLab,
    classic_lab_spec,
    fault_lab_spec,
    swarm_lab_spec,
)
from rich.console import Console

from overlaylab.report.json_report import report_to_dict
from overlaylab.report.table import print_report
from overlaylab.spec import load_spec
from overlaylab.verify.checks import probe_pairs
from overlaylab.verify.checks.mtu import HINT_MTU
from overlaylab.verify.checks.probe_pairs import HINT_DATAPLANE, HINT_SAME_HOST
from overlaylab.verify.diagnosis import Diagnosis, diagnose
from overlaylab.verify.result import CheckResult
from overlaylab.verify.run import ALL_CHECKS, VerifyReport

DATA = ("connectivity.icmp", "connectivity.tcp", "connectivity.udp", "mtu.df")
StartLab = Callable[..., FakeLab]


@pytest.fixture
def start_lab(tmp_path: Path) -> StartLab:
    """start_lab(engines, **spec options) -> a healthy fake lab of that spec."""

    def start(engines: tuple[str, ...] = ("n1", "n2", "n3"), **options: object) -> FakeLab:
        spec = fault_lab_spec(engines, **options)  # type: ignore[arg-type]
        return FakeLab(spec, tmp_path / "state")

    return start


@pytest.fixture
def lab(start_lab: StartLab) -> FakeLab:
    return start_lab()


def causes(report: VerifyReport) -> list[str]:
    return [d.cause for d in report.diagnosis]


def failing(report: VerifyReport, check: str | None = None) -> list[CheckResult]:
    return [r for r in report.failed if check in (None, r.check)]


def failed_checks(report: VerifyReport) -> set[str]:
    return {r.check for r in report.failed}


def all_failures_explained(report: VerifyReport) -> None:
    """Every failing check id is named by some diagnosis."""
    named = {c for d in report.diagnosis for c in d.checks}
    assert failed_checks(report) <= named


# --- healthy -----------------------------------------------------------------------------


def test_healthy_lab_passes_every_check_and_diagnoses_nothing(lab: FakeLab) -> None:
    report = lab.verify()
    assert report.ok, [(r.check, r.subject, r.message) for r in report.failed]
    # A legacy-overlay lab: only the swarm-mode checks do not apply.
    # A legacy-overlay lab whose apps do not register: swarm and discovery do not apply.
    idle = ("swarm.", "discovery.")
    assert {r.status for r in report.results if not r.check.startswith(idle)} == {"pass"}
    assert {r.status for r in report.results if r.check.startswith(idle)} == {"skip"}
    assert {r.check for r in report.results} == {c.id for c in ALL_CHECKS}
    assert report.diagnosis == []


def test_no_results_diagnose_nothing(lab: FakeLab) -> None:
    assert diagnose(lab.spec, []) == []


def test_checks_that_do_not_apply_skip_and_skips_are_not_failures(start_lab: StartLab) -> None:
    lab = start_lab(networks=("dn",), stacks=False)
    report = lab.verify()
    skipped = {r.check for r in report.results if r.status == "skip"}
    assert skipped == {
        "stacks.running",
        "names.resolve",
        "advertise.address",
        "ports.published",
        "isolation.overlays",
        "swarm.nodes",
        "swarm.replicas",
        "swarm.schedule",
        "swarm.services",
        "discovery.endpoints",
    }
    assert report.ok
    assert report.diagnosis == []


# --- the data plane ------------------------------------------------------------------------


def test_vxlan_dropped_on_one_node(lab: FakeLab) -> None:
    lab.drop("n2", "udp", 4789)
    report = lab.verify()
    assert failed_checks(report) == set(DATA)
    assert len(report.failed) == 4 * 2 * 4  # 4 data checks x 2 overlays x 4 pairs with n2
    for r in report.failed:
        assert r.path == "cross-host" and "n2" in (r.source, r.target)
        assert r.hint == HINT_DATAPLANE
    # Small packets are lost too: the MTU check says so instead of blaming the MTU.
    assert all("small packets are lost too" in r.message for r in failing(report, "mtu.df"))
    [found] = report.diagnosis
    assert found.cause == "overlay data (VXLAN, udp/4789) is blocked to and from n2"
    assert found.nodes == ["n2"]
    assert found.checks == sorted(DATA)
    assert "udp/4789" in found.detail


def test_vxlan_dropped_on_two_nodes_names_no_single_node(lab: FakeLab) -> None:
    lab.drop("n2", "udp", 4789)
    lab.drop("n3", "udp", 4789)
    report = lab.verify()
    assert causes(report) == ["overlay data (VXLAN, udp/4789) is blocked between the nodes"]
    assert report.diagnosis[0].nodes == []


def test_lab_links_too_small_for_the_overlay_mtu(start_lab: StartLab) -> None:
    lab = start_lab(lab_mtu=1450)  # default overlays: 1450 + 50 bytes of VXLAN do not fit
    report = lab.verify()
    assert failed_checks(report) == {"mtu.df"}
    assert {r.path for r in report.failed} == {"cross-host"}
    [found] = report.diagnosis
    assert found.cause == "full-size packets do not cross the overlay (MTU)"
    assert found.checks == ["mtu.df"]
    assert HINT_MTU in found.detail
    assert found.nodes == []  # every cross-host pair: no single node to blame


def test_a_mended_link_whose_path_mtu_is_still_cached_is_not_blamed(lab: FakeLab) -> None:
    """Lower n2's lab link, verify (right), put it back: the probes on n2 keep a cached
    path MTU of 1350 for 10 minutes, and `ping -M do` would refuse to send."""
    lab.set_link_mtu("n2", 1400)
    before = lab.verify()
    assert causes(before) == ["full-size packets do not cross the overlay (MTU)"]
    assert before.diagnosis[0].nodes == ["n2"]
    lab.set_link_mtu("n2", 1500)
    after = lab.verify()
    assert after.ok, [(r.check, r.subject, r.message) for r in after.failed]
    assert after.diagnosis == []
    # The cache is seen, and said to be one: not a fault of the path.
    held = [r for r in after.results if r.check == "mtu.df" and r.details["cached_path_mtu"]]
    assert held and {r.source for r in held} == {"n2"}
    assert {r.details["cached_path_mtu"] for r in held} == {1350}
    assert all("still holds a path MTU of 1350" in r.message for r in held)


def test_mtu_and_vxlan_failing_together_are_both_named(lab: FakeLab) -> None:
    lab.set_link_mtu("n2", 1400)
    lab.drop("n3", "udp", 4789)
    report = lab.verify()
    assert causes(report) == [
        "full-size packets do not cross the overlay (MTU)",
        "overlay data (VXLAN, udp/4789) is blocked to and from n3",
    ]
    mtu, vxlan = report.diagnosis
    # With n3 out of reach, only n1 <-> n2 carries MTU evidence: both are named.
    assert mtu.nodes == ["n1", "n2"] and mtu.checks == ["mtu.df"]
    assert vxlan.nodes == ["n3"] and vxlan.checks == sorted(DATA)
    all_failures_explained(report)


def test_same_host_failures_are_not_vxlan(lab: FakeLab) -> None:
    lab.block_same_host("n2", "tcp")
    report = lab.verify()
    assert {(r.check, r.path, r.source, r.target) for r in report.failed} == {
        ("connectivity.tcp", "same-host", "n2", "n2")
    }
    [found] = report.diagnosis
    assert found.cause == "2 connectivity.tcp failure(s)"
    assert found.nodes == ["n2"]
    assert HINT_SAME_HOST in found.detail


@pytest.mark.parametrize(
    ("proto", "checks", "crossing"),
    [
        ("icmp", {"connectivity.icmp", "mtu.df"}, "tcp, udp"),
        ("udp", {"connectivity.udp"}, "icmp, tcp"),
        ("tcp", {"connectivity.tcp"}, "icmp, udp"),
    ],
)
def test_one_protocol_filtered_in_an_overlay_sandbox_is_not_vxlan(
    lab: FakeLab, proto: str, checks: set[str], crossing: str
) -> None:
    lab.filter_in_sandbox("n2", "dn", proto)
    report = lab.verify()
    assert failed_checks(report) == checks
    assert all(r.network == "dn" and "n2" in r.nodes for r in report.failed)
    [found] = report.diagnosis
    assert found.cause == f"{proto} is filtered on dn at n2: {crossing} cross, so VXLAN works"
    assert found.nodes == ["n2"]
    assert set(found.checks) == checks
    # Its own containers' traffic fails too: the filter is inside n2, in the sandbox.
    assert "same-host paths on n2 fail too" in found.detail
    assert "overlay sandbox for dn" in found.detail
    assert "udp/4789" not in found.cause


def test_vxlan_dropped_and_a_protocol_filtered_elsewhere_are_two_causes(lab: FakeLab) -> None:
    # Paths on which nothing crosses are VXLAN's; the others show the filter.
    lab.drop("n2", "udp", 4789)
    lab.filter_in_sandbox("n1", "dn", "icmp")
    report = lab.verify()
    assert causes(report) == [
        "icmp is filtered on dn at n1: tcp, udp cross, so VXLAN works",
        "overlay data (VXLAN, udp/4789) is blocked to and from n2",
    ]
    all_failures_explained(report)


# --- gossip ------------------------------------------------------------------------------


def test_gossip_dropped_on_one_node(lab: FakeLab) -> None:
    lab.drop("n2", "tcp", 7946)
    lab.drop("n2", "udp", 7946)
    report = lab.verify()
    assert failed_checks(report) == {"underlay.gossip"}
    assert {(r.source, r.target) for r in report.failed} == {("n1", "n2"), ("n3", "n2")}
    [found] = report.diagnosis
    assert found.cause == "serf gossip to n2 is blocked (tcp+udp 7946)"
    assert found.nodes == ["n2"]
    assert found.checks == ["underlay.gossip"]


def test_gossip_dropped_on_two_nodes_one_diagnosis_each(lab: FakeLab) -> None:
    for node in ("n2", "n3"):
        lab.drop(node, "tcp", 7946)
    assert causes(lab.verify()) == [
        "serf gossip to n2 is blocked (tcp+udp 7946)",
        "serf gossip to n3 is blocked (tcp+udp 7946)",
    ]


# --- a node cut off the lab switch -------------------------------------------------------


def test_node_cut_off_is_one_diagnosis(lab: FakeLab) -> None:
    lab.cut_off("n2")
    report = lab.verify()
    assert {"underlay.api", "underlay.gossip", "kv.reachable", *DATA} <= failed_checks(report)
    assert all("n2" in r.nodes for r in report.failed)
    assert "engines.api" not in failed_checks(report)  # its engine answers on its own socket
    [found] = report.diagnosis
    assert found.cause == "n2 is cut off the lab network"
    assert found.nodes == ["n2"]
    assert "nor the KV store" in found.detail
    all_failures_explained(report)


def test_cut_off_node_whose_registration_expired(lab: FakeLab) -> None:
    lab.cut_off("n2")
    lab.expire_registrations()
    report = lab.verify()
    assert [r.target for r in failing(report, "kv.registered")] == ["n2"]
    assert causes(report) == ["n2 is cut off the lab network"]
    all_failures_explained(report)


def test_cut_off_node_in_a_two_node_lab_blames_only_that_node(start_lab: StartLab) -> None:
    lab = start_lab(("n1", "n2"))
    lab.cut_off("n2")
    report = lab.verify()
    assert causes(report) == ["n2 is cut off the lab network"]
    assert report.diagnosis[0].nodes == ["n2"]
    all_failures_explained(report)


def test_engine_port_dropped_everywhere_is_not_a_cut_off_node(lab: FakeLab) -> None:
    """Every underlay.api pair failing while everything else works: no node is cut off."""
    for node in ("n1", "n2", "n3"):
        lab.drop(node, "tcp", 2376)
    report = lab.verify()
    assert failed_checks(report) == {"underlay.api"}
    assert causes(report) == ["6 underlay.api failure(s)"]


# --- the KV store --------------------------------------------------------------------------


KV_DOWN_CHECKS = ["discovery.endpoints", "kv.reachable", "kv.registered", "networks.present"]


def test_kv_store_down(lab: FakeLab) -> None:
    lab.stop_kv()
    report = lab.verify()
    # The apps' registry cannot be read either: discovery.endpoints is not tested.
    assert failed_checks(report) == {*KV_DOWN_CHECKS}
    [found] = report.diagnosis
    assert found.cause == "the KV store (etcd on kv) is down or unreachable"
    assert found.nodes == ["kv"]
    assert found.checks == KV_DOWN_CHECKS


def test_kv_store_that_accepts_connections_but_never_answers_is_named(lab: FakeLab) -> None:
    lab.hang_kv()  # kill -STOP: its port still completes TCP handshakes
    report = lab.verify()
    reach = failing(report, "kv.reachable")
    assert len(reach) == 3
    for r in reach:
        assert r.details["connected"] and not r.details["answered"]
        assert r.message.startswith("connected, but etcd does not answer: no answer to GET /health")
    assert failed_checks(report) == {*KV_DOWN_CHECKS}
    [found] = report.diagnosis
    assert found.cause == "the KV store (etcd on kv) does not answer"
    assert found.nodes == ["kv"]
    assert found.checks == KV_DOWN_CHECKS


def test_a_healthy_store_answers_in_its_own_protocol(lab: FakeLab) -> None:
    [result, *_] = [r for r in lab.verify().results if r.check == "kv.reachable"]
    assert result.status == "pass"
    assert result.message == 'connected; GET /health: {"health":"true","reason":""}'


def test_kv_unreachable_from_one_node_is_not_the_kv_store_down(lab: FakeLab) -> None:
    lab.drop("kv", "tcp", 2379, source="n1")
    report = lab.verify()
    assert [r.source for r in failing(report, "kv.reachable")] == ["n1"]
    assert not any("down" in c for c in causes(report))
    assert causes(report) == ["n1 cannot reach the KV store (etcd on kv)"]
    assert report.diagnosis[0].nodes == ["n1"] and report.diagnosis[0].rule == "kv_unreachable_from"


def test_network_missing_on_one_node_blames_that_node(lab: FakeLab) -> None:
    lab.drop("kv", "tcp", 2379, source="n1")
    report = lab.verify()
    # The overlays missing on n1 follow from its lost store: one cause, on n1.
    [networks] = [d for d in report.diagnosis if "networks.present" in d.checks]
    assert networks.nodes == ["n1"]


# --- dead engines --------------------------------------------------------------------------


def test_dead_engine_is_one_cause_that_explains_what_it_left_untested(lab: FakeLab) -> None:
    lab.kill_engine("n3")
    report = lab.verify()
    assert not report.ok
    [api] = failing(report, "engines.api")
    assert (api.target, api.message) == ("n3", "dockerd on n3 is not running")
    [no_probes] = failing(report, "probes.running")
    assert no_probes.target == "n3" and "no probe runs on n3" in no_probes.message
    untested = [r for r in report.results if r.status == "error"]
    assert {r.check for r in untested} == {
        "engines.advertise",
        "networks.present",
        "networks.peers",
        "underlay.members",  # the log a dead engine left is no view of today's cluster
    }
    assert {r.details["untested_because"] for r in untested} == {"engines.api"}
    assert not any(r.status == "skip" for r in report.results if "n3" in r.nodes)
    assert not set(failed_checks(report)) & {*DATA, "kv.reachable"}
    [found] = report.diagnosis
    assert found.cause == "the engine on n3 is down"
    assert found.nodes == ["n3"]
    assert found.detail.startswith("dockerd on n3 is not running. it exited")
    assert {"probes.running", "engines.advertise", "networks.present"} <= set(found.checks)
    all_failures_explained(report)


def test_an_engine_that_believes_forwarding_is_off_is_not_down(lab: FakeLab) -> None:
    lab.start_engine_before_forwarding("n2")
    report = lab.verify()
    [api] = failing(report, "engines.api")
    assert (api.target, api.details["ipv4_forwarding"]) == ("n2", False)
    assert "believes IPv4 forwarding is off" in api.message
    assert causes(report) == ["1 engine(s) believe IPv4 forwarding is off"]
    assert report.diagnosis[0].nodes == ["n2"]
    assert "`invoke up`" in report.diagnosis[0].detail
    all_failures_explained(report)


def test_no_overlay_passes_when_no_engine_could_show_it(lab: FakeLab) -> None:
    """Every engine dead: an overlay is on "0 engines", which is no pass, only untested."""
    for node in lab.engine_nodes:
        lab.kill_engine(node)
    report = lab.verify()
    present = [r for r in report.results if r.check == "networks.present"]
    assert present and all(r.status == "error" for r in present)
    assert causes(report) == [f"the engine on {n} is down" for n in lab.engine_nodes]


def test_two_dead_engines_two_diagnoses(lab: FakeLab) -> None:
    lab.kill_engine("n2")
    lab.kill_engine("n3")
    report = lab.verify()
    # mongo is placed on n2: not tested, and filed under n2's dead engine.
    [mongo] = [r for r in report.results if r.check == "stacks.running" and r.target == "n2"]
    assert mongo.status == "error" and mongo.details["untested_because"] == "engines.api"
    assert causes(report) == ["the engine on n2 is down", "the engine on n3 is down"]
    assert "stacks.running" in report.diagnosis[0].checks
    all_failures_explained(report)


def test_dead_engine_whose_registration_expired_is_still_one_cause(lab: FakeLab) -> None:
    lab.kill_engine("n3")
    lab.expire_registrations()
    assert causes(lab.verify()) == ["the engine on n3 is down"]


def test_engines_that_die_during_verify_are_the_cause_not_a_firewall(lab: FakeLab) -> None:
    """The zk lab's first verify: engines.api passes, then verify's probes join the
    overlay and both engines panic; the checks after that find closed ports."""
    lab.panic_on_overlay_join("n2")
    lab.panic_on_overlay_join("n3")
    report = lab.verify()
    dead = {r.target: r for r in failing(report, "engines.api")}
    assert sorted(dead) == ["n2", "n3"]
    for node, result in dead.items():
        assert result.details["died_during_verify"]
        # The death, where it happened and what set it off.
        assert result.message.startswith(f"dockerd on {node} crashed: panic: runtime error")
        assert "libnetwork.(*endpointCnt).Key" in result.message
        assert "processEndpointCreate" in result.message
        assert "died while verify started its probe containers on dn, other there" in (
            result.message
        )
        assert "Connection aborted" in result.message
    # Passes measured before the deaths are looked at again: none that tested a dead
    # engine remains (its registration outlives it, as on the real lab, until its TTL).
    assert not [
        (r.check, r.subject)
        for r in report.results
        if r.status == "pass" and r.target in dead and not r.check.startswith("kv.")
    ]
    assert {r.status for r in report.results if r.check == "underlay.gossip"} == {"pass", "fail"}
    assert causes(report) == [
        "the engine on n2 died during verify",
        "the engine on n3 died during verify",
    ]
    assert not any("7946" in d.cause + d.detail for d in report.diagnosis)
    all_failures_explained(report)


def test_an_engine_dead_before_verify_is_not_said_to_die_during_it(lab: FakeLab) -> None:
    lab.panic_on_overlay_join("n3")
    lab.verify()
    report = lab.verify()  # the second verify finds it dead from the start
    [api] = failing(report, "engines.api")
    assert not api.details["died_during_verify"] and "during" not in api.message
    assert causes(report) == ["the engine on n3 is down"]


def test_dead_engine_and_blocked_gossip_elsewhere(lab: FakeLab) -> None:
    lab.kill_engine("n3")
    lab.drop("n1", "tcp", 7946)
    assert causes(lab.verify()) == [
        "the engine on n3 is down",
        "serf gossip to n1 is blocked (tcp+udp 7946)",
    ]


# --- engines advertising the wrong address -------------------------------------------------


ADVERTISE_CHECKS = {
    "engines.advertise",
    "kv.registered",
    "networks.peers",  # engines that never gossip learn no peer
    "underlay.gossip",
    "underlay.members",
    *DATA,
}


def test_nat_lab_where_every_engine_advertises_its_nat_address(start_lab: StartLab) -> None:
    lab = start_lab(("n1", "n2"), nat=True)  # tests/testdata/labs/faults-nat.yml
    report = lab.verify()
    assert len(failing(report, "engines.advertise")) == 2
    assert not failed_checks(report) & {"engines.api", "kv.reachable", "networks.present"}
    [found] = report.diagnosis
    assert found.cause == "2 engine(s) advertise an address their peers cannot reach"
    assert found.nodes == ["n1", "n2"]
    assert f"{NAT_ADDRESS}:2376" in found.detail
    assert "cluster-advertise: eth1:2376" in found.detail
    assert set(found.checks) == ADVERTISE_CHECKS


def test_three_engines_advertising_their_nat_address(start_lab: StartLab) -> None:
    report = start_lab(nat=True).verify()
    assert causes(report) == ["3 engine(s) advertise an address their peers cannot reach"]
    assert report.diagnosis[0].nodes == ["n1", "n2", "n3"]
    assert set(report.diagnosis[0].checks) == ADVERTISE_CHECKS


def test_wrong_advertise_on_one_node_leaves_other_failures_alone(lab: FakeLab) -> None:
    """Only failures involving the misadvertising node are explained by it."""
    lab.misadvertise("n1", f"{NAT_ADDRESS}:2376")
    lab.block_same_host("n3", "tcp")
    report = lab.verify()
    assert causes(report) == [
        "1 engine(s) advertise an address their peers cannot reach",
        "2 connectivity.tcp failure(s)",
    ]
    assert [d.nodes for d in report.diagnosis] == [["n1"], ["n3"]]


def test_engine_restarted_advertising_docker0_is_told_its_own_value(lab: FakeLab) -> None:
    # Restarted by hand with docker0:2376 in its daemon.json; the spec says eth1:2376.
    lab.misadvertise("n3", "172.17.0.1:2376", configured="docker0:2376")
    report = lab.verify()
    [advertise] = failing(report, "engines.advertise")
    assert "cluster-advertise docker0:2376 (its daemon.json), not the spec's eth1:2376" in (
        advertise.hint
    )
    assert "names the wrong interface" not in advertise.hint
    assert causes(report) == ["1 engine(s) advertise an address their peers cannot reach"]


def test_an_engine_on_another_store_is_not_called_a_wrong_advertise(lab: FakeLab) -> None:
    lab.use_other_store("n1", "etcd://192.168.97.99:2379")
    report = lab.verify()
    [config] = failing(report, "engines.advertise")
    assert config.message.startswith("cluster-store is etcd://192.168.97.99:2379")
    assert not any("advertise an address" in c for c in causes(report))
    # One cause, and every symptom on n1 (no overlays, no probes, web gone) filed under it.
    [found] = report.diagnosis
    assert found.cause == "1 engine(s) run with another cluster store than the spec's"
    assert found.nodes == ["n1"] and "etcd://192.168.97.99:2379" in found.detail
    assert {"probes.running", "networks.present", "stacks.running"} <= set(found.checks)
    all_failures_explained(report)


# --- gossip islands are in test_serf_view.py; stacks, names, ports, probes ----------------


def test_published_port_firewalled_on_its_node_blames_that_node_only(lab: FakeLab) -> None:
    lab.drop("n1", "tcp", 80)  # web (on n1) publishes 80 -> 5000
    report = lab.verify()
    assert failed_checks(report) == {"ports.published"}
    assert {(r.source, r.target) for r in report.failed} == {("n2", "n1"), ("n3", "n1")}
    [found] = report.diagnosis
    assert found.cause == "2 published port(s) do not answer"
    assert found.nodes == ["n1"]
    assert found.checks == ["ports.published"]


def test_stale_dns_record_of_a_stack_container(lab: FakeLab) -> None:
    lab.leave_stale_record("mongo", "10.0.9.250")
    report = lab.verify()
    assert failed_checks(report) == {"names.resolve"}
    assert all("stale address" in r.message for r in report.failed)
    [found] = report.diagnosis
    # Every name of mongo: its container name, its id alias and mongo.dn.
    assert found.cause == "3 stack names resolve wrongly from other hosts"
    assert found.nodes == ["n2"]


def test_stale_dns_record_of_a_probe_is_not_called_vxlan(lab: FakeLab) -> None:
    lab.leave_stale_record("probe-dn-n2", "10.0.9.250")
    report = lab.verify()
    assert failed_checks(report) == {"connectivity.dns", "connectivity.tcp"}
    [found] = report.diagnosis
    assert found.cause == "2 probe name lookups fail"  # from n1 and n3; by address all pass
    assert found.nodes == ["n2"] and "stale record" in found.detail
    assert found.checks == ["connectivity.dns", "connectivity.tcp"]
    all_failures_explained(report)


def test_a_second_container_carrying_a_stack_alias_is_blamed_not_the_stack(lab: FakeLab) -> None:
    # mongo runs on n2; someone starts another container on n3 with the alias mongo.
    lab.run_with_alias("n3", "mongo-copy", "dn", alias="mongo")
    report = lab.verify()
    wrong = failing(report, "names.resolve")
    assert wrong and all(r.details["name"] in ("mongo", "mongo.dn") for r in wrong)
    assert {r.target for r in wrong} == {"n3"}
    assert all("mongo-copy on n3, which answers to" in r.message for r in wrong)
    [found] = report.diagnosis
    assert found.nodes == ["n3"]
    assert "stale" not in found.detail and "--alias" in found.detail


def test_stack_service_not_running(lab: FakeLab) -> None:
    lab.stop_service("demo", "mongo")
    report = lab.verify()
    assert failed_checks(report) == {"stacks.running"}
    [found] = report.diagnosis
    assert found.cause == "1 stack service(s) do not run where the spec places them"
    assert found.nodes == ["n2"]


def test_paused_stack_container_is_not_running_and_its_port_does_not_answer(
    lab: FakeLab,
) -> None:
    lab.pause("demo_web_1")  # docker pause: listed as up, its kernel still accepts
    report = lab.verify()
    assert failed_checks(report) == {"stacks.running", "ports.published", "advertise.address"}
    [running] = failing(report, "stacks.running")
    assert running.message == "demo_web_1 is paused" and running.target == "n1"
    assert {(r.source, r.target) for r in failing(report, "ports.published")} == {
        ("n2", "n1"),
        ("n3", "n1"),
    }
    assert all("answers nothing" in r.message for r in failing(report, "ports.published"))
    [untested] = failing(report, "advertise.address")  # no exec into a paused container
    assert untested.status == "error" and untested.details["untested_because"] == "stacks.running"
    [found] = report.diagnosis
    assert found.cause == "demo/web on n1 does not serve: demo_web_1 is paused"
    assert found.nodes == ["n1"] and "docker unpause" in found.detail
    all_failures_explained(report)


def test_stack_container_cut_from_its_overlay(lab: FakeLab) -> None:
    lab.disconnect("demo_web_1", "dn")  # docker network disconnect dn demo_web_1
    report = lab.verify()
    assert failed_checks(report) == {
        "stacks.running",
        "names.resolve",
        "ports.published",
        "advertise.address",
    }
    [running] = failing(report, "stacks.running")
    assert running.message == "demo_web_1 is not on dn"
    # Its names and where it advertises are not tested, and say why; its port is tested.
    untested = [r for r in report.failed if r.status == "error"]
    assert {r.check for r in untested} == {"names.resolve", "advertise.address"}
    assert {r.details["untested_because"] for r in untested} == {"stacks.running"}
    assert len(failing(report, "ports.published")) == 2
    [found] = report.diagnosis
    assert found.cause == "demo/web on n1 does not serve: demo_web_1 is not on dn"
    assert found.nodes == ["n1"]
    all_failures_explained(report)


def test_a_name_of_two_containers_resolves_to_both(lab: FakeLab) -> None:
    second = lab.scale("demo", "web")
    report = lab.verify()
    assert report.ok, [(r.subject, r.message) for r in report.failed]
    [web] = [r for r in report.results if r.check == "names.resolve" and r.details["name"] == "web"]
    assert web.details["answers"] == sorted(
        [lab.container("demo_web_1").networks["dn"], second.networks["dn"]]  # type: ignore[union-attr]
    )


def test_node_that_cannot_start_its_probes(lab: FakeLab) -> None:
    lab.lose_probe_image("n3")
    report = lab.verify()
    assert failed_checks(report) == {"probes.running"}
    [result] = report.failed
    assert "no space left on device" in result.message
    [found] = report.diagnosis
    assert found.cause == "1 node(s) run no probes: no path to or from them is tested"
    assert found.nodes == ["n3"]


def test_a_removed_probe_is_started_again(lab: FakeLab) -> None:
    lab.remove(lab.container("probe-dn-n2"))  # type: ignore[arg-type]
    report = lab.verify()
    assert report.ok and report.diagnosis == []
    assert lab.container("probe-dn-n2") is not None


def test_app_advertising_its_docker_gwbridge_address(start_lab: StartLab) -> None:
    lab = start_lab(advertise={"web": "java-enumeration"})
    report = lab.verify()
    assert failed_checks(report) == {"advertise.address"}
    [result] = report.failed
    assert result.details["picked"]["network"] == "docker_gwbridge"
    assert "that is mongo on n2's own docker_gwbridge" in result.message
    [found] = report.diagnosis
    assert found.cause == "1 app(s) would advertise an address their peers cannot reach"
    assert found.nodes == ["n1"]


def test_an_app_registered_at_its_overlay_address_answers_from_the_other_hosts(
    lab: FakeLab,
) -> None:
    lab.register_app("demo_web_1", "fee-service", 5000)
    report = lab.verify()
    assert report.ok, [(r.check, r.subject, r.message) for r in report.failed]
    [endpoint] = [r for r in report.results if r.check == "discovery.endpoints"]
    assert endpoint.status == "pass" and endpoint.message == "health /health answers from n2, n3"


def test_apps_that_registered_their_docker_gwbridge_address_are_one_cause(lab: FakeLab) -> None:
    lab.register_app("demo_web_1", "fee-service-naive", 5000, leg="gwbridge")
    report = lab.verify()
    assert failed_checks(report) == {"discovery.endpoints"}
    [result] = report.failed
    web = lab.container("demo_web_1")
    assert web is not None
    assert result.details["gwbridge"] is True
    assert result.details["registered"] == f"{web.gwbridge}:5000"
    assert f"it registered {web.gwbridge}, not its overlay address" in result.message
    [cause] = report.diagnosis
    assert "registered their docker_gwbridge address" in cause.cause
    assert cause.nodes == ["n1"] and cause.checks == ["discovery.endpoints"]


def test_a_registered_endpoint_that_does_not_answer_is_the_checks_own_cause(
    lab: FakeLab,
) -> None:
    # Its overlay address, which the other hosts reach; the app answers nothing there.
    lab.register_app("demo_web_1", "fee-service", 5000, serving=False)
    report = lab.verify()
    assert failed_checks(report) == {"discovery.endpoints"}
    assert report.failed[0].details["gwbridge"] is False
    [other] = report.diagnosis
    assert other.cause == "1 registered endpoint(s) do not answer from other hosts"


def test_overlays_joined_by_a_connected_probe(lab: FakeLab) -> None:
    lab.connect("probe-dn-n1", "other")
    report = lab.verify()
    assert failed_checks(report) == {"isolation.overlays"}
    leaks = report.failed
    assert {(r.source, r.network, r.details["to_network"]) for r in leaks} == {
        ("n1", "dn", "other")
    }
    assert {r.target for r in leaks} == {"n1", "n2", "n3"}
    [found] = report.diagnosis
    assert found.cause == "overlays that should be isolated are joined (3 paths)"
    assert found.nodes == ["n1"]  # they all start from n1's probe


def test_per_check_detail_lists_three_subjects_then_counts(lab: FakeLab) -> None:
    lab.connect("probe-dn-n1", "other")
    lab.connect("probe-dn-n2", "other")
    report = lab.verify()
    [found] = report.diagnosis
    assert found.cause == "overlays that should be isolated are joined (6 paths)"
    first = [r.subject for r in report.failed[:3]]
    assert found.detail.startswith("; ".join(first) + " (+3 more): ")


# --- swarm mode: no KV store; overlays, gossip and the quorum are the swarm's ---------------


@pytest.fixture
def start_swarm(tmp_path: Path) -> StartLab:
    """start_swarm(managers, workers) -> a healthy swarm-mode fake lab with nothing
    deployed (tests/testdata/labs/swarm-idle.yml: one attachable overlay, appnet)."""

    def start(
        managers: tuple[str, ...] = ("mgr1",), workers: tuple[str, ...] = ("wrk1", "wrk2")
    ) -> FakeLab:
        return FakeLab(swarm_lab_spec(managers, workers), tmp_path / "state", SWARM_IDLE_YML)

    return start


def no_kv_wording(report: VerifyReport) -> None:
    """A lab without a KV store is never told to look at one."""
    for d in report.diagnosis:
        assert "KV" not in d.cause + d.detail and "kv." not in d.detail, d


def test_healthy_swarm_lab_passes_and_checks_its_gossip(start_swarm: StartLab) -> None:
    report = start_swarm().verify()
    assert report.ok, [(r.check, r.subject, r.message) for r in report.failed]
    assert {r.status for r in report.results if r.check == "underlay.gossip"} == {"pass"}
    assert report.diagnosis == []


def test_swarm_overlay_not_yet_used_on_a_worker_is_no_failure(start_swarm: StartLab) -> None:
    """A swarm overlay shows on a worker only once something there uses it: a worker
    whose probes cannot start does not list it, and only the probes are the finding."""
    lab = start_swarm()
    lab.lose_probe_image("wrk1")
    report = lab.verify()
    assert failed_checks(report) == {"probes.running"}
    [present] = [r for r in report.results if r.check == "networks.present"]
    assert present.status == "pass" and "not used on wrk1 yet" in present.message
    assert causes(report) == ["1 node(s) run no probes: no path to or from them is tested"]
    no_kv_wording(report)


def test_swarm_gossip_dropped_on_a_worker(start_swarm: StartLab) -> None:
    """tcp+udp 7946 dropped on wrk2: the others drop its containers' names. One cause,
    the gossip port, never a KV store or VXLAN."""
    lab = start_swarm()
    lab.drop("wrk2", "tcp", 7946)
    lab.drop("wrk2", "udp", 7946)
    report = lab.verify()
    gossip = failing(report, "underlay.gossip")
    assert {(r.source, r.target) for r in gossip} == {("mgr1", "wrk2"), ("wrk1", "wrk2")}
    assert {"connectivity.dns", "connectivity.tcp"} <= failed_checks(report)
    [found] = report.diagnosis
    assert found.cause == "swarm gossip to wrk2 is blocked (tcp+udp 7946)"
    assert found.nodes == ["wrk2"]
    assert {"underlay.gossip", "connectivity.dns", "connectivity.tcp"} <= set(found.checks)
    all_failures_explained(report)
    no_kv_wording(report)
    dns = failing(report, "connectivity.dns")
    assert dns and all("KV" not in r.hint and "7946" in r.hint for r in dns)


def test_swarm_lost_quorum_is_a_finding_that_names_the_manager_down(
    start_swarm: StartLab,
) -> None:
    """Two managers, m2's engine killed: no leader. That is the finding, naming m2, and
    what no manager could list follows from it, not 'could not be tested'."""
    lab = start_swarm(("m1", "m2"), ("w1", "w2"))
    lab.kill_engine("m2")
    report = lab.verify()
    [quorum] = [r for r in failing(report, "swarm.nodes") if r.subject == "quorum"]
    assert quorum.message.startswith("no leader: 1 of 2 managers up")
    assert quorum.nodes == ["m2"] and quorum.target == "m2"
    assert causes(report) == ["the engine on m2 is down", "no leader: 1 of 2 managers up"]
    assert report.diagnosis[1].nodes == ["m2"]
    assert "swarm.nodes" in report.diagnosis[1].checks
    all_failures_explained(report)
    explained = {c for d in report.diagnosis for c in d.checks}
    assert {r.check for r in report.results if r.status == "error"} <= explained
    no_kv_wording(report)


def test_swarm_quorum_lost_a_moment_ago_names_the_manager_down(start_swarm: StartLab) -> None:
    """Right after the kill the leader still lists the nodes: the quorum it lacks is m2,
    not m1, the manager that counted."""
    lab = start_swarm(("m1", "m2"), ("w1", "w2"))
    lab.kill_manager_just_now("m2")
    report = lab.verify()
    assert causes(report) == [
        "the engine on m2 is down",
        "no manager quorum: 1 of 2 managers reachable",
    ]
    assert report.diagnosis[1].nodes == ["m2"]
    all_failures_explained(report)
    no_kv_wording(report)


def test_swarm_manager_down_with_the_quorum_kept_blames_that_manager(
    start_swarm: StartLab,
) -> None:
    lab = start_swarm(("m1", "m2", "m3"), ("w1",))
    lab.kill_engine("m3")
    report = lab.verify()
    [quorum] = [r for r in report.results if r.check == "swarm.nodes" and r.subject == "quorum"]
    assert quorum.status == "pass"
    [node] = failing(report, "swarm.nodes")
    assert node.target == "m3"
    # The swarm marking m3 down follows from its dead engine: one cause, not two.
    [found] = report.diagnosis
    assert found.cause == "the engine on m3 is down" and found.nodes == ["m3"]
    assert "swarm.nodes" in found.checks
    all_failures_explained(report)


def test_swarm_worker_cut_off_is_that_cause_only(start_swarm: StartLab) -> None:
    """A worker cut off the lab network: the managers mark it down. That follows from the
    cut, named once on the worker, not as a second cause about swarm nodes."""
    lab = start_swarm(("m1", "m2", "m3"), ("w1", "w2"))
    lab.cut_off("w2")
    report = lab.verify()
    assert [r.target for r in failing(report, "swarm.nodes")] == ["w2"]
    [found] = report.diagnosis
    assert (found.rule, found.nodes) == ("cut_off_nodes", ["w2"])
    assert "swarm.nodes" in found.checks
    all_failures_explained(report)
    no_kv_wording(report)


def test_swarm_worker_down_is_its_dead_engine_only(start_swarm: StartLab) -> None:
    """A worker's engine stopped: the managers mark it down. That follows from the dead
    engine, named once on the worker; the quorum is kept and no other cause is named."""
    lab = start_swarm(("m1", "m2", "m3"), ("w1", "w2"))
    lab.kill_engine("w2")
    report = lab.verify()
    [node] = failing(report, "swarm.nodes")
    assert node.target == "w2"
    [found] = report.diagnosis
    assert (found.rule, found.cause, found.nodes) == (
        "dead_engines",
        "the engine on w2 is down",
        ["w2"],
    )
    assert "swarm.nodes" in found.checks
    all_failures_explained(report)
    no_kv_wording(report)


@pytest.fixture
def swarm_stack(tmp_path: Path) -> FakeLab:
    """tests/testdata/labs/swarm.yml: its demo stack deployed with VIPs (web on w1, api
    on w2), as `up` deploys it on a kernel with IPVS."""
    return FakeLab(load_spec(SWARM_YML), tmp_path / "state", SWARM_YML)


def vip_results(report: VerifyReport) -> list[CheckResult]:
    return [r for r in report.results if r.check == "swarm.services" and "vip" in r.details]


def test_healthy_swarm_stack_connects_to_every_vip(swarm_stack: FakeLab) -> None:
    report = swarm_stack.verify()
    assert report.ok, [(r.check, r.subject, r.message) for r in report.failed]
    vips = vip_results(report)
    assert {(r.source, r.details["port"]) for r in vips} == {
        (n, p) for n in ("m1", "m2", "w1", "w2") for p in (5000, 8080)
    }
    assert {r.status for r in vips} == {"pass"} and {r.details["ipvs"] for r in vips} == {True}


def test_vips_failing_without_ipvs_are_one_cause(swarm_stack: FakeLab) -> None:
    swarm_stack.lose_ipvs()
    report = swarm_stack.verify()
    assert failed_checks(report) == {"swarm.services"}
    failed = failing(report, "swarm.services")
    assert failed == vip_results(report) and len(failed) == 8  # 4 probes, 2 VIPs
    assert {r.details["ipvs"] for r in failed} == {False}
    assert [d.cause for d in report.diagnosis] == [
        "the kernel has no IPVS: 8 swarm VIP path(s) cannot work"
    ]
    found = report.diagnosis[0]
    assert found.nodes == ["m1", "m2", "w1", "w2"] and "endpoint_mode: dnsrr" in found.detail
    # The names still resolve to their VIPs: DNS is not what fails.
    resolved = [r for r in report.results if r.check == "swarm.services" and "vip" not in r.details]
    assert len(resolved) == 4 and {r.status for r in resolved} == {"pass"}


def test_a_dead_vip_with_ipvs_there_is_not_the_kernels_fault(swarm_stack: FakeLab) -> None:
    [web] = [c for c in swarm_stack.containers if c.name.startswith("demo_web.1.")]
    swarm_stack.pause(web.name)  # its task answers nothing; the VIP hands connections to it
    report = swarm_stack.verify()
    dead = [r for r in vip_results(report) if r.status == "fail"]
    assert {(r.details["vip"], r.details["port"]) for r in dead} == {
        (swarm_stack.services["demo_web"]["dn"], 5000)
    }
    assert {r.details["ipvs"] for r in dead} == {True}
    # The service's own failure, not the kernel's.
    [own] = [d for d in report.diagnosis if "swarm.services" in d.checks]
    assert "IPVS" not in own.cause
    assert not [d.cause for d in report.diagnosis if "IPVS" in d.cause]


# --- checks that could not run ---------------------------------------------------------------


def test_a_crashing_check_is_an_error_that_could_not_be_tested(lab: FakeLab) -> None:
    report = lab.verify(crash={"underlay.gossip": RuntimeError("boom")})
    [error] = [r for r in report.results if r.check == "underlay.gossip"]
    assert error.status == "error"
    assert (error.details["exception"], error.details["error"]) == ("RuntimeError", "boom")
    assert not report.ok
    [found] = report.diagnosis
    assert found.cause == "1 result(s) could not be tested"
    assert found.checks == ["underlay.gossip"]


def test_engine_api_error_is_not_a_dead_engine(lab: FakeLab) -> None:
    lab.break_engine_api("n1")  # /_ping answers, /version and /info fail with a 500
    report = lab.verify()
    api = {r.target: r for r in report.results if r.check == "engines.api"}
    error = api["n1"]  # n1's own error; the others answer
    assert error.status == "error" and error.details["exception"] == "APIError"
    assert {n: r.status for n, r in api.items() if n != "n1"} == {"n2": "pass", "n3": "pass"}
    # engines.advertise and networks.peers read the same /info: not tested either.
    for check in ("engines.advertise", "networks.peers"):
        [other] = [r for r in report.results if r.check == check]
        assert other.status == "error"
    assert causes(report) == ["3 result(s) could not be tested"]


def test_crashed_kv_check_is_not_a_kv_outage(lab: FakeLab) -> None:
    report = lab.verify(crash={"kv.reachable": OSError("netns gone")})
    assert causes(report) == ["1 result(s) could not be tested"]


def test_a_crash_next_to_a_fault_is_reported_apart(lab: FakeLab) -> None:
    lab.stop_service("demo", "mongo")
    report = lab.verify(crash={"isolation.overlays": RuntimeError("boom")})
    assert causes(report) == [
        "1 stack service(s) do not run where the spec places them",
        "1 result(s) could not be tested",
    ]
    assert [d.checks for d in report.diagnosis] == [["stacks.running"], ["isolation.overlays"]]


# --- several faults, and diagnosis as a function -------------------------------------------


def test_each_failure_is_explained_by_exactly_one_diagnosis(lab: FakeLab) -> None:
    """n2 cut off and VXLAN dropped on n1: the n1-n3 pairs are the VXLAN cause's alone."""
    lab.cut_off("n2")
    lab.drop("n1", "udp", 4789)
    report = lab.verify()
    assert causes(report) == [
        "n2 is cut off the lab network",
        "overlay data (VXLAN, udp/4789) is blocked to and from n1, n3",
    ]


def test_diagnose_does_not_change_the_results(lab: FakeLab) -> None:
    lab.cut_off("n2")
    report = lab.verify()
    before = [r.as_dict() for r in report.results]
    assert diagnose(lab.spec, report.results) == diagnose(lab.spec, report.results)
    assert [r.as_dict() for r in report.results] == before


def test_rewording_a_subject_does_not_change_the_diagnosis(
    lab: FakeLab, monkeypatch: pytest.MonkeyPatch
) -> None:
    lab.drop("n2", "udp", 4789)
    lab.drop("n1", "tcp", 80)
    before = lab.verify()
    monkeypatch.setattr(probe_pairs, "subject", lambda a, b: "one probe to another")
    after = lab.verify()
    assert {r.subject for r in after.results if r.check in DATA} == {"one probe to another"}

    def summary(report: VerifyReport) -> list[tuple[str, list[str], list[str]]]:
        return [(d.cause, d.nodes, d.checks) for d in report.diagnosis]

    assert summary(after) == summary(before)
    assert causes(after) == [
        "overlay data (VXLAN, udp/4789) is blocked to and from n2",
        "2 published port(s) do not answer",
    ]


# --- reports carry the diagnosis -----------------------------------------------------------


@pytest.fixture
def diagnosed_report(lab: FakeLab) -> VerifyReport:
    lab.drop("n2", "tcp", 7946)
    return lab.verify()


def test_json_report_carries_the_diagnosis(diagnosed_report: VerifyReport) -> None:
    doc = report_to_dict(diagnosed_report)
    assert doc["ok"] is False
    [entry] = doc["diagnosis"]
    assert entry["cause"] == "serf gossip to n2 is blocked (tcp+udp 7946)"
    assert entry["nodes"] == ["n2"]
    assert entry["checks"] == ["underlay.gossip"]
    assert entry["rule"] == "gossip_blocked"  # what a fault's expected cause names
    assert set(entry) == {"cause", "detail", "nodes", "checks", "rule"}


def test_json_report_without_failures_has_empty_diagnosis(lab: FakeLab) -> None:
    assert report_to_dict(lab.verify())["diagnosis"] == []


def render(report: VerifyReport) -> str:
    console = Console(record=True, width=200, file=io.StringIO())
    print_report(report, console)
    return console.export_text()


def test_table_prints_the_diagnosis_after_the_failures(diagnosed_report: VerifyReport) -> None:
    text = render(diagnosed_report)
    assert " 1. serf gossip to n2 is blocked (tcp+udp 7946) (n2)" in text
    assert diagnosed_report.diagnosis[0].detail in " ".join(text.split())  # long details wrap
    assert text.index("diagnosis") > text.index("✗ underlay.gossip")
    assert text.index("diagnosis") < text.index("checks failed")


def test_table_numbers_several_diagnoses(diagnosed_report: VerifyReport) -> None:
    diagnosed_report.diagnosis.append(Diagnosis(cause="something else", detail="why"))
    text = render(diagnosed_report)
    assert " 2. something else\n" in text
    assert "    why" in text


def test_table_has_no_diagnosis_section_when_healthy(lab: FakeLab) -> None:
    assert "diagnosis" not in render(lab.verify())


# --- overlay peer entries and discovery ------------------------------------------------------


def test_unreadable_discovery_entry_is_the_engines_complaint_not_a_firewall(lab: FakeLab) -> None:
    lab.put_junk_in_discovery(restarted="n3")
    report = lab.verify()
    gossip = failing(report, "underlay.gossip")
    assert {r.target for r in gossip} == {"n3"}
    assert all(r.details["refused"] for r in gossip)
    first = report.diagnosis[0]
    assert first.cause == (
        "n3's engine does not gossip: discovery error: address garbage: missing port in address"
    )
    assert first.nodes == ["n3"]
    assert not any("firewall" in d.detail or "islands" in d.cause for d in report.diagnosis)
    assert causes(report) == [first.cause]
    all_failures_explained(report)


def test_gossip_refused_without_a_complaint_says_nothing_listens(lab: FakeLab) -> None:
    lab.put_junk_in_discovery(restarted="n3")
    lab.discovery_junk.clear()  # the log holds no discovery error
    report = lab.verify()
    assert causes(report) == ["n3's engine does not gossip (nothing listens on 7946)"]


def test_engine_that_joined_late_has_no_overlay_peer_entries(lab: FakeLab) -> None:
    lab.put_junk_in_discovery(restarted="n3")
    lab.remove_junk_from_discovery()  # serf starts, after every other container joined
    report = lab.verify()
    [peers] = [
        r for r in failing(report, "networks.peers") if r.target == "n3" and r.network == "dn"
    ]
    assert "no VXLAN peer entry for any of the" in peers.message
    assert causes(report) == ["no overlay peer entries on n3"]
    [found] = report.diagnosis
    assert found.nodes == ["n3"] and "`invoke up`" in found.detail
    assert "udp/4789" not in found.cause
    all_failures_explained(report)


def test_healthy_lab_holds_every_overlay_peer_entry(lab: FakeLab) -> None:
    peers = [r for r in lab.verify().results if r.check == "networks.peers"]
    assert {(r.target, r.network) for r in peers} == {
        (n, net) for n in ("n1", "n2", "n3") for net in ("dn", "other")
    }
    assert all(r.status == "pass" for r in peers)


def test_stale_peer_entry_for_a_free_address(lab: FakeLab) -> None:
    lab.leave_stale_peer_entry("n1", "dn", "10.0.9.200", next_on="n2")
    report = lab.verify()
    assert failed_checks(report) == {"networks.peers"}
    [stale] = failing(report)
    assert stale.target == "n1" and "10.0.9.200" in stale.message
    assert causes(report) == [
        "stale overlay peer entries on n1 (recycled addresses); restart n1's engine"
    ]


# --- classic swarm ------------------------------------------------------------------------------


@pytest.fixture
def classic(tmp_path: Path) -> FakeLab:
    return FakeLab(classic_lab_spec(), tmp_path / "state")


def test_healthy_classic_swarm_passes(classic: FakeLab) -> None:
    report = classic.verify()
    assert report.ok, [(r.check, r.subject, r.message) for r in report.failed]
    schedule = [r for r in report.results if r.check == "swarm.schedule"]
    assert {r.target for r in schedule} == {"master", "a", "b"}


def test_classic_stale_peer_entries_are_not_blamed_on_scheduling(classic: FakeLab) -> None:
    """a's agent came back, and a's overlay still sends master's scheduling address
    (10.0.26.254) to a itself: the probe the master starts on master cannot reach a."""
    classic.leave_stale_peer_entry("a", "dn", "10.0.26.254")
    report = classic.verify()
    [schedule] = failing(report, "swarm.schedule")
    assert schedule.target == "master" and schedule.details["unreached"] == ["a"]
    assert schedule.details["stale_on"] == ["a"]
    assert "a's overlay sends 10.0.26.254" in schedule.message
    assert causes(report) == [
        "stale overlay peer entries on a (recycled addresses); restart a's engine"
    ]
    assert report.diagnosis[0].nodes == ["a"]
    all_failures_explained(report)


def test_classic_schedule_alone_finds_the_stale_entry(classic: FakeLab) -> None:
    """Without networks.peers, swarm.schedule's own evidence (the unreached node's
    sandbox entry for the new container) names the same cause."""
    classic.leave_stale_peer_entry("a", "dn", "10.0.26.254")
    only = [c for c in ALL_CHECKS if c.id in ("probes.running", "swarm.schedule")]
    report = classic.verify(only)
    assert causes(report) == [
        "stale overlay peer entries on a (recycled addresses); restart a's engine"
    ]


def test_classic_probe_placed_right_but_cut_off_is_not_a_scheduling_fault(classic: FakeLab) -> None:
    # An unexplained failure to reach a: the master still scheduled right.
    only = [c for c in ALL_CHECKS if c.id in ("probes.running", "swarm.schedule")]
    classic.drop("a", "udp", 4789)
    report = classic.verify(only)
    assert causes(report) == ["containers the swarm master placed right cannot reach a"]
    assert report.diagnosis[0].nodes == ["a"]


def test_gossip_blocked_long_enough_to_be_declared_failed_is_still_one_cause(
    lab: FakeLab,
) -> None:
    """Serf marks a node it cannot gossip with failed within seconds: the views that lack
    it follow from the blocked port, not from a second cause (islands)."""
    lab.drop("n3", "tcp", 7946)
    lab.drop("n3", "udp", 7946)
    lab.split_gossip(("n1", "n2"), ("n3",))
    report = lab.verify()
    assert {"underlay.gossip", "underlay.members"} <= {r.check for r in failing(report)}
    assert [(d.cause, d.nodes) for d in report.diagnosis] == [
        ("serf gossip to n3 is blocked (tcp+udp 7946)", ["n3"])
    ]
    assert {"underlay.gossip", "underlay.members"} <= set(report.diagnosis[0].checks)


def test_containers_cut_from_their_dns_on_one_node_are_named_as_such(lab: FakeLab) -> None:
    """Every name looked up from n2's containers fails, by address everything crosses:
    the DNS inside n2's containers is silent. One cause, on n2, which explains the probe
    names, TCP by name and the stack names looked up from n2."""
    lab.dns_cut.add("n2")
    report = lab.verify()
    assert causes(report) == [
        "names do not resolve in n2's containers: their DNS (127.0.0.11) is silent"
    ]
    assert report.diagnosis[0].nodes == ["n2"]
    assert {r.source for r in failing(report, "connectivity.dns")} == {"n2"}
    assert not failing(report, "connectivity.icmp")
    all_failures_explained(report)


def test_lookups_failing_from_two_nodes_are_no_silent_dns_on_one(lab: FakeLab) -> None:
    lab.dns_cut |= {"n2", "n3"}
    report = lab.verify()
    assert not any("is silent" in c for c in causes(report))
    all_failures_explained(report)


def test_a_rule_that_crashes_is_said_and_the_others_still_run(
    lab: FakeLab, monkeypatch: pytest.MonkeyPatch
) -> None:
    from overlaylab.verify.diagnosis import rules

    def broken(_ev: object) -> list[Diagnosis]:
        raise IndexError("list index out of range")

    monkeypatch.setattr(rules, "RULES", [broken, *rules.RULES])
    lab.drop("n2", "udp", 4789)
    report = lab.verify()
    assert [d.rule for d in report.diagnosis] == ["rule_crashed", "data_plane_blocked"]
    assert "broken could not run" in report.diagnosis[0].cause
    assert "IndexError" in report.diagnosis[0].detail


def test_classic_scheduling_probes_take_the_same_address_on_every_verify(
    classic: FakeLab,
) -> None:
    """Each node's scheduling probe asks for its own address, verify after verify: a
    freed address never goes to a probe on another node, where an engine that missed
    the leave would send it to the wrong engine."""
    assert classic.verify().ok
    assert classic.verify().ok
    asked = [(run[5], run[run.index("--ip") + 1]) for run in classic.runs_through_master]
    assert sorted(asked) == sorted(
        [(f"constraint:node=={n}", a) for n, a in SCHEDULED_AT.items()] * 2
    )


SCHEDULED_AT = {"master": "10.0.26.254", "a": "10.0.26.253", "b": "10.0.26.252"}


def test_an_entry_sending_a_nodes_own_scheduling_address_home_is_no_fault(
    classic: FakeLab,
) -> None:
    """a keeps sending its own probe's address to itself after the probe is gone (a
    replayed join): the next probe there gets that address, so nothing is wrong."""
    classic.leave_stale_peer_entry("a", "dn", SCHEDULED_AT["a"])
    report = classic.verify()
    assert report.ok, [(r.check, r.subject, r.message) for r in report.failed]
    # Another node's scheduling address sent home is wrong: its probe cannot reach a.
    classic.leave_stale_peer_entry("a", "dn", SCHEDULED_AT["b"])
    report = classic.verify()
    [peers] = failing(report, "networks.peers")
    assert peers.target == "a" and peers.details["stale"] == [SCHEDULED_AT["b"]]
    assert causes(report) == [
        "stale overlay peer entries on a (recycled addresses); restart a's engine"
    ]


def test_a_scheduling_address_another_container_holds_is_not_insisted_on(
    classic: FakeLab,
) -> None:
    """A nearly full subnet gave master's scheduling address to a container: the probe
    is started without --ip, and scheduling is still tested."""
    classic.start_container(
        "a", "squatter", ["sleep", "3600"], ["dn"], {}, fixed={"dn": SCHEDULED_AT["master"]}
    )
    report = classic.verify()
    assert report.ok, [(r.check, r.subject, r.message) for r in report.failed]
    on_master = [r for r in classic.runs_through_master if "constraint:node==master" in r]
    assert on_master and all("--ip" not in r for r in on_master)


def test_a_start_the_master_never_answers_is_a_finding_the_cut_explains(
    classic: FakeLab,
) -> None:
    """b cut off: the master waits on b's engine and answers no start, on any node.
    Each is a failed result within the check's window, filed under the cut, not a
    check that crashed, nor a second cause."""
    classic.cut_off("b")
    report = classic.verify()
    schedule = [r for r in report.results if r.check == "swarm.schedule"]
    assert {r.target for r in schedule} == {"master", "a", "b"}
    assert all(r.status == "fail" and "no answer within" in r.message for r in schedule)
    assert all(r.details == {"hung": True} for r in schedule)
    assert causes(report) == ["b is cut off the lab network"]
    all_failures_explained(report)


def test_scheduling_probes_an_earlier_verify_left_are_cleared_first(classic: FakeLab) -> None:
    """A probe whose start the master answered late (its node was cut off) is there on
    the next verify: it is removed, and the new probe has a name of its own."""
    assert classic.verify().ok
    left = classic.start_container(
        "b", "ol-schedule-b-0ld000", ["sleep", "120"], ["dn"], {"overlaylab.schedule": "b"}
    )
    assert classic.verify().ok
    assert left not in classic.containers
    names = [run[run.index("--name") + 1] for run in classic.runs_through_master]
    assert len(set(names)) == len(names) == 6
    assert all(re.fullmatch(r"ol-schedule-(master|a|b)-[0-9a-f]{6}", n) for n in names)


def test_a_node_cut_from_the_store_loses_names_and_starts_on_its_overlays(
    classic: FakeLab,
) -> None:
    """b cannot reach the running store: its engine stops listing dn, answers its
    containers no name of another engine's container there, and the master cannot
    start a container on b on dn. One cause, on b, explains it all."""
    classic.drop("kv", "tcp", 2379, source="b")
    report = classic.verify()
    assert {r.source for r in failing(report, "connectivity.dns")} == {"b"}
    [on_b] = failing(report, "swarm.schedule")
    assert on_b.target == "b" and "network dn not found" in on_b.message
    assert causes(report) == ["b cannot reach the KV store (etcd on kv)"]
    all_failures_explained(report)


def test_stack_names_a_node_cut_from_the_store_no_longer_resolves_follow_from_it(
    lab: FakeLab,
) -> None:
    lab.drop("kv", "tcp", 2379, source="n1")
    report = lab.verify()
    lookups = failing(report, "names.resolve")
    assert lookups and all(r.details["seen"].get("n1") == [] for r in lookups)
    assert causes(report) == ["n1 cannot reach the KV store (etcd on kv)"]
    all_failures_explained(report)


def test_the_master_refusing_a_dead_engine_follows_from_it(classic: FakeLab) -> None:
    classic.kill_engine("b")
    report = classic.verify()
    [on_b] = failing(report, "swarm.schedule")
    assert on_b.target == "b" and "Cannot connect to the Docker daemon" in on_b.message
    assert causes(report) == ["the engine on b is down"]
    all_failures_explained(report)


@pytest.mark.parametrize(
    ("breaks", "rule"),
    [
        (lambda lab: lab.misadvertise("b", "10.0.2.15:2376"), "wrong_advertise"),
        (lambda lab: lab.put_junk_in_discovery("b"), "engine_not_gossiping"),
    ],
    ids=["advertise", "discovery-junk"],
)
def test_scheduling_probes_that_cannot_cross_follow_from_the_engine_that_breaks_them(
    classic: FakeLab, breaks: Callable[[FakeLab], None], rule: str
) -> None:
    """b advertises what no peer reaches, or never gossips: the master's new containers
    and b's cannot reach each other, as every other container cannot. One cause."""
    breaks(classic)
    report = classic.verify()
    assert failing(report, "swarm.schedule")
    assert [(d.rule, d.nodes) for d in report.diagnosis] == [(rule, ["b"])]
    all_failures_explained(report)


def test_paths_lost_once_the_others_declared_a_blocked_node_failed_follow_from_it(
    lab: FakeLab,
) -> None:
    """15 s into a gossip block on a real lab, the others' views lacked n3 and every
    path to and from n3 failed, while networks.peers passed (an engine asks for missing
    entries on demand). The paths follow from the blocked port: no VXLAN cause."""
    lab.drop("n3", "tcp", 7946)
    lab.drop("n3", "udp", 7946)
    lab.split_gossip(("n1", "n2"), ("n3",))
    report = lab.verify()
    results = [
        replace(r, status="pass", details={**r.details, "missing": [], "missing_nodes": []})
        if r.check == "networks.peers"
        else r
        for r in report.results
    ]
    assert any(r.check == "connectivity.icmp" and r.status == "fail" for r in results)
    found = diagnose(lab.spec, results)
    assert [(d.cause, d.nodes) for d in found] == [
        ("serf gossip to n3 is blocked (tcp+udp 7946)", ["n3"])
    ]
    assert "connectivity.icmp" in found[0].checks
