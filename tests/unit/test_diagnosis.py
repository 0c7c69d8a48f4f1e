"""diagnose(): synthetic results shaped like the real fault signatures (see
tests/integration/test_faults.py) boil down to the one cause behind them."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from itertools import permutations
from pathlib import Path

import pytest
from rich.console import Console

from overlaylab.checks.connectivity import HINT_DATAPLANE, HINT_MTU, HINT_SAME_HOST
from overlaylab.checks.diagnosis import Diagnosis, diagnose
from overlaylab.checks.result import CheckResult, Status
from overlaylab.checks.verify import VerifyReport
from overlaylab.report.json_report import report_to_dict
from overlaylab.report.table import print_report
from overlaylab.spec.loader import parse_spec
from overlaylab.spec.models import ClusterSpec

DATA = ("connectivity.icmp", "connectivity.tcp", "connectivity.udp", "mtu.df")
NAT_ADVERTISE = "10.0.2.15:2376"
ADVERTISE_HINT = (
    "10.0.2.15 is not the node's lab address: cluster-advertise names the wrong interface "
    "(eth0:2376)."
)

SPEC_HEAD = """\
apiVersion: overlaylab/v1
kind: Cluster
name: fl
lab:
  subnet: 192.168.97.0/24
kv:
  backend: etcd
  node: kv
networks:
  - name: dn
    subnet: 10.0.9.0/24
  - name: other
    subnet: 10.0.10.0/24
nodes:
  - name: kv
    roles: [kv]
"""


def make_spec(root: Path, engines: Iterable[str]) -> ClusterSpec:
    nodes = "".join(f"  - name: {n}\n" for n in engines)
    return parse_spec(SPEC_HEAD + nodes, source="inline", spec_dir=root)


@pytest.fixture(scope="module")
def spec3(tmp_path_factory: pytest.TempPathFactory) -> ClusterSpec:
    return make_spec(tmp_path_factory.mktemp("spec3"), ["n1", "n2", "n3"])


@pytest.fixture(scope="module")
def spec2(tmp_path_factory: pytest.TempPathFactory) -> ClusterSpec:
    return make_spec(tmp_path_factory.mktemp("spec2"), ["n1", "n2"])


# --- healthy results, shaped like the checks produce them ------------------------------


def _r(check: str, subject: str, nodes: list[str], **kw: object) -> CheckResult:
    return CheckResult(check=check, subject=subject, status="pass", nodes=nodes, **kw)  # type: ignore[arg-type]


def healthy(spec: ClusterSpec) -> list[CheckResult]:
    engines = [n.name for n in spec.engine_nodes]
    nets = [n.name for n in spec.networks]
    out: list[CheckResult] = []
    for n in engines:
        out.append(_r("engines.api", n, [n], message="engine 20.10.24 answers"))
    for n in engines:
        out.append(
            _r(
                "engines.advertise",
                n,
                [n],
                details={
                    "cluster_advertise": f"{spec.address_of(n)}:2376",
                    "expected_advertise": f"{spec.address_of(n)}:2376",
                },
            )
        )
    for n in engines:
        out.append(_r("kv.reachable", f"{n} -> etcd 192.168.97.10:2379", [n, "kv"]))
    for n in engines:
        out.append(_r("kv.registered", n, [n]))
    for check, port in (("underlay.api", 2376), ("underlay.gossip", 7946)):
        for a, b in permutations(engines, 2):
            out.append(_r(check, f"{a} -> {b}:{port}", [a, b]))
    for net in nets:
        out.append(_r("networks.present", net, sorted(engines)))
    for check in (*DATA[:1], "connectivity.dns", *DATA[1:]):
        for net in nets:
            for a, b in permutations(engines, 2):
                out.append(
                    _r(
                        check,
                        f"{a} -> {b} over {net}",
                        sorted({a, b}),
                        details={"path": "cross-host"},
                    )
                )
            for a in engines:
                out.append(
                    _r(
                        check,
                        f"{a} -> {a} (2nd probe) over {net}",
                        [a],
                        details={"path": "same-host"},
                    )
                )
    for n in engines:
        out.append(_r("names.resolve", f"mongo (demo/mongo on n2, dn) from {n}", sorted({n, "n2"})))
    for n in engines:
        if n != "n2":
            out.append(_r("ports.published", f"{n} -> n2:27017 (demo/mongo:27017)", [n, "n2"]))
    for a, b in permutations(engines, 2):
        out.append(_r("isolation.overlays", f"{a} on dn -> {b} on other", sorted({a, b})))
    return out


def breaking(
    results: list[CheckResult],
    checks: str | Iterable[str],
    when: Callable[[CheckResult], bool] = lambda r: True,
    status: Status = "fail",
    **fields: object,
) -> list[CheckResult]:
    """Turn the matching results into failures (in place); returns the ones changed."""
    wanted = {checks} if isinstance(checks, str) else set(checks)
    changed = []
    for r in results:
        if r.check in wanted and when(r):
            r.status = status
            for key, value in fields.items():
                if key == "details":
                    r.details.update(value)  # type: ignore[call-overload]
                else:
                    setattr(r, key, value)
            changed.append(r)
    return changed


def involves(node: str) -> Callable[[CheckResult], bool]:
    return lambda r: node in r.nodes


def cross_host_involving(node: str) -> Callable[[CheckResult], bool]:
    return lambda r: node in r.nodes and r.details.get("path") == "cross-host"


def causes(found: list[Diagnosis]) -> list[str]:
    return [d.cause for d in found]


def all_failures_explained(results: list[CheckResult], found: list[Diagnosis]) -> None:
    """Every failing check id is named by some diagnosis."""
    named = {c for d in found for c in d.checks}
    assert {r.check for r in results if r.failed} <= named


# --- one fault at a time ---------------------------------------------------------------


def test_healthy_results_diagnose_nothing(spec3: ClusterSpec) -> None:
    assert diagnose(spec3, healthy(spec3)) == []


def test_no_results_diagnose_nothing(spec3: ClusterSpec) -> None:
    assert diagnose(spec3, []) == []


def test_skips_are_not_failures(spec3: ClusterSpec) -> None:
    results = healthy(spec3)
    breaking(results, "names.resolve", status="skip")
    assert diagnose(spec3, results) == []


def test_vxlan_blocked_on_one_node(spec3: ClusterSpec) -> None:
    results = healthy(spec3)
    failed = breaking(results, DATA, cross_host_involving("n2"), hint=HINT_DATAPLANE)
    assert len(failed) == 4 * 2 * 4  # 4 data checks x 2 overlays x 4 pairs with n2
    found = diagnose(spec3, results)
    assert causes(found) == ["overlay data (VXLAN, udp/4789) is blocked to and from n2"]
    assert found[0].nodes == ["n2"]
    assert found[0].checks == sorted(DATA)
    assert "udp/4789" in found[0].detail


def test_vxlan_blocked_on_two_nodes_names_no_single_node(spec3: ClusterSpec) -> None:
    results = healthy(spec3)
    breaking(
        results,
        DATA,
        lambda r: r.details.get("path") == "cross-host" and r.nodes != ["n1", "n3"],
    )
    breaking(results, DATA, lambda r: r.details.get("path") == "cross-host" and "n3" in r.nodes)
    found = diagnose(spec3, results)
    assert causes(found) == ["overlay data (VXLAN, udp/4789) is blocked between the nodes"]
    assert found[0].nodes == []


def test_gossip_blocked_on_one_node(spec3: ClusterSpec) -> None:
    results = healthy(spec3)
    failed = breaking(results, "underlay.gossip", lambda r: r.nodes[1] == "n2")
    assert sorted(r.subject for r in failed) == ["n1 -> n2:7946", "n3 -> n2:7946"]
    found = diagnose(spec3, results)
    assert causes(found) == ["serf gossip to n2 is blocked (tcp+udp 7946)"]
    assert found[0].nodes == ["n2"]
    assert found[0].checks == ["underlay.gossip"]


def test_gossip_blocked_on_two_nodes_one_diagnosis_each(spec3: ClusterSpec) -> None:
    results = healthy(spec3)
    breaking(results, "underlay.gossip", lambda r: r.nodes[1] in ("n2", "n3"))
    assert causes(diagnose(spec3, results)) == [
        "serf gossip to n2 is blocked (tcp+udp 7946)",
        "serf gossip to n3 is blocked (tcp+udp 7946)",
    ]


def cut_off(results: list[CheckResult], node: str) -> None:
    """What a downed switch port does: every path from or to `node` fails."""
    breaking(results, ("underlay.api", "underlay.gossip"), involves(node))
    breaking(results, "kv.reachable", lambda r: r.nodes[0] == node)
    breaking(results, DATA, cross_host_involving(node))
    breaking(results, "connectivity.dns", cross_host_involving(node))
    breaking(results, "ports.published", involves(node))


def test_node_cut_off_is_one_diagnosis(spec3: ClusterSpec) -> None:
    results = healthy(spec3)
    cut_off(results, "n2")
    found = diagnose(spec3, results)
    assert causes(found) == ["n2 is cut off the lab network"]
    assert found[0].nodes == ["n2"]
    assert "nor the KV store" in found[0].detail
    all_failures_explained(results, found)
    # Not re-explained as blocked gossip, blocked VXLAN, DNS or port problems.
    assert len(found) == 1


def test_node_cut_off_with_names_failing_too(spec3: ClusterSpec) -> None:
    results = healthy(spec3)
    cut_off(results, "n2")
    breaking(results, "names.resolve", involves("n2"))
    assert causes(diagnose(spec3, results)) == ["n2 is cut off the lab network"]


def test_node_cut_off_needs_the_others_to_talk(spec3: ClusterSpec) -> None:
    """Every underlay.api pair failing is not one node cut off: no cut-off diagnosis."""
    results = healthy(spec3)
    breaking(results, "underlay.api")
    found = diagnose(spec3, results)
    assert not any("cut off" in c for c in causes(found))
    assert causes(found) == ["6 underlay.api failure(s)"]


def test_cut_off_node_in_a_two_node_lab_is_diagnosed(spec2: ClusterSpec) -> None:
    results = healthy(spec2)
    cut_off(results, "n2")
    found = diagnose(spec2, results)
    assert "n2 is cut off the lab network" in causes(found)
    all_failures_explained(results, found)


def test_cut_off_node_in_a_two_node_lab_blames_only_that_node(spec2: ClusterSpec) -> None:
    results = healthy(spec2)
    cut_off(results, "n2")
    assert causes(diagnose(spec2, results)) == ["n2 is cut off the lab network"]


def test_cut_off_node_whose_registration_expired(spec3: ClusterSpec) -> None:
    results = healthy(spec3)
    cut_off(results, "n2")
    breaking(results, "kv.registered", involves("n2"))
    assert causes(diagnose(spec3, results)) == ["n2 is cut off the lab network"]


def test_kv_store_down(spec3: ClusterSpec) -> None:
    results = healthy(spec3)
    breaking(results, "kv.reachable", message="cannot connect: connection refused")
    breaking(results, "kv.registered", message="etcd does not answer: [Errno 111]")
    breaking(results, "networks.present", message="missing on n1, n2, n3")
    found = diagnose(spec3, results)
    assert causes(found) == ["the KV store (etcd on kv) is down or unreachable"]
    assert found[0].nodes == ["kv"]
    assert found[0].checks == ["kv.reachable", "kv.registered", "networks.present"]


def test_kv_reachable_from_some_nodes_is_not_kv_down(spec3: ClusterSpec) -> None:
    results = healthy(spec3)
    breaking(results, "kv.reachable", lambda r: r.nodes[0] == "n1")
    found = diagnose(spec3, results)
    assert causes(found) == ["1 kv.reachable failure(s)"]


def test_kv_reachable_skipped_without_a_store(spec3: ClusterSpec) -> None:
    results = [r for r in healthy(spec3) if r.check != "kv.reachable"]
    results.append(CheckResult("kv.reachable", "kv", "skip", message="the spec has no KV store"))
    assert diagnose(spec3, results) == []


def test_dead_engine(spec3: ClusterSpec) -> None:
    results = healthy(spec3)
    breaking(
        results,
        "engines.api",
        involves("n3"),
        message="dockerd on n3 is not running",
        hint="it exited or was killed; `invoke up` restarts it",
    )
    breaking(results, "engines.advertise", involves("n3"), status="skip")
    # The engine port and serf on n3 are gone; n3's namespace still reaches the others.
    breaking(results, ("underlay.api", "underlay.gossip"), lambda r: r.nodes[1] == "n3")
    # No probes on n3: its pairs are skipped, not failed.
    results = [r for r in results if not (r.check in DATA and "n3" in r.nodes)]
    results += [
        CheckResult(c, "paths from/to n3", "skip", message="no probe runs on n3", nodes=["n3"])
        for c in DATA
    ]
    found = diagnose(spec3, results)
    assert causes(found) == ["the engine on n3 is down"]
    assert found[0].nodes == ["n3"]
    assert found[0].detail.startswith("dockerd on n3 is not running. it exited")
    # underlay failures are explained, not repeated as gossip or generic diagnoses
    assert len(found) == 1


def test_dead_engine_names_every_check_it_explains(spec3: ClusterSpec) -> None:
    results = healthy(spec3)
    breaking(results, "engines.api", involves("n3"))
    breaking(results, ("underlay.api", "underlay.gossip"), lambda r: r.nodes[1] == "n3")
    found = diagnose(spec3, results)
    assert len(found) == 1
    all_failures_explained(results, found)


def test_two_dead_engines_two_diagnoses(spec3: ClusterSpec) -> None:
    results = healthy(spec3)
    breaking(results, "engines.api", lambda r: r.subject in ("n2", "n3"))
    breaking(results, ("underlay.api", "underlay.gossip"), lambda r: r.nodes[1] in ("n2", "n3"))
    assert causes(diagnose(spec3, results)) == [
        "the engine on n2 is down",
        "the engine on n3 is down",
    ]


def wrong_advertise_on(results: list[CheckResult], nodes: Iterable[str]) -> None:
    bad = set(nodes)
    breaking(
        results,
        "engines.advertise",
        lambda r: r.subject in bad,
        message=f"advertises {NAT_ADVERTISE}, but peers reach this node elsewhere",
        hint=ADVERTISE_HINT,
        details={"cluster_advertise": NAT_ADVERTISE},
    )
    breaking(results, "kv.registered", lambda r: r.subject in bad)
    breaking(
        results, DATA, lambda r: r.details.get("path") == "cross-host" and bool(bad & set(r.nodes))
    )


def test_wrong_advertise_on_every_node(spec3: ClusterSpec) -> None:
    results = healthy(spec3)
    wrong_advertise_on(results, ["n1", "n2", "n3"])
    breaking(results, "underlay.gossip")
    found = diagnose(spec3, results)
    assert causes(found) == ["3 engine(s) advertise an address their peers cannot reach"]
    assert found[0].nodes == ["n1", "n2", "n3"]
    assert NAT_ADVERTISE in found[0].detail
    assert ADVERTISE_HINT in found[0].detail
    assert set(found[0].checks) == {"engines.advertise", "kv.registered", "underlay.gossip", *DATA}


def test_wrong_advertise_two_node_nat_lab(spec2: ClusterSpec) -> None:
    results = healthy(spec2)
    wrong_advertise_on(results, ["n1", "n2"])
    assert causes(diagnose(spec2, results)) == [
        "2 engine(s) advertise an address their peers cannot reach"
    ]


def test_wrong_advertise_on_one_node_leaves_others_data_failures(spec3: ClusterSpec) -> None:
    """Only cross-host failures involving the misadvertising node are explained by it."""
    results = healthy(spec3)
    wrong_advertise_on(results, ["n1"])
    breaking(results, "connectivity.icmp", lambda r: r.subject == "n3 -> n3 (2nd probe) over dn")
    found = diagnose(spec3, results)
    assert causes(found) == [
        "1 engine(s) advertise an address their peers cannot reach",
        "1 connectivity.icmp failure(s)",
    ]


def test_cluster_store_mismatch_is_not_called_a_wrong_advertise(spec3: ClusterSpec) -> None:
    results = healthy(spec3)
    breaking(
        results,
        "engines.advertise",
        involves("n1"),
        message="cluster-store is unset, the spec says etcd://192.168.97.10:2379",
        hint="the engine runs with another daemon config: `invoke up` rewrites it",
    )
    found = diagnose(spec3, results)
    assert not any("advertise an address" in c for c in causes(found))


def test_only_mtu_failing(spec3: ClusterSpec) -> None:
    results = healthy(spec3)
    breaking(results, "mtu.df", lambda r: r.details.get("path") == "cross-host", hint=HINT_MTU)
    found = diagnose(spec3, results)
    assert causes(found) == ["full-size packets do not cross the overlay (MTU)"]
    assert found[0].checks == ["mtu.df"]
    assert HINT_MTU in found[0].detail
    assert found[0].nodes == []  # every cross-host pair: no single node to blame


def test_mtu_with_other_data_failing_is_the_data_plane(spec3: ClusterSpec) -> None:
    results = healthy(spec3)
    breaking(results, ("mtu.df", "connectivity.icmp"), cross_host_involving("n1"))
    assert causes(diagnose(spec3, results)) == [
        "overlay data (VXLAN, udp/4789) is blocked to and from n1"
    ]


def test_same_host_failures_are_not_vxlan(spec3: ClusterSpec) -> None:
    results = healthy(spec3)
    breaking(
        results,
        "connectivity.tcp",
        lambda r: r.details.get("path") == "same-host" and r.nodes == ["n2"],
        hint=HINT_SAME_HOST,
    )
    found = diagnose(spec3, results)
    assert causes(found) == ["2 connectivity.tcp failure(s)"]
    assert found[0].nodes == ["n2"]
    assert HINT_SAME_HOST in found[0].detail


@pytest.mark.parametrize(
    ("check", "cause"),
    [
        ("networks.present", "2 overlay(s) are not the same network on every engine"),
        ("names.resolve", "3 stack names resolve wrongly from other hosts"),
        ("ports.published", "2 published port(s) do not answer"),
        ("isolation.overlays", "overlays that should be isolated are joined (6 paths)"),
    ],
)
def test_per_check_rules(spec3: ClusterSpec, check: str, cause: str) -> None:
    results = healthy(spec3)
    breaking(results, check, hint="the hint")
    found = diagnose(spec3, results)
    assert causes(found) == [cause]
    assert found[0].checks == [check]
    assert found[0].detail.endswith("the hint")


def test_per_check_detail_lists_three_subjects_then_counts(spec3: ClusterSpec) -> None:
    results = healthy(spec3)
    breaking(results, "isolation.overlays", hint="h")
    [found] = diagnose(spec3, results)
    assert "(+3 more): h" in found.detail
    assert found.detail.count(";") == 2


def test_leftover_check_still_gets_a_generic_diagnosis(spec3: ClusterSpec) -> None:
    results = healthy(spec3)
    results.append(
        CheckResult("stack.health", "demo/web", "error", message="boom", hint="look", nodes=["n1"])
    )
    breaking(results, "kv.registered", involves("n1"), hint="registers every 20 s")
    found = diagnose(spec3, results)
    # A crashed check is not evidence about the network: reported apart, as untested.
    assert causes(found) == ["1 kv.registered failure(s)", "1 check(s) could not run"]
    assert [d.checks for d in found] == [["kv.registered"], ["stack.health"]]
    assert found[1].detail == "stack.health: boom: their subjects are untested, not healthy."


# --- rules do not explain the same failure twice -------------------------------------


def test_each_failure_is_explained_by_exactly_one_diagnosis(spec3: ClusterSpec) -> None:
    """Cut-off n2 and blocked VXLAN between n1 and n3: two causes, no overlap."""
    results = healthy(spec3)
    cut_off(results, "n2")
    breaking(results, DATA, lambda r: r.nodes == ["n1", "n3"])
    found = diagnose(spec3, results)
    assert causes(found) == [
        "n2 is cut off the lab network",
        "overlay data (VXLAN, udp/4789) is blocked to and from n1, n3",
    ]


def test_dead_engine_and_blocked_gossip_elsewhere(spec3: ClusterSpec) -> None:
    results = healthy(spec3)
    breaking(results, "engines.api", involves("n3"))
    breaking(results, ("underlay.api", "underlay.gossip"), lambda r: r.nodes[1] == "n3")
    breaking(results, "underlay.gossip", lambda r: r.nodes[1] == "n1")
    assert causes(diagnose(spec3, results)) == [
        "the engine on n3 is down",
        "serf gossip to n1 is blocked (tcp+udp 7946)",
    ]


def test_diagnose_does_not_change_the_results(spec3: ClusterSpec) -> None:
    results = healthy(spec3)
    cut_off(results, "n2")
    before = [r.as_dict() for r in results]
    diagnose(spec3, results)
    diagnose(spec3, results)
    assert [r.as_dict() for r in results] == before


# --- a crashed check is not a fault in the lab -----------------------------------------


def crashed(check: str) -> CheckResult:
    """What run_verify records when a check raises (checks/verify.py)."""
    return CheckResult(
        check=check,
        subject="the check's description",
        status="error",
        message="APIError: 500 Server Error",
        hint="the check itself could not run; see the message",
    )


def test_crashed_engines_api_check_is_not_a_dead_engine(spec3: ClusterSpec) -> None:
    results = [r for r in healthy(spec3) if r.check != "engines.api"] + [crashed("engines.api")]
    assert not any("engine on" in c for c in causes(diagnose(spec3, results)))


def test_crashed_kv_check_is_not_a_kv_outage(spec3: ClusterSpec) -> None:
    results = [r for r in healthy(spec3) if r.check != "kv.reachable"] + [crashed("kv.reachable")]
    assert not any("KV store" in c for c in causes(diagnose(spec3, results)))


def test_crashed_gossip_check_is_reported_as_not_run(spec3: ClusterSpec) -> None:
    results = [r for r in healthy(spec3) if r.check != "underlay.gossip"]
    results.append(crashed("underlay.gossip"))
    found = diagnose(spec3, results)
    assert causes(found) == ["1 check(s) could not run"]
    assert found[0].checks == ["underlay.gossip"]


# --- reports carry the diagnosis -------------------------------------------------------


def diagnosed_report(spec: ClusterSpec) -> VerifyReport:
    results = healthy(spec)
    breaking(results, "underlay.gossip", lambda r: r.nodes[1] == "n2", hint="open 7946")
    return VerifyReport(
        cluster="fl",
        results=results,
        seconds=1.0,
        checks_run=sorted({r.check for r in results}),
        diagnosis=diagnose(spec, results),
    )


def test_json_report_carries_the_diagnosis(spec3: ClusterSpec) -> None:
    doc = report_to_dict(diagnosed_report(spec3))
    assert doc["ok"] is False
    [entry] = doc["diagnosis"]
    assert entry["cause"] == "serf gossip to n2 is blocked (tcp+udp 7946)"
    assert entry["nodes"] == ["n2"]
    assert entry["checks"] == ["underlay.gossip"]
    assert set(entry) == {"cause", "detail", "nodes", "checks"}


def test_json_report_without_failures_has_empty_diagnosis(spec3: ClusterSpec) -> None:
    report = VerifyReport(cluster="fl", results=healthy(spec3), diagnosis=[])
    assert report_to_dict(report)["diagnosis"] == []


def render(report: VerifyReport) -> str:
    console = Console(record=True, width=200, file=io.StringIO())
    print_report(report, console)
    return console.export_text()


def test_table_prints_the_diagnosis_after_the_failures(spec3: ClusterSpec) -> None:
    report = diagnosed_report(spec3)
    text = render(report)
    assert " 1. serf gossip to n2 is blocked (tcp+udp 7946) (n2)" in text
    assert report.diagnosis[0].detail in " ".join(text.split())  # long details wrap
    assert text.index("diagnosis") > text.index("✗ underlay.gossip")
    assert text.index("diagnosis") < text.index("checks failed")


def test_table_numbers_several_diagnoses(spec3: ClusterSpec) -> None:
    report = diagnosed_report(spec3)
    report.diagnosis.append(Diagnosis(cause="something else", detail="why"))
    text = render(report)
    assert " 2. something else\n" in text
    assert "    why" in text


def test_table_has_no_diagnosis_section_when_healthy(spec3: ClusterSpec) -> None:
    text = render(VerifyReport(cluster="fl", results=healthy(spec3)))
    assert "diagnosis" not in text


def test_spec_fixture_is_the_fault_lab(spec3: ClusterSpec, spec2: ClusterSpec) -> None:
    assert [n.name for n in spec3.engine_nodes] == ["n1", "n2", "n3"]
    assert [n.name for n in spec2.engine_nodes] == ["n1", "n2"]
    assert spec3.kv is not None and spec3.kv.node == "kv"
