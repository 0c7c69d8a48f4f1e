"""The container, swarm and classic swarm faults' logic through the fake lab, where a real
lab cannot run here (classic swarm needs a `swarm` binary): what they refuse, what they
plant through the node handle, what verify then names, and that heal leaves nothing."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import pytest
from fakelab import FakeLab, FakeNode, classic_lab_spec, fault_lab_spec, swarm_lab_spec

from overlaylab.faults import (
    CATALOGUE,
    ActiveFault,
    FaultError,
    active_faults,
    heal_faults,
    inject_fault,
)
from overlaylab.faults import classic as classic_faults
from overlaylab.layout import schedule_address
from overlaylab.overlay.peers import address_of_mac
from overlaylab.providers.command import CommandResult
from overlaylab.tasks.faults import describe_undo


class SandboxNode(FakeNode):
    """A fake node whose overlay sandboxes answer `ls`, `test -e` and `bridge fdb`
    (add, del, show): an added entry is the fake lab's stale peer entry."""

    def run(
        self,
        argv: Sequence[str],
        *,
        check: bool = True,
        timeout: float | None = 60,
        input: str | None = None,
    ) -> CommandResult:
        argv = list(argv)
        netns_dir = str(self.paths.exec_root / "netns")
        sandboxes = {
            f"1-{self.lab.network_info(n.name)['Id'][:10]}": n.name for n in self.lab.spec.networks
        }
        code, out = 0, ""
        match argv:
            case ["ls", folder] if folder == netns_dir:
                out = "\n".join(sandboxes) + "\n"
            case ["test", "-e", path]:
                code = 0 if path.rsplit("/", 1)[-1] in sandboxes else 1
            case ["nsenter", enter, "bridge", "fdb", verb, *rest] if enter.startswith("--net="):
                network = sandboxes[enter.removeprefix("--net=").rsplit("/", 1)[-1]]
                stale = self.lab.stale_fdb.setdefault((self.name, network), {})
                if verb == "add":
                    stale[rest[0]] = rest[rest.index("dst") + 1]
                elif verb == "del":
                    stale.pop(rest[0], None)
                else:
                    out = "".join(
                        f"{mac} dst {dst} self permanent\n"
                        for mac, dst in self.lab.fdb(self.name, network).items()
                    )
            case _:
                return super().run(argv, check=check, timeout=timeout, input=input)
        result = CommandResult(tuple(argv), code, out, "", self.name)
        return result.check() if check else result


@pytest.fixture
def classic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[FakeLab, list[str]]:
    lab = FakeLab(classic_lab_spec(), tmp_path / "state")
    for name in lab.engine_nodes:
        lab.provider._nodes[name] = SandboxNode(lab, name)
    replaced: list[str] = []
    # The fake lab runs no swarm image: the agent's replacement is recorded, not made.
    monkeypatch.setattr(classic_faults, "replace_agent", lambda lab, node: replaced.append(node))
    return lab, replaced


def test_classic_agent_replaced_leaves_a_stale_entry_named_on_its_node(
    classic: tuple[FakeLab, list[str]],
) -> None:
    lab, replaced = classic
    assert lab.verify().ok
    active = inject_fault(lab.ctx, "classic-agent", ["a"])
    assert replaced == ["a"]
    [entry] = active.undo["fdb"]
    assert entry["node"] == "a" and re.fullmatch(
        r"02:42:(?:[0-9a-f]{2}:){3}[0-9a-f]{2}", entry["mac"]
    )
    # It sends a free address's MAC to a itself, as a missed leave leaves it; not one
    # kept for a scheduling probe, whose next join would rewrite it.
    assert lab.stale_fdb[("a", "dn")] == {entry["mac"]: lab.vtep("a")}
    kept = {schedule_address(lab.spec, "dn", n.name) for n in lab.spec.engine_nodes}
    assert kept and address_of_mac(entry["mac"]) not in kept
    report = lab.verify()
    kind = CATALOGUE["classic-agent"]
    assert [(d.rule, d.nodes) for d in report.diagnosis] == [
        (kind.cause_on(lab.ctx), kind.expected_nodes(lab.ctx, active))
    ]
    assert report.diagnosis[0].cause.startswith("stale overlay peer entries on a")
    heal_faults(lab.ctx, "classic-agent")
    assert lab.stale_fdb[("a", "dn")] == {} and active_faults(lab.ctx) == []
    assert lab.verify().ok


def test_classic_agent_says_it_needs_classic_swarm(tmp_path: Path) -> None:
    lab = FakeLab(fault_lab_spec(), tmp_path / "state")
    kind = CATALOGUE["classic-agent"]
    assert "classic-swarm" in (kind.applies(lab.ctx) or "")
    assert "swarm` binary" in kind.misery
    with pytest.raises(FaultError, match=r"cannot be injected.*classic-swarm"):
        inject_fault(lab.ctx, "classic-agent", ["n3"])
    assert active_faults(lab.ctx) == []


@pytest.mark.parametrize("kind", ["disconnect", "pause", "stale-name", "gwbridge-app"])
def test_container_faults_refuse_swarm_mode(tmp_path: Path, kind: str) -> None:
    lab = FakeLab(swarm_lab_spec(), tmp_path / "state")
    with pytest.raises(FaultError, match="swarm-mode"):
        inject_fault(lab.ctx, kind)


@pytest.mark.parametrize("kind", ["quorum", "worker-down"])
def test_swarm_faults_refuse_a_legacy_lab(tmp_path: Path, kind: str) -> None:
    lab = FakeLab(fault_lab_spec(), tmp_path / "state")
    with pytest.raises(FaultError, match="applies to swarm-mode"):
        inject_fault(lab.ctx, kind)


def test_quorum_refuses_managers_that_keep_it_and_workers(tmp_path: Path) -> None:
    lab = FakeLab(swarm_lab_spec(("m1", "m2", "m3"), ("w1",)), tmp_path / "state")
    assert CATALOGUE["quorum"].default_targets(lab.ctx) == ["m2", "m3"]
    with pytest.raises(FaultError, match="keeps the quorum"):
        inject_fault(lab.ctx, "quorum", ["m3"])
    with pytest.raises(FaultError, match="w1 is not a manager"):
        inject_fault(lab.ctx, "quorum", ["m3", "w1"])
    assert active_faults(lab.ctx) == [] and lab.verify().ok


def test_a_container_fault_on_a_node_without_a_stack_service_is_refused(tmp_path: Path) -> None:
    lab = FakeLab(fault_lab_spec(), tmp_path / "state")
    with pytest.raises(FaultError, match="places no stack service on n3"):
        inject_fault(lab.ctx, "pause", ["n3"])
    with pytest.raises(FaultError, match="must be STACK/SERVICE"):
        inject_fault(lab.ctx, "pause", ["n1"], {"service": "web"})
    assert active_faults(lab.ctx) == []


def test_fault_says_what_the_container_faults_did() -> None:
    undo = {
        "disconnected": [
            {"node": "n1", "container": "demo_web_1", "network": "dn", "aliases": ["web"]}
        ],
        "paused": [{"node": "n1", "container": "demo_web_1"}],
        "record": {"key": "endpoint/x/5ca1ab1e", "network": "dn", "address": "10.0.9.254"},
        "container": "demo_web_1",
        "fdb": [{"node": "a", "mac": "02:42:0a:00:1a:fe", "netns": "/x/netns/1-abc"}],
    }
    lines = describe_undo(ActiveFault("stale-name", ["n1"], {}, undo))
    assert lines == [
        "n1: docker network disconnect dn demo_web_1",
        "n1: docker pause demo_web_1",
        "KV store: a record of demo_web_1 on dn at 10.0.9.254 (endpoint/x/5ca1ab1e), as a "
        "hard kill leaves it",
        "a: bridge fdb add 02:42:0a:00:1a:fe dev vxlan0 (self) in /x/netns/1-abc",
    ]


def test_fault_says_in_which_containers_dns_was_cut() -> None:
    undo = {"containers": [{"node": "n3", "id": "abc", "name": "probe-dn-n3", "pid": 4242}]}
    assert describe_undo(ActiveFault("dns", ["n3"], {}, undo)) == [
        "n3: iptables -I OUTPUT -d 127.0.0.11 -j DROP in probe-dn-n3 (nsenter -t 4242 -n)"
    ]
