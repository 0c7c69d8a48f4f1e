"""diagnose() over results the real checks produce: a fake lab (tests/unit/fakelab.py)
is brought up healthy, one fault (or two) is injected as an operator would, every
check runs against it, and the diagnosis must name the one cause behind the failures.

The results are never written by hand, so a check that stops filling in the fields
diagnosis reads (source, target, network, path, details) fails these tests."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pytest
from fakelab import NAT_ADDRESS, FakeLab, fault_lab_spec
from rich.console import Console

from overlaylab.checks import connectivity
from overlaylab.checks.connectivity import HINT_DATAPLANE, HINT_MTU, HINT_SAME_HOST
from overlaylab.checks.diagnosis import Diagnosis, diagnose
from overlaylab.checks.result import CheckResult
from overlaylab.checks.verify import ALL_CHECKS, VerifyReport
from overlaylab.report.json_report import report_to_dict
from overlaylab.report.table import print_report

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


def test_kv_store_down(lab: FakeLab) -> None:
    lab.stop_kv()
    report = lab.verify()
    assert failed_checks(report) == {"kv.reachable", "kv.registered", "networks.present"}
    [found] = report.diagnosis
    assert found.cause == "the KV store (etcd on kv) is down or unreachable"
    assert found.nodes == ["kv"]
    assert found.checks == ["kv.reachable", "kv.registered", "networks.present"]


def test_kv_unreachable_from_one_node_is_not_the_kv_store_down(lab: FakeLab) -> None:
    lab.drop("kv", "tcp", 2379, source="n1")
    report = lab.verify()
    assert [r.source for r in failing(report, "kv.reachable")] == ["n1"]
    assert not any("KV store" in c for c in causes(report))
    assert causes(report) == [
        "2 overlay(s) are not the same network on every engine",
        "1 kv.reachable failure(s)",
    ]


def test_network_missing_on_one_node_blames_that_node(lab: FakeLab) -> None:
    lab.drop("kv", "tcp", 2379, source="n1")
    report = lab.verify()
    [networks] = [d for d in report.diagnosis if d.checks == ["networks.present"]]
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
    lab.break_engine_api("n1")  # /_ping answers, /version fails with a 500
    report = lab.verify()
    [error] = [r for r in report.results if r.check == "engines.api"]
    assert error.status == "error" and error.details["exception"] == "APIError"
    assert causes(report) == ["1 result(s) could not be tested"]


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
    monkeypatch.setattr(connectivity, "subject", lambda a, b: "one probe to another")
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
    assert set(entry) == {"cause", "detail", "nodes", "checks"}


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
