"""The fault catalogue's logic, through the fake lab: faults go in through the nodes'
handles, verify (the real checks and diagnosis) names the expected cause, heal takes
them out again, and every refusal leaves nothing behind.

The fake lab's nodes answer only what checks do; here they also keep a firewall: the
iptables commands a fault runs become the fake's own faults (a dropped port, a cut
node), so what verify sees follows from the commands, not from a shortcut."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from fakelab import FakeLab, swarm_lab_spec
from firewalled_lab import firewalled, no_rules, rules_on
from invoke.parser import Parser

from overlaylab.faults import (
    CATALOGUE,
    FaultError,
    active_faults,
    heal_faults,
    inject_fault,
    network,
)
from overlaylab.faults.netfilter import TAG
from overlaylab.faults.teardown import remove_faults
from overlaylab.tasks import ns
from overlaylab.verify.diagnosis import RULES

VXLAN = ("udp", 4789)


@pytest.fixture
def lab(tmp_path: Path) -> FakeLab:
    return firewalled(("n1", "n2", "n3"), tmp_path / "state")


# --- the catalogue ---------------------------------------------------------------------------


def rule_ids() -> set[str]:
    checks = {"ports.published", "stacks.running", "names.resolve", "swarm.nodes"}
    return {rule.__name__ for rule in RULES} | checks


def test_every_fault_kind_says_its_misery_parameters_and_a_cause_verify_has() -> None:
    assert {
        "vxlan",
        "vxlan-out",
        "gossip",
        "cut",
        "kv-cut",
        "port",
        "mtu",
        "protocol",
        "islands",
        "kv-stopped",
        "kv-hung",
        "engine-killed",
        "engine-stopped",
        "advertise",
        "discovery-junk",
        "delay",
        "loss",
    } <= set(CATALOGUE)
    for kind in CATALOGUE.values():
        assert kind.misery and kind.parameters, kind.name
        if kind.unavailable is None:
            assert kind.expected_cause in rule_ids(), kind.name
            assert set(kind.causes_by_mode.values()) <= rule_ids(), kind.name


def test_delay_and_loss_are_listed_unavailable_with_the_reason() -> None:
    for name in ("delay", "loss"):
        assert CATALOGUE[name].unavailable
        assert "netem" in CATALOGUE[name].unavailable or "no check" in CATALOGUE[name].unavailable


# --- inject, verify, heal ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "target", "options", "rule", "nodes"),
    [
        ("vxlan", "n2", {}, "data_plane_blocked", ["n2"]),
        ("vxlan-out", "n3", {}, "data_plane_blocked", ["n3"]),
        ("gossip", "n2", {}, "gossip_blocked", ["n2"]),
        ("kv-cut", "n3", {}, "kv_unreachable_from", ["n3"]),
        ("port", "n1", {"port": "5000"}, "ports.published", ["n1"]),
    ],
)
def test_a_fault_is_diagnosed_as_its_kind_expects_and_healed(
    lab: FakeLab, kind: str, target: str, options: dict[str, str], rule: str, nodes: list[str]
) -> None:
    assert lab.verify().ok
    active = inject_fault(lab.ctx, kind, [target], options)
    report = lab.verify()
    fault = CATALOGUE[kind]
    assert fault.cause_on(lab.ctx) == rule
    assert fault.expected_nodes(lab.ctx, active) == nodes
    assert [(d.rule, d.nodes) for d in report.diagnosis][:1] == [(rule, nodes)]
    healed = heal_faults(lab.ctx, kind)
    assert [h.kind for h in healed] == [kind]
    assert no_rules(lab) and active_faults(lab.ctx) == []
    assert lab.verify().ok


def test_kv_cut_heal_waits_for_the_engine_to_register_again_and_says_when_it_does_not(
    lab: FakeLab, monkeypatch: pytest.MonkeyPatch
) -> None:
    inject_fault(lab.ctx, "kv-cut", ["n3"])
    lab.expire_registrations()
    assert "kv.registered" in {r.check for r in lab.verify().failed}
    heal_faults(lab.ctx, "kv-cut")
    assert lab.verify().ok  # n3 registered again before heal returned

    monkeypatch.setattr(network, "REGISTER_TIMEOUT", 0.3)
    inject_fault(lab.ctx, "kv-cut", ["n3"])
    lab.stop_registering("n3")
    with pytest.raises(FaultError, match="n3 did not register"):
        heal_faults(lab.ctx, "kv-cut")
    assert no_rules(lab)


def test_the_active_fault_lives_in_the_state_file_with_what_undoes_it(lab: FakeLab) -> None:
    inject_fault(lab.ctx, "gossip", ["n2"])
    saved = json.loads(lab.layout.state_file.read_text())["faults"]
    [entry] = saved
    assert entry["kind"] == "gossip" and entry["targets"] == ["n2"]
    assert [r["node"] for r in entry["undo"]["rules"]] == ["n2", "n2"]
    assert all(f"{TAG}:gossip" in r["rule"] for r in entry["undo"]["rules"])
    # Another process (a new context on the same state) heals it.
    [active] = active_faults(lab.ctx)
    assert active.injected_at > 0
    heal_faults(lab.ctx, None)
    assert no_rules(lab) and json.loads(lab.layout.state_file.read_text())["faults"] == []


def test_the_default_target_is_the_last_engine_node(lab: FakeLab) -> None:
    active = inject_fault(lab.ctx, "vxlan")
    assert active.targets == ["n3"]
    assert {n for n, rules in rules_on(lab).items() if rules} == {"n3"}


# --- refusals leave nothing ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "targets", "options", "says"),
    [
        ("nosuch", [], {}, "no fault kind 'nosuch'"),
        ("vxlan", ["n9"], {}, "no engine node 'n9'"),
        ("vxlan", ["kv"], {}, "no engine node 'kv'"),
        ("vxlan", ["n1", "n2"], {}, "vxlan takes 1 engine node(s), got 2"),
        ("vxlan", ["n1"], {"speed": "1"}, "vxlan has no option speed"),
        ("mtu", ["n1"], {"mtu": "9000"}, "mtu must be a number from 576 to 1499"),
        ("protocol", ["n1"], {"proto": "sctp"}, "proto must be one of icmp, tcp, udp"),
        ("kv-stopped", ["n1"], {}, "kv-stopped takes no target"),
        ("delay", ["n1"], {}, "delay cannot be injected"),
        ("islands", ["n1", "n2", "n3"], {}, "name the second island only"),
    ],
)
def test_bad_requests_are_refused_and_leave_nothing(
    lab: FakeLab, kind: str, targets: list[str], options: dict[str, str], says: str
) -> None:
    with pytest.raises(FaultError, match=re.escape(says)):
        inject_fault(lab.ctx, kind, targets, options)
    assert no_rules(lab) and active_faults(lab.ctx) == []


def test_a_fault_already_active_is_refused(lab: FakeLab) -> None:
    inject_fault(lab.ctx, "vxlan", ["n1"])
    with pytest.raises(FaultError, match=r"vxlan is already active .* `invoke heal vxlan`"):
        inject_fault(lab.ctx, "vxlan", ["n2"])
    assert {n for n, rules in rules_on(lab).items() if rules} == {"n1"}
    assert len(active_faults(lab.ctx)) == 1


def test_a_kv_fault_is_refused_in_swarm_mode(tmp_path: Path) -> None:
    lab = FakeLab(swarm_lab_spec(), tmp_path / "state")
    for kind in ("kv-stopped", "kv-hung", "kv-cut", "discovery-junk", "islands"):
        with pytest.raises(FaultError, match="orchestration mode is swarm-mode"):
            inject_fault(lab.ctx, kind)
    assert active_faults(lab.ctx) == []


def test_an_injection_that_fails_halfway_undoes_what_it_did(tmp_path: Path) -> None:
    lab = firewalled(("n1", "n2", "n3"), tmp_path / "state", fail_on=2)
    with pytest.raises(FaultError, match="injecting vxlan failed, nothing is left of it"):
        inject_fault(lab.ctx, "vxlan", ["n2"])  # INPUT went in, OUTPUT failed
    assert no_rules(lab) and active_faults(lab.ctx) == []


def test_a_heal_that_finds_its_rule_still_there_keeps_the_fault(lab: FakeLab) -> None:
    inject_fault(lab.ctx, "gossip", ["n2"])
    node = lab.provider.node("n2")
    node.rules.append(node.rules[0])  # the same rule twice: one delete leaves one
    with pytest.raises(FaultError, match="rules still in place"):
        heal_faults(lab.ctx, "gossip")
    assert [f.kind for f in active_faults(lab.ctx)] == ["gossip"]


def test_healing_an_unknown_kind_is_an_error_and_nothing_active_is_not(lab: FakeLab) -> None:
    with pytest.raises(FaultError, match="no fault kind 'vxlam'"):
        heal_faults(lab.ctx, "vxlam")
    assert heal_faults(lab.ctx, "vxlan") == []


def test_down_takes_every_fault_off_the_nodes_and_forgets_it(lab: FakeLab) -> None:
    inject_fault(lab.ctx, "vxlan", ["n1"])
    inject_fault(lab.ctx, "kv-cut", ["n2"])
    said = remove_faults(lab.ctx)
    assert said == ["fault vxlan removed from n1", "fault kv-cut removed from n2"]
    assert no_rules(lab) and active_faults(lab.ctx) == []


# --- the command line ------------------------------------------------------------------------


def parse(*argv: str) -> dict[str, object]:
    [context] = Parser(contexts=ns.to_contexts()).parse_argv(list(argv))
    return {arg.name: arg.value for arg in context.args.values()}


def test_fault_takes_a_kind_and_any_number_of_targets_or_none_for_list() -> None:
    two = parse("fault", "islands", "n2", "n3", "-i", "lab.yml", "-o", "a=1")
    assert (two["kind"], two["targets"], two["inventory"], two["option"]) == (
        "islands",
        ["n2", "n3"],
        "lab.yml",
        ["a=1"],
    )
    listing = parse("fault", "--list")
    assert listing["list"] is True and listing["kind"] == "" and listing["targets"] == []
    assert parse("heal", "--all")["all"] is True
    assert parse("heal", "vxlan")["kind"] == "vxlan"


@pytest.mark.parametrize("kind", ["vxlan", "vxlan-out"])
def test_on_two_engines_a_data_plane_drop_names_both_ends_and_says_why(
    tmp_path: Path, kind: str
) -> None:
    pair = firewalled(("n1", "n2"), tmp_path / "state")
    active = inject_fault(pair.ctx, kind, ["n2"])
    report = pair.verify()
    [blocked] = [d for d in report.diagnosis if d.rule == "data_plane_blocked"]
    assert blocked.nodes == ["n1", "n2"]
    assert "two ends look the same" in blocked.detail
    assert CATALOGUE[kind].expected_nodes(pair.ctx, active) == ["n1", "n2"]
    heal_faults(pair.ctx, kind)
    assert pair.verify().ok


def test_on_three_engines_the_drop_is_placed_on_its_node_alone(lab: FakeLab) -> None:
    active = inject_fault(lab.ctx, "vxlan", ["n2"])
    [blocked] = [d for d in lab.verify().diagnosis if d.rule == "data_plane_blocked"]
    assert blocked.nodes == ["n2"] and "two ends" not in blocked.detail
    assert CATALOGUE["vxlan"].expected_nodes(lab.ctx, active) == ["n2"]
