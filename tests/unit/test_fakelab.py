"""The fake lab the diagnosis tests run the checks against: it answers only the I/O
it models, and what it answers agrees with the code that reads it."""

from __future__ import annotations

import socket
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from fakelab import FakeContainers, FakeLab, FakeLabError, UpProvider, fake_context, fault_lab_spec

import overlaylab.providers.local.netns
import overlaylab.verify.checks.kv
import overlaylab.verify.probes
from overlaylab.providers.host_runner import HostRunner
from overlaylab.verify import batch as probe_batch
from overlaylab.verify import run as verify_module
from overlaylab.verify.probes import ensure_probes, exec_in
from overlaylab.verify.run import select_checks


@pytest.fixture
def lab(tmp_path: Path) -> FakeLab:
    return FakeLab(fault_lab_spec(), tmp_path / "state")


def test_a_command_it_does_not_model_is_an_error_not_a_guess(lab: FakeLab) -> None:
    with pytest.raises(FakeLabError, match="does not answer the command"):
        exec_in(lab.ctx, "n1", "probe-dn-n1", ["wget", "-q", "-O-", "http://mongo"])


def test_what_checks_never_do_on_a_node_is_an_error_not_a_guess(lab: FakeLab) -> None:
    node = lab.ctx.node("n1")
    with pytest.raises(FakeLabError, match="the command"):
        node.run(["ip", "route"])
    with pytest.raises(FakeLabError, match="reading"):
        node.read_file(node.paths.tls_dir / "key.pem")
    # Checks read an engine's daemon.json (engines.advertise), and nothing else.
    assert b"cluster-advertise" in (node.read_file(node.paths.daemon_config) or b"")
    with pytest.raises(FakeLabError, match="the log of etcd on kv"):
        lab.ctx.node("kv").service_log("etcd")
    with pytest.raises(FakeLabError, match="an engine on kv"), lab.ctx.node("kv").engine():
        pass


def test_the_nodes_answer_from_the_model(lab: FakeLab) -> None:
    n1, kv = lab.ctx.node("n1"), lab.ctx.node("kv")
    assert n1.engine_ping() and n1.service_alive("dockerd", "dockerd")
    assert n1.tcp_connect(str(kv.address), 2379) == (True, "")
    lab.kill_engine("n1")
    assert not n1.engine_ping() and not n1.service_alive("dockerd")
    lab.cut_off("n2")
    assert lab.ctx.node("n2").tcp_connect(str(kv.address), 2379) == (
        False,
        "TimeoutError: timed out",
    )


@pytest.mark.parametrize(
    ("name", "value", "named"),
    [
        (
            "netns_socket",
            overlaylab.providers.local.netns.netns_socket,
            r"overlaylab\.providers\.local\.netns\.netns_socket",
        ),
        ("socket", socket, r"answer socket"),
        ("HostRunner", HostRunner, r"overlaylab\.providers\.host_runner\.HostRunner"),
    ],
    ids=["local-provider-helper", "socket-module", "host-commands"],
)
def test_a_check_reaching_around_the_node_handles_stops_the_fake(
    name: str, value: object, named: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(overlaylab.verify.checks.kv, name, value, raising=False)
    with pytest.raises(FakeLabError, match=rf"{named}, which overlaylab\.verify\.checks\.kv holds"):
        FakeLab(fault_lab_spec(), tmp_path / "state")


def test_probes_are_found_by_the_real_ensure_probes(lab: FakeLab) -> None:
    probes, problems = ensure_probes(lab.ctx)
    assert problems == {}
    assert len(probes) == 3 * 2 * 2  # nodes x overlays x slots
    assert {p.address for p in probes} == {
        c.networks[p.network] for p in probes if (c := lab.container(p.name)) is not None
    }


def test_running_probes_are_looked_up_once_each_and_none_is_started(
    lab: FakeLab, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, _ = ensure_probes(lab.ctx)
    looked: list[str] = []
    get = FakeContainers.get
    monkeypatch.setattr(
        FakeContainers, "get", lambda self, name: (looked.append(name), get(self, name))[1]
    )
    monkeypatch.setattr(FakeContainers, "run", lambda *_a, **_k: pytest.fail("started a probe"))
    again, problems = ensure_probes(lab.ctx)
    assert problems == {} and again == first
    assert sorted(looked) == sorted(p.name for p in first)


def test_a_dead_engine_is_a_problem_for_ensure_probes(lab: FakeLab) -> None:
    lab.kill_engine("n2")
    probes, problems = ensure_probes(lab.ctx)
    assert set(problems) == {"n2"}
    assert problems["n2"].startswith("DockerException: Error while fetching server API version")
    assert "n2" not in {p.node for p in probes}


def test_two_labs_in_one_test_answer_each_for_itself(lab: FakeLab, tmp_path: Path) -> None:
    lab.stop_kv()
    second = FakeLab(fault_lab_spec(), tmp_path / "second")
    assert second.verify().ok
    assert "kv.reachable" in {r.check for r in lab.verify().failed}


def test_probes_with_an_older_command_all_go_before_a_new_one_starts(
    lab: FakeLab, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The legacy overlay gossips endpoint joins and leaves unordered: a new probe must
    # not start while an old one on another node may still hold its address.
    monkeypatch.setattr(overlaylab.verify.probes, "OUTDATED_SETTLE", 0.0)
    old = [c for c in lab.running_containers() if c.is_probe]
    for c in old:
        c.command = ["sh", "-c", "an older probe command"]
    events: list[str] = []
    remove, start = lab.remove, lab.start_container
    monkeypatch.setattr(lab, "remove", lambda c: (events.append("remove"), remove(c))[1])
    monkeypatch.setattr(
        lab, "start_container", lambda *a, **k: (events.append("start"), start(*a, **k))[1]
    )
    probes, problems = ensure_probes(lab.ctx)
    assert problems == {}
    assert events == ["remove"] * len(old) + ["start"] * len(old)
    assert {p.name for p in probes} == {c.name for c in old}


def test_names_and_isolation_ride_in_the_pair_checks_round(
    lab: FakeLab, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Their tests go into the round every source probe already gets: no exec of their
    own. Asked for alone, they run their own round."""
    own_rounds: list[list[str]] = []
    run_tests = probe_batch.run_tests
    monkeypatch.setattr(
        probe_batch,
        "run_tests",
        lambda vctx, tests, timeout=None: (
            own_rounds.append([t.id for t in tests]),
            run_tests(vctx, tests, timeout),
        )[1],
    )
    report = lab.verify()
    assert report.ok, [f.message for f in report.failed]
    checked = {r.check for r in report.results if r.status == "pass"}
    assert {"names.resolve", "isolation.overlays", "connectivity.icmp"} <= checked
    assert own_rounds == []
    report = lab.verify(select_checks(only=("names.resolve",)))
    assert report.ok and len(own_rounds) == 1
    assert all(i.startswith("name") for i in own_rounds[0])


def test_checks_that_need_no_probe_run_while_the_probes_start(
    lab: FakeLab, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The probe start is held until engines.api has run: verify must not wait for the
    probes before the checks that read none, and must wait before those that do."""
    engines_checked = threading.Event()
    start = verify_module.ensure_probes

    def held_start(ctx: Any) -> Any:
        assert engines_checked.wait(10), "no check ran while the probes were starting"
        return start(ctx)

    monkeypatch.setattr(verify_module, "ensure_probes", held_start)
    checks = [
        replace(c, run=lambda v, run=c.run: (engines_checked.set(), run(v))[1])
        if c.id == "engines.api"
        else c
        for c in verify_module.ALL_CHECKS
    ]
    report = lab.verify(checks)
    assert report.ok, [f.message for f in report.failed]
    assert {r.check for r in report.results if r.status == "pass"} >= {
        "engines.api",
        "probes.running",
        "connectivity.udp",
    }


# --- the lab as `up` builds it -------------------------------------------------------------
def test_a_port_answers_only_where_a_service_listens_on_it(tmp_path: Path) -> None:
    provider = UpProvider()
    ctx = fake_context(tmp_path, provider)
    kv, engine = ctx.node("kv"), ctx.node("node1")
    kv_ip, engine_ip = str(kv.address), str(engine.address)
    kv.start_service("etcd", ["etcd"])
    assert kv.tcp_connect(kv_ip, 2379)[0]
    # Not the engine API's port on the KV node, nor etcd's on a node that runs no etcd.
    assert not kv.tcp_connect(kv_ip, 2376)[0] and not kv.tcp_connect(engine_ip, 2379)[0]
    assert not engine.engine_ping()
    engine.start_service("dockerd", ["dockerd"])
    assert engine.engine_ping() and engine.tcp_connect(engine_ip, 2376)[0]
    assert not engine.tcp_connect(engine_ip, 2379)[0]
    # Stopping the store closes its port, and only its port.
    kv.stop_service("etcd", "etcd")
    assert not kv.tcp_connect(kv_ip, 2379)[0] and engine.engine_ping()
