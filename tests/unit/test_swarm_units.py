"""Swarm mode's pure parts: the compose file as deployed, node judgement, the IPVS cause."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import docker
import pytest
from lab_specs import LAB_YML, REPO, SWARM_YML, make_ctx

from overlaylab.errors import OverlaylabError
from overlaylab.nodeconf import kv_argv
from overlaylab.spec import load_spec
from overlaylab.spec.models import Stack
from overlaylab.up.classic_swarm import discovery_url
from overlaylab.up.steps import swarm as swarm_step
from overlaylab.up.steps.kv import discovery_context
from overlaylab.up.swarm_stacks import _host_mode_port, deployed_compose
from overlaylab.verify.checks import swarm_services as swarm_checks
from overlaylab.verify.checks.swarm_mode import _judge_node, _quorum
from overlaylab.verify.checks.swarm_services import _endpoints
from overlaylab.verify.context import VerifyContext
from overlaylab.verify.diagnosis import diagnose
from overlaylab.verify.probes import Probe
from overlaylab.waiting import wait_until

STACK = Stack(name="demo", file="c.yml", services={"web": "w1", "api": "w2"})


def compose() -> dict[str, Any]:
    return {
        "version": "3.8",
        "services": {
            "web": {"image": "x", "ports": ["80:5000", "9000"]},
            "api": {"image": "x", "deploy": {"endpoint_mode": "vip"}, "ports": ["8081:8080"]},
        },
    }


def test_placements_become_constraints_on_the_labs_node_label() -> None:
    out = deployed_compose(compose(), STACK, ipvs=True)
    assert out["services"]["web"]["deploy"]["placement"]["constraints"] == [
        "node.labels.overlaylab.node == w1"
    ]
    assert out["services"]["api"]["deploy"]["placement"]["constraints"] == [
        "node.labels.overlaylab.node == w2"
    ]


def test_with_ipvs_the_file_keeps_its_endpoint_mode_and_ports() -> None:
    out = deployed_compose(compose(), STACK, ipvs=True)
    assert "endpoint_mode" not in out["services"]["web"]["deploy"]
    assert out["services"]["web"]["ports"] == ["80:5000", "9000"]


def test_without_ipvs_dnsrr_and_host_ports_unless_the_file_insists() -> None:
    out = deployed_compose(compose(), STACK, ipvs=False)
    web = out["services"]["web"]
    assert web["deploy"]["endpoint_mode"] == "dnsrr"
    assert web["ports"] == [
        {"target": 5000, "protocol": "tcp", "mode": "host", "published": 80},
        {"target": 9000, "protocol": "tcp", "mode": "host"},
    ]
    api = out["services"]["api"]  # the file says vip: deployed as asked
    assert api["deploy"]["endpoint_mode"] == "vip" and api["ports"] == ["8081:8080"]


def test_deploying_twice_adds_no_second_constraint() -> None:
    once = deployed_compose(compose(), STACK, ipvs=False)
    twice = deployed_compose(once, STACK, ipvs=False)
    assert twice["services"]["web"]["deploy"]["placement"]["constraints"] == [
        "node.labels.overlaylab.node == w1"
    ]


@pytest.mark.parametrize(
    ("port", "long"),
    [
        ("53/udp", {"target": 53, "protocol": "udp", "mode": "host"}),
        ({"target": 1, "published": 2}, {"mode": "host", "target": 1, "published": 2}),
        ({"target": 1, "mode": "ingress"}, {"target": 1, "mode": "ingress"}),
        ("127.0.0.1:80:80", "127.0.0.1:80:80"),  # left to the CLI as written
    ],
)
def test_host_mode_ports(port: Any, long: Any) -> None:
    assert _host_mode_port(port) == long


def swarm_node(**changes: Any) -> dict[str, Any]:
    attrs: dict[str, Any] = {
        "Status": {"State": "ready", "Addr": "192.168.88.11"},
        "Spec": {"Availability": "active", "Role": "worker"},
    }
    for path, value in changes.items():
        section, key = path.split("__")
        attrs.setdefault(section, {})[key] = value
    return attrs


def test_a_healthy_worker_passes() -> None:
    result = _judge_node("w1", "192.168.88.11", ["worker"], swarm_node(), "m1")
    assert result.status == "pass" and result.target == "w1"


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"Status__State": "down"}, "state down"),
        ({"Spec__Availability": "drain"}, "availability drain"),
        ({"Spec__Role": "manager"}, "role manager, the spec says worker"),
        ({"Status__Addr": "172.18.0.1"}, "address 172.18.0.1, its lab address is 192.168.88.11"),
    ],
)
def test_a_worker_unlike_the_spec_fails_and_says_how(changes: dict[str, Any], problem: str) -> None:
    result = _judge_node("w1", "192.168.88.11", ["worker"], swarm_node(**changes), "m1")
    assert result.status == "fail" and problem in result.message


def test_a_node_missing_from_the_swarm_fails() -> None:
    result = _judge_node("w2", "192.168.88.12", ["worker"], None, "m1")
    assert result.status == "fail"
    assert "no node of the swarm m1 manages joined with 192.168.88.12" in result.message


def test_quorum_needs_a_majority_of_managers() -> None:
    reachable = {"ManagerStatus": {"Reachability": "reachable"}}
    seen = {"m1": reachable, "m2": reachable, "m3": {"ManagerStatus": {"Reachability": "x"}}}
    assert _quorum(seen, "m1", ["m1", "m2", "m3"]).status == "pass"
    del seen["m2"]
    lost = _quorum(seen, "m1", ["m1", "m2", "m3"])
    assert lost.status == "fail" and lost.nodes == ["m2", "m3"]


def test_endpoint_mode_comes_from_the_service_spec() -> None:
    attrs = {
        "Spec": {"EndpointSpec": {"Mode": "dnsrr"}},
        "Endpoint": {"Spec": {}, "VirtualIPs": [{"NetworkID": "n1", "Addr": "10.0.18.6/24"}]},
    }
    assert _endpoints(attrs, {"n1": "dn"})["mode"] == "dnsrr"
    attrs["Spec"] = {}
    found = _endpoints(attrs, {"n1": "dn"})
    assert found["mode"] == "vip" and found["vips"] == {"dn": "10.0.18.6"}


def test_classic_swarm_discovers_through_a_consul_beside_etcd(tmp_path: Path) -> None:
    spec = load_spec(REPO / "tests/testdata/labs/classic.yml")
    assert discovery_url(spec) == "etcd://192.168.86.10:2379"
    assert discovery_context(make_ctx(spec, tmp_path)) is None  # one store: nothing beside
    spec = spec.model_copy(
        update={"orchestration": spec.orchestration.model_copy(update={"discovery": "consul"})}
    )
    assert discovery_url(spec) == "consul://192.168.86.10:8500"
    beside = discovery_context(make_ctx(spec, tmp_path))
    assert beside is not None and beside.spec.kv is not None
    assert (beside.spec.kv.backend, beside.spec.kv.node) == ("consul", "kv")
    _binary, argv = kv_argv(beside.spec, tmp_path)
    assert argv[:2] == ["consul", "agent"] and str(tmp_path / "consul") in argv


# --- the ports a VIP is tried on ---------------------------------------------------------
PROC_NET_TCP = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid
   0: 0B00007F:A0B1 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0
   1: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0
   2: 0300120A:1F91 0200120A:D431 01 00000000:00000000 00:00000000 00000000     0
  sl  local_address                         remote_address                        st
   0: 00000000000000000000000000000000:1388 00000000000000000000000000000000:0000 0A
   1: 00000000000000000000000001000000:0016 00000000000000000000000000000000:0000 0A
   2: 0000000000000000FFFF00000100007F:0017 00000000000000000000000000000000:0000 0A
"""


def test_listening_ports_leave_out_loopback_and_connections() -> None:
    # 127.0.0.11 (the embedded DNS), ::1 and ::ffff:127.0.0.1 are loopback; 8081 is a
    # connection, not a listener.
    assert swarm_checks.listening_ports(PROC_NET_TCP) == {8080, 5000}


def test_compose_ports_are_published_targets_and_exposed_ports() -> None:
    compose = {
        "services": {
            "api": {
                "ports": ["80:5000", "9000", {"target": 7000, "published": 7001}],
                "expose": ["8080", "8443/tcp"],
            },
            "quiet": {},
        }
    }
    assert swarm_checks._compose_ports(compose, "api") == {5000, 9000, 7000, 8080, 8443}
    assert swarm_checks._compose_ports(compose, "quiet") == set()


def test_a_vip_with_no_port_to_try_fails_without_ipvs_and_is_untested_with_it() -> None:
    spec = load_spec(LAB_YML)
    probes = [Probe(n, "dn", f"probe-dn-{n}", f"10.0.18.{i}") for i, n in enumerate(("m1", "w1"))]
    vctx = VerifyContext(lab=None, probes=probes)  # type: ignore[arg-type]
    failed = swarm_checks._vip_without_ports(
        vctx, "demo_api", "w2", "dn", "10.0.18.6", {"m1": False, "w1": False}
    )
    assert failed.status == "fail" and failed.details["ipvs"] is False
    [cause] = diagnose(spec, [failed])
    assert cause.cause.startswith("the kernel has no IPVS")
    untested = swarm_checks._vip_without_ports(
        vctx, "demo_api", "w2", "dn", "10.0.18.6", {"m1": True, "w1": True}
    )
    assert untested.status == "error" and untested.message.startswith("not tested")


class _LeaderlessSwarm:
    """docker-py's `client.swarm` on a manager whose raft has no leader for a while."""

    def __init__(self, leaderless_reads: int) -> None:
        self.left = leaderless_reads
        self.reads = 0
        self.attrs: dict[str, Any] = {}

    def reload(self) -> None:
        self.reads += 1
        if self.left:
            self.left -= 1
            raise docker.errors.APIError(
                "500 Server Error",
                explanation="rpc error: code = Unknown desc = The swarm does not have a leader.",
            )
        self.attrs = {"JoinTokens": {"Worker": "SWMTKN-w", "Manager": "SWMTKN-m"}}


class _Client:
    def __init__(self, swarm: _LeaderlessSwarm) -> None:
        self.swarm = swarm


def _swarm_step_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """The step's waits on a clock that moves only when it sleeps: no real time passes."""
    now = [0.0]

    def fake_wait(condition: Any, timeout: float, interval: float = 0.05) -> Any:
        def sleep(seconds: float) -> None:
            now[0] += seconds

        return wait_until(condition, timeout, interval, clock=lambda: now[0], sleep=sleep)

    monkeypatch.setattr(swarm_step, "wait_until", fake_wait)


def test_join_tokens_wait_for_a_leader_after_a_manager_restarts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a manager's engine restarts (a healed quorum fault) the raft has no leader for
    some seconds: `up` waits for the election instead of failing on the first read."""
    _swarm_step_clock(monkeypatch)
    ctx = make_ctx(load_spec(SWARM_YML), tmp_path, SWARM_YML)
    swarm = _LeaderlessSwarm(leaderless_reads=3)
    tokens = swarm_step._join_tokens(ctx, swarm_step.leader_of(ctx.spec), _Client(swarm))  # type: ignore[arg-type]
    assert tokens == {"Worker": "SWMTKN-w", "Manager": "SWMTKN-m"}
    assert swarm.reads == 4


def test_a_swarm_that_never_gets_a_leader_is_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _swarm_step_clock(monkeypatch)
    ctx = make_ctx(load_spec(SWARM_YML), tmp_path, SWARM_YML)
    swarm = _LeaderlessSwarm(leaderless_reads=10_000)
    with pytest.raises(OverlaylabError) as caught:
        swarm_step._join_tokens(ctx, swarm_step.leader_of(ctx.spec), _Client(swarm))  # type: ignore[arg-type]
    message = str(caught.value)
    assert "no leader after 60s" in message and "more than half of its managers" in message
    assert "does not have a leader" in message  # the engine's own words, kept
    assert swarm.reads > 1


def test_other_swarm_errors_are_not_waited_on(tmp_path: Path) -> None:
    class Broken(_LeaderlessSwarm):
        def reload(self) -> None:
            raise docker.errors.APIError(
                "503 Server Error", explanation="This node is not a swarm manager."
            )

    ctx = make_ctx(load_spec(SWARM_YML), tmp_path, SWARM_YML)
    with pytest.raises(docker.errors.APIError):
        swarm_step._join_tokens(ctx, swarm_step.leader_of(ctx.spec), _Client(Broken(0)))  # type: ignore[arg-type]
