"""The drill's logic, through the fake lab: real faults from the catalogue go in through
the nodes' handles, the real checks and diagnosis judge them, heal takes them out. And
what the drill makes of what verify says: a miss, a wrong node, a false cause, a lab
that is not green, a fault that does not apply."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import pytest
from fakelab import FakeLab
from firewalled_lab import firewalled, no_rules

from overlaylab.errors import OverlaylabError
from overlaylab.faults import CATALOGUE, active_faults, inject_fault
from overlaylab.faults import drill as drill_module
from overlaylab.faults.drill import DrillReport, DrillRow, choose, run_drill
from overlaylab.report.drill import build_junit, markdown, render_html, summary


@pytest.fixture
def lab(tmp_path: Path) -> FakeLab:
    return firewalled(("n1", "n2", "n3"), tmp_path / "state")


@pytest.fixture(autouse=True)
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    """No waiting between verifies, and short windows: the fake lab does not converge."""
    monkeypatch.setattr(drill_module, "PAUSE", 0.0)
    monkeypatch.setattr(drill_module, "DIAGNOSIS_WINDOW", 0.0)
    monkeypatch.setattr(drill_module, "GREEN_WINDOW", 0.0)


def test_faults_are_injected_diagnosed_right_and_healed(lab: FakeLab) -> None:
    kinds = [CATALOGUE["vxlan"], CATALOGUE["gossip"], CATALOGUE["port"]]
    lines: list[str] = []
    report = run_drill(lab.ctx, kinds, timeout=1, progress=lines.append)
    assert [(r.fault, r.outcome, r.nodes) for r in report.rows] == [
        ("vxlan", "right", ["n3"]),
        ("gossip", "right", ["n3"]),
        ("port", "right", ["n1"]),
    ]
    assert report.ok and report.rows[0].failed_checks[0].startswith("connectivity.")
    assert all(r.to_diagnosis is not None and r.to_green is not None for r in report.rows)
    assert no_rules(lab) and active_faults(lab.ctx) == []
    assert any(line.startswith("vxlan: right") for line in lines)


def test_a_fault_that_does_not_apply_is_listed_not_counted(lab: FakeLab) -> None:
    report = run_drill(lab.ctx, [CATALOGUE["delay"], CATALOGUE["quorum"]], timeout=1)
    assert [r.outcome for r in report.rows] == ["not applicable", "not applicable"]
    assert "netem" in report.rows[0].note and "swarm-mode" in report.rows[1].note
    assert report.counted == [] and report.ok


def test_a_lab_that_is_not_green_is_refused(lab: FakeLab) -> None:
    lab.kill_engine("n2")
    with pytest.raises(OverlaylabError, match=r"is not green.*the engine on n2 is down"):
        run_drill(lab.ctx, [CATALOGUE["vxlan"]], timeout=1)


def test_a_lab_with_an_active_fault_is_refused(lab: FakeLab) -> None:
    inject_fault(lab.ctx, "gossip", ["n2"])
    with pytest.raises(OverlaylabError, match=r"active faults \(gossip\).*heal --all"):
        run_drill(lab.ctx, [CATALOGUE["vxlan"]], timeout=1)


def test_a_cause_the_fault_does_not_explain_is_a_false_cause(lab: FakeLab) -> None:
    """A kind that expects another rule than verify names: the rule verify names is a
    false cause, and the expected one a miss."""
    wrong = replace(CATALOGUE["vxlan"], name="vxlan", expected_cause="gossip_blocked")
    report = run_drill(lab.ctx, [wrong], timeout=1)
    [row] = report.rows
    assert row.outcome == "missed"
    assert row.false_causes and "data_plane_blocked" in row.false_causes[0]
    assert not report.ok and active_faults(lab.ctx) == [] and no_rules(lab)


def test_the_expected_rule_on_other_nodes_is_a_wrong_node(lab: FakeLab) -> None:
    elsewhere = replace(CATALOGUE["vxlan"], expected_nodes_fn=lambda lab, active: ["n1"])
    [row] = run_drill(lab.ctx, [elsewhere], timeout=1).rows
    assert (row.outcome, row.nodes, row.expected_nodes) == ("wrong nodes", ["n3"], ["n1"])


def test_only_refuses_a_kind_it_does_not_know() -> None:
    assert [k.name for k in choose(["mtu", "vxlan", "mtu"])] == ["mtu", "vxlan"]
    with pytest.raises(OverlaylabError, match="no fault kind 'vxlam'"):
        choose(["vxlam"])


def sample() -> DrillReport:
    return DrillReport(
        cluster="lab",
        seconds=12.0,
        rows=[
            DrillRow(
                "vxlan",
                "data_plane_blocked",
                "right",
                ["node3"],
                ["data_plane_blocked"],
                nodes=["node3"],
                to_diagnosis=2.5,
                to_green=1.0,
            ),
            DrillRow(
                "mtu",
                "data_plane_blocked",
                "false cause",
                ["node3"],
                ["data_plane_blocked", "names.resolve"],
                nodes=["node3"],
                false_causes=["2 stack names resolve wrongly [names.resolve]"],
            ),
            DrillRow("delay", "", "not applicable", note="no netem in this kernel"),
        ],
    )


def test_junit_has_a_testcase_per_fault_failures_and_skips() -> None:
    suite = build_junit(sample()).find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("3", "1", "1")
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert cases["mtu"].find("failure") is not None
    assert cases["delay"].find("skipped") is not None and cases["vxlan"].find("failure") is None
    ET.tostring(suite)  # well-formed


def test_the_table_in_markdown_and_html_and_its_summary() -> None:
    report = sample()
    text = markdown(report)
    assert "| vxlan | data_plane_blocked | data_plane_blocked | node3 | 2.5s | 1.0s |" in text
    assert "false cause: 2 stack names resolve wrongly [names.resolve]" in text
    assert "<td>no netem" not in render_html(report) and "not applicable" in render_html(report)
    assert summary(report).startswith(
        "drill on lab 'lab': 1/2 faults diagnosed right, 1 false cause(s), 1 not applicable"
    )


def test_a_heal_that_leaves_the_lab_failing_is_a_miss_and_up_lets_the_drill_go_on(
    lab: FakeLab, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A heal that undoes nothing: the row is 'not green'; `up` (here: the rules taken
    out) makes the lab green, and the next fault is drilled."""
    from overlaylab.faults.netfilter import remove_rules
    from overlaylab.up import pipeline

    kept: list[object] = []
    lame = replace(CATALOGUE["vxlan"], heal_fn=lambda lab, active: kept.append(active))
    monkeypatch.setitem(CATALOGUE, "vxlan", lame)  # what inject and heal look up
    monkeypatch.setattr(pipeline, "up", lambda ctx: [remove_rules(ctx, a) for a in kept])
    report = run_drill(lab.ctx, [lame, CATALOGUE["port"]], timeout=1)
    assert [(r.fault, r.outcome) for r in report.rows] == [
        ("vxlan", "not green"),
        ("port", "right"),
    ]
    assert not report.ok and not report.stopped and no_rules(lab)
