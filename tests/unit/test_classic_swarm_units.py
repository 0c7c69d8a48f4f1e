"""Classic swarm without a `swarm` binary: `up`'s swarm step (an agent container on every
swarm node, the manager on each master, then the wait until the master lists them all)
over the fake engines, and the swarm.nodes check's findings over the fake lab.

The integration test (tests/integration/test_classic_swarm.py) skips on a machine with
no swarm image; these run everywhere."""

from __future__ import annotations

from pathlib import Path

import docker.errors
import pytest
from fakelab import (
    CLASSIC_YML,
    FakeLab,
    UpEngine,
    UpProvider,
    captured_progress,
    classic_lab_spec,
    fake_context,
)
from lab_specs import lab_data, lab_variant

from overlaylab.context import LabContext
from overlaylab.errors import NodeError, OverlaylabError
from overlaylab.layout import LABEL_CLUSTER, LABEL_ROLE
from overlaylab.spec import load_spec
from overlaylab.spec.models import ClusterSpec
from overlaylab.up import classic_swarm
from overlaylab.up.classic_swarm import AGENT, MASTER
from overlaylab.up.run import UpRun
from overlaylab.up.steps.swarm import ensure_swarm
from overlaylab.verify.run import ALL_CHECKS, VerifyReport

SWARM_NODES = ("master", "a", "b")
DISCOVERY = "etcd://192.168.86.10:2379"  # the lab's etcd on the kv node


# --- up's swarm step -------------------------------------------------------------------------
def classic_lab(
    tmp_path: Path, spec: ClusterSpec | None = None
) -> tuple[LabContext, UpProvider, UpRun]:
    """The classic lab after its engines started: each holds the swarm image."""
    spec = spec or load_spec(CLASSIC_YML)
    provider = UpProvider(lab_exists=True)
    progress, _ = captured_progress()
    ctx = fake_context(tmp_path, provider, spec=spec, progress=progress)
    for node in spec.engine_nodes:
        engine = provider.engines[node.name] = UpEngine(node.name)
        engine.image_names.add(spec.orchestration.swarm_image)
    return ctx, provider, UpRun()


def said(ctx: LabContext) -> str:
    return ctx.progress.console.file.getvalue()  # type: ignore[attr-defined]


def test_a_fresh_classic_swarm_gets_an_agent_everywhere_and_the_manager_on_the_master(
    tmp_path: Path,
) -> None:
    ctx, provider, run = classic_lab(tmp_path)
    assert ensure_swarm(ctx, run) is True
    for name in SWARM_NODES:
        agent = provider.engines[name].ran[AGENT]
        assert agent.image == "swarm:1.2.9"
        address = ctx.spec.address_of(name)
        assert agent.args == ["join", "--advertise", f"{address}:2376", DISCOVERY]
        # As docker-machine ran it: the node's own network, restarted with the engine.
        assert agent.options["network_mode"] == "host"
        assert agent.options["restart_policy"] == {"Name": "always"}
        assert agent.options["labels"] == {LABEL_CLUSTER: "cl", LABEL_ROLE: "swarm-agent"}
        assert agent.options["volumes"] == {}
        assert f"{name}: {AGENT} started" in said(ctx)
    manager = provider.engines["master"].ran[MASTER]
    assert manager.args[0] == "manage" and manager.args[-1] == DISCOVERY
    assert "--advertise" in manager.args and "192.168.86.11:3376" in manager.args
    assert "--replication" not in manager.args  # one master: nothing to elect
    # The manager reaches the engines with the node's certificate, read-only.
    tls = str(ctx.node("master").paths.tls_dir)
    assert manager.options["volumes"] == {tls: {"bind": "/certs", "mode": "ro"}}
    assert manager.options["labels"] == {LABEL_CLUSTER: "cl", LABEL_ROLE: "swarm-master"}
    assert [n for n in SWARM_NODES if MASTER in provider.engines[n].ran] == ["master"]
    assert f"master: {MASTER} started on :3376" in said(ctx)
    assert "swarm: master master lists 3 healthy nodes" in said(ctx)


def test_a_classic_swarm_that_runs_as_specified_is_left_alone(tmp_path: Path) -> None:
    ctx, provider, run = classic_lab(tmp_path)
    ensure_swarm(ctx, run)
    before = {n: list(provider.engines[n].run_calls) for n in SWARM_NODES}
    assert ensure_swarm(ctx, run) is False
    assert {n: provider.engines[n].run_calls for n in SWARM_NODES} == before
    assert said(ctx).count("lists 3 healthy nodes") == 2  # the wait still asks the master


def test_a_stopped_agent_and_a_manager_run_otherwise_are_replaced(tmp_path: Path) -> None:
    ctx, provider, run = classic_lab(tmp_path)
    ensure_swarm(ctx, run)
    provider.engines["a"].ran[AGENT].status = "exited"
    manager = provider.engines["master"].ran[MASTER]
    manager.args = [*manager.args[:-1], "etcd://192.168.86.99:2379"]  # another store
    assert ensure_swarm(ctx, run) is True
    assert provider.engines["a"].ran[AGENT].status == "running"
    assert provider.engines["master"].ran[MASTER].args[-1] == DISCOVERY
    assert f"a: {AGENT} restarted" in said(ctx)
    assert f"master: {MASTER} restarted on :3376" in said(ctx)
    assert f"b: {AGENT} restarted" not in said(ctx)  # b ran as specified


def test_two_masters_elect_one_primary(tmp_path: Path) -> None:
    nodes = [*lab_data(CLASSIC_YML)["nodes"], {"name": "m2", "roles": ["engine", "swarm-master"]}]
    ctx, provider, run = classic_lab(tmp_path, lab_variant(CLASSIC_YML, nodes=nodes))
    assert ensure_swarm(ctx, run) is True
    for master in ("master", "m2"):
        assert "--replication" in provider.engines[master].ran[MASTER].args
    assert "lists 4 healthy nodes" in said(ctx)


def test_an_engine_without_the_swarm_image_fails_naming_its_node(tmp_path: Path) -> None:
    ctx, provider, run = classic_lab(tmp_path)
    provider.engines["b"].image_names.clear()
    with pytest.raises(NodeError) as failed:
        ensure_swarm(ctx, run)
    assert failed.value.node == "b"
    assert isinstance(failed.value.cause, docker.errors.ImageNotFound)


def test_an_agent_the_master_never_lists_fails_naming_it_and_where_to_look(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(classic_swarm, "READY_TIMEOUT", 0.3)
    ctx, provider, run = classic_lab(tmp_path)
    provider.agents_unlisted.add("b")  # its agent runs, and never registered
    with pytest.raises(OverlaylabError) as failed:
        ensure_swarm(ctx, run)
    message = str(failed.value)
    assert "the master master does not list b as healthy" in message
    assert f"The agents register in {DISCOVERY}" in message
    assert f"`docker logs {AGENT}` on a node" in message


# --- verify's swarm.nodes --------------------------------------------------------------------
@pytest.fixture
def classic(tmp_path: Path) -> FakeLab:
    return FakeLab(classic_lab_spec(), tmp_path / "state")


def swarm_nodes(report: VerifyReport) -> dict[str, tuple[str, str, str]]:
    """node -> (status, message, hint) of its swarm.nodes result."""
    return {
        r.target: (r.status, r.message, r.hint)
        for r in report.results
        if r.check == "swarm.nodes" and r.target
    }


ONLY_NODES = [c for c in ALL_CHECKS if c.id == "swarm.nodes"]


def test_healthy_classic_swarm_lists_every_node_at_its_engine(classic: FakeLab) -> None:
    found = swarm_nodes(classic.verify(ONLY_NODES))
    assert found == {
        "master": ("pass", "Healthy at 192.168.86.11:2376", ""),
        "a": ("pass", "Healthy at 192.168.86.12:2376", ""),
        "b": ("pass", "Healthy at 192.168.86.13:2376", ""),
    }


def test_an_agent_that_never_registered_is_named_with_its_store(classic: FakeLab) -> None:
    classic.unregister_agent("b")
    report = classic.verify(ONLY_NODES)
    status, message, hint = swarm_nodes(report)["b"]
    assert status == "fail"
    assert message == f"192.168.86.13:2376 is not registered in {DISCOVERY}"
    assert f"`docker logs {AGENT}` on b" in hint and "KV store reachable" in hint
    assert {n: s for n, (s, _, _) in swarm_nodes(report).items()} == {
        "master": "pass",
        "a": "pass",
        "b": "fail",
    }


def test_an_agent_advertising_another_address_is_told_its_engines(classic: FakeLab) -> None:
    classic.agent_advertises("a", "192.168.86.12:2375")  # the engine's plain-TCP port
    status, message, hint = swarm_nodes(classic.verify(ONLY_NODES))["a"]
    assert status == "fail"
    assert message == "its agent advertises 192.168.86.12:2375, the engine is 192.168.86.12:2376"
    assert "`join --advertise` must be the engine's address, 192.168.86.12:2376" in hint


def test_a_master_that_cannot_read_discovery_lists_no_node(classic: FakeLab) -> None:
    classic.blind_master()
    found = swarm_nodes(classic.verify(ONLY_NODES))
    assert {n: m for n, (_, m, _) in found.items()} == dict.fromkeys(
        SWARM_NODES, "the master lists no node at all"
    )
    assert all(s == "fail" and f"cannot read {DISCOVERY}" in h for s, _, h in found.values())


def test_a_master_whose_api_fails_fails_every_node_with_the_reason(classic: FakeLab) -> None:
    classic.stop_master()
    found = swarm_nodes(classic.verify(ONLY_NODES))
    assert set(found) == set(SWARM_NODES)
    for status, message, hint in found.values():
        assert status == "fail"
        assert message.startswith("the master's API on 192.168.86.11:3376 fails: ")
        assert "Cannot connect" in message and hint == f"`docker logs {MASTER}` on master"


def test_agents_in_a_consul_beside_etcd_are_read_there(tmp_path: Path) -> None:
    lab = FakeLab(classic_lab_spec(discovery="consul"), tmp_path / "state")
    report = lab.verify(ONLY_NODES)
    consul = "consul://192.168.86.10:8500"
    assert {n: s for n, (s, _, _) in swarm_nodes(report).items()} == dict.fromkeys(
        SWARM_NODES, "pass"
    )
    [master] = [r for r in report.results if r.check == "swarm.nodes" and r.target == "master"]
    assert master.details["discovered"] == [
        "192.168.86.11:2376",
        "192.168.86.12:2376",
        "192.168.86.13:2376",
    ]
    lab.unregister_agent("a")
    status, message, _ = swarm_nodes(lab.verify(ONLY_NODES))["a"]
    assert (status, message) == ("fail", f"192.168.86.12:2376 is not registered in {consul}")


# --- swarm.schedule under a broken path: it follows, it is no cause of its own -----------------
@pytest.mark.parametrize(("proto", "port", "rule"), [("udp", 4789, "data_plane_blocked")])
def test_scheduling_probes_that_cannot_cross_follow_the_data_plane_cause(
    classic: FakeLab, proto: str, port: int, rule: str
) -> None:
    classic.drop("b", proto, port)
    report = classic.verify()
    schedule = [r for r in report.failed if r.check == "swarm.schedule"]
    assert schedule, "the scheduling probes should have failed to reach b"
    assert all("b" in r.nodes for r in schedule)
    assert [(d.rule, d.nodes) for d in report.diagnosis] == [(rule, ["b"])]
    [cause] = report.diagnosis
    assert "swarm.schedule" in cause.checks


def test_scheduling_probes_that_cannot_join_without_the_store_follow_kv_down(
    classic: FakeLab,
) -> None:
    classic.stop_kv()
    report = classic.verify()
    assert [d.rule for d in report.diagnosis][:1] == ["kv_down"]
    failed = {r.check for r in report.failed}
    explained = {c for d in report.diagnosis for c in d.checks}
    assert "swarm.schedule" in failed and "swarm.schedule" in report.diagnosis[0].checks
    assert failed <= explained and len(report.diagnosis) == 1
