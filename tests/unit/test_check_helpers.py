"""The pure helpers behind the checks, fed the real outputs they parse: busybox
nslookup and `ip -o -4 addr`, /etc/hosts, dockerd's panic log."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from lab_specs import make_ctx

from overlaylab.providers.local import START_MARKER
from overlaylab.spec.loader import parse_spec
from overlaylab.spec.models import ClusterSpec
from overlaylab.up.steps.stacks import container_problems, service_networks
from overlaylab.verify import context as base
from overlaylab.verify.checks import advertise, engines, names, probe_pairs, probes_running
from overlaylab.verify.checks.stack_containers import StackContainer
from overlaylab.verify.context import VerifyContext
from overlaylab.verify.probes import Probe
from overlaylab.verify.run import select_checks
from overlaylab.waiting import wait_until

# --- probe_pairs.resolved: busybox nslookup -------------------------------------------

NSLOOKUP_ONE = (
    "Server:\t\t127.0.0.11\n"
    "Address:\t127.0.0.11:53\n"
    "\n"
    "Non-authoritative answer:\n"
    "Name:\tmongo\n"
    "Address: 10.0.9.3\n"
    "\n"
)
NSLOOKUP_TWO = (
    "Server:\t\t127.0.0.11\n"
    "Address:\t127.0.0.11:53\n"
    "\n"
    "Non-authoritative answer:\n"
    "Name:\tmongo\n"
    "Address: 10.0.9.3\n"
    "Name:\tmongo\n"
    "Address: 10.0.9.7\n"
    "\n"
    "*** Can't find mongo: No answer\n"
    "\n"
)
# busybox < 1.28 numbers its addresses and names the server the same way.
NSLOOKUP_OLD = (
    "Server:    127.0.0.11\n"
    "Address 1: 127.0.0.11\n"
    "\n"
    "Name:      mongo\n"
    "Address 1: 10.0.9.3 demo_mongo_1.dn\n"
    "Address 2: 10.0.9.4\n"
)
NSLOOKUP_TIMEOUT = ";; connection timed out; no servers could be reached\n\n"
NSLOOKUP_NXDOMAIN = (
    "Server:\t\t127.0.0.11\nAddress:\t127.0.0.11:53\n\n** server can't find mongo: NXDOMAIN\n\n"
)


@pytest.mark.parametrize(
    ("output", "addresses"),
    [
        (NSLOOKUP_ONE, ["10.0.9.3"]),
        (NSLOOKUP_TWO, ["10.0.9.3", "10.0.9.7"]),
        (NSLOOKUP_OLD, ["10.0.9.3", "10.0.9.4"]),
        (NSLOOKUP_TIMEOUT, []),
        (NSLOOKUP_NXDOMAIN, []),
        ("", []),
    ],
    ids=["one", "two", "old-busybox", "timeout", "nxdomain", "empty"],
)
def test_resolved(output: str, addresses: list[str]) -> None:
    assert probe_pairs.resolved(output) == addresses


def test_resolved_never_returns_the_dns_server() -> None:
    for output in (NSLOOKUP_ONE, NSLOOKUP_OLD, NSLOOKUP_NXDOMAIN):
        assert "127.0.0.11" not in probe_pairs.resolved(output)


# --- probe_pairs.pairs -------------------------------------------------------------------

SPEC = """\
apiVersion: overlaylab/v1
kind: Cluster
name: fl
lab:
  subnet: 192.168.97.0/24
nodes:
  - name: kv
    roles: [kv]
  - name: n1
  - name: n2
  - name: n3
networks:
  - name: dn
    subnet: 10.0.9.0/24
  - name: other
    subnet: 10.0.10.0/24
"""


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> ClusterSpec:
    return parse_spec(SPEC, source="inline", spec_dir=tmp_path_factory.mktemp("spec"))


def probes_for(
    nodes: list[str], nets: list[str], slots: tuple[str, ...] = ("a", "b")
) -> list[Probe]:
    found = []
    for n, net in enumerate(nets):
        for i, node in enumerate(nodes):
            for s, slot in enumerate(slots):
                name = f"probe-{net}-{node}" + ("" if slot == "a" else f"-{slot}")
                found.append(Probe(node, net, name, f"10.0.{9 + n}.{2 + 2 * i + s}", slot))
    return found


@pytest.fixture
def make_vctx(spec: ClusterSpec) -> Iterator[Any]:
    made: list[VerifyContext] = []

    def make(probes: list[Probe]) -> VerifyContext:
        vctx = VerifyContext(lab=SimpleNamespace(spec=spec), probes=probes)  # type: ignore[arg-type]
        made.append(vctx)
        return vctx

    yield make
    for vctx in made:
        vctx.pool.shutdown(wait=False)


def described(pairs: list[tuple[Probe, Probe]]) -> list[str]:
    return [probe_pairs.subject(a, b) for a, b in pairs]


def test_pairs_cross_host_then_same_host_per_network(make_vctx: Any) -> None:
    pairs = probe_pairs.pairs(make_vctx(probes_for(["n1", "n2", "n3"], ["dn", "other"])))
    per_net = [
        "n1 -> n2 over {}",
        "n1 -> n3 over {}",
        "n2 -> n1 over {}",
        "n2 -> n3 over {}",
        "n3 -> n1 over {}",
        "n3 -> n2 over {}",
        "n1 -> n1 (2nd probe) over {}",
        "n2 -> n2 (2nd probe) over {}",
        "n3 -> n3 (2nd probe) over {}",
    ]
    assert described(pairs) == [s.format("dn") for s in per_net] + [
        s.format("other") for s in per_net
    ]
    # Only first probes start a pair; a pair never leaves its network.
    assert all(a.slot == "a" and a.network == b.network for a, b in pairs)
    paths = [probe_pairs.path_of(a, b) for a, b in pairs]
    assert paths.count("cross-host") == 12 and paths.count("same-host") == 6


def test_pairs_without_second_probes_are_cross_host_only(make_vctx: Any) -> None:
    pairs = probe_pairs.pairs(make_vctx(probes_for(["n1", "n2"], ["dn"], slots=("a",))))
    assert described(pairs) == ["n1 -> n2 over dn", "n2 -> n1 over dn"]


def test_pairs_leave_out_a_node_without_probes(make_vctx: Any) -> None:
    probes = probes_for(["n1", "n3"], ["dn"])
    pairs = probe_pairs.pairs(make_vctx(probes))
    assert described(pairs) == [
        "n1 -> n3 over dn",
        "n3 -> n1 over dn",
        "n1 -> n1 (2nd probe) over dn",
        "n3 -> n3 (2nd probe) over dn",
    ]
    assert not any("n2" in s for s in described(pairs))


def test_pairs_only_for_spec_networks(make_vctx: Any) -> None:
    probes = probes_for(["n1", "n2"], ["dn", "stray"], slots=("a",))
    assert described(probe_pairs.pairs(make_vctx(probes))) == [
        "n1 -> n2 over dn",
        "n2 -> n1 over dn",
    ]


def test_pairs_of_no_probes(make_vctx: Any) -> None:
    assert probe_pairs.pairs(make_vctx([])) == []


def test_a_node_without_probes_fails_probes_running_once_with_the_reason(
    make_vctx: Any,
) -> None:
    vctx = make_vctx(probes_for(["n1", "n2"], ["dn", "other"]))
    vctx.probe_problems = {"n3": "ConnectionError: engine down"}
    results = probes_running.running(vctx)
    assert [(r.target, r.status) for r in results] == [
        ("n1", "pass"),
        ("n2", "pass"),
        ("n3", "fail"),
    ]
    assert results[0].message == "4 probes on dn, other"
    assert "no path to or from it is tested: ConnectionError: engine down" in results[2].message
    assert results[2].details["exception"] == "ConnectionError: engine down"


def test_a_node_missing_some_probes_fails_even_without_an_error(make_vctx: Any) -> None:
    probes = [p for p in probes_for(["n1", "n2", "n3"], ["dn", "other"]) if p.name != "probe-dn-n2"]
    results = probes_running.running(make_vctx(probes))
    assert [r.status for r in results] == ["pass", "fail", "pass"]


def test_pairs_never_stand_in_for_a_node_without_probes(make_vctx: Any) -> None:
    vctx = make_vctx(probes_for(["n1", "n2"], ["dn"]))
    vctx.probe_problems = {"n3": "engine down"}
    assert all("n3" not in (a.node, b.node) for a, b in probe_pairs.pairs(vctx))
    assert [c.id for c in select_checks(["connectivity.tcp"])] == [
        "probes.running",
        "connectivity.tcp",
    ]


# --- advertise: interfaces, pick, /etc/hosts --------------------------------------------

IP_ADDR = (
    "1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever\n"
    "6: eth0    inet 10.0.9.2/24 brd 10.0.9.255 scope global eth0\\       "
    "valid_lft forever preferred_lft forever\n"
    "9: eth1    inet 172.18.0.2/16 brd 172.18.255.255 scope global eth1\\       "
    "valid_lft forever preferred_lft forever\n"
)
IFACES = [(1, "lo", "127.0.0.1"), (6, "eth0", "10.0.9.2"), (9, "eth1", "172.18.0.2")]
HOSTS = (
    "127.0.0.1\tlocalhost\n"
    "::1\tlocalhost ip6-localhost ip6-loopback\n"
    "fe00::0\tip6-localnet\n"
    "ff00::0\tip6-mcastprefix\n"
    "ff02::1\tip6-allnodes\n"
    "ff02::2\tip6-allrouters\n"
    "10.0.9.2\t3f4e5d6c7b8a\n"
)


def test_interfaces_parse_busybox_ip_output() -> None:
    assert advertise.interfaces(IP_ADDR) == IFACES


def test_interfaces_of_nothing() -> None:
    assert advertise.interfaces("") == []
    assert advertise.interfaces("OCI runtime exec failed: exec failed\n") == []


def test_pick_first_interface_is_lowest_index() -> None:
    assert advertise.pick("first-interface", IFACES, None) == ("10.0.9.2", "eth0")


def test_pick_java_enumeration_is_highest_index() -> None:
    assert advertise.pick("java-enumeration", IFACES, None) == ("172.18.0.2", "eth1")


def test_pick_goes_by_index_not_by_output_order() -> None:
    shuffled = [IFACES[2], IFACES[0], IFACES[1]]
    assert advertise.pick("first-interface", shuffled, None) == ("10.0.9.2", "eth0")
    assert advertise.pick("java-enumeration", shuffled, None) == ("172.18.0.2", "eth1")


def test_pick_hostname_uses_the_hosts_address() -> None:
    assert advertise.pick("hostname", IFACES, "10.0.9.2") == ("10.0.9.2", "eth0")
    assert advertise.pick("hostname", IFACES, "172.18.0.2") == ("172.18.0.2", "eth1")
    # An address on no interface is still what the app picks; it came from /etc/hosts.
    assert advertise.pick("hostname", IFACES, "10.0.9.99") == ("10.0.9.99", "/etc/hosts")
    assert advertise.pick("hostname", IFACES, None) is None


def test_pick_ignores_loopback() -> None:
    loop_only = [(1, "lo", "127.0.0.1")]
    for rule in ("first-interface", "java-enumeration", "hostname"):
        assert advertise.pick(rule, loop_only, "127.0.0.1") is None
    # A 127/8 address on another interface is loopback too.
    assert advertise.pick("java-enumeration", [*IFACES, (12, "dummy0", "127.0.1.1")], None) == (
        "172.18.0.2",
        "eth1",
    )


def test_pick_without_candidates() -> None:
    for rule in ("first-interface", "java-enumeration", "hostname"):
        assert advertise.pick(rule, [], "10.0.9.2") is None


def test_hosts_address_finds_the_hostname() -> None:
    assert advertise._hosts_address(HOSTS, "3f4e5d6c7b8a") == "10.0.9.2"


def test_hosts_address_skips_loopback_and_ipv6_loopback() -> None:
    assert advertise._hosts_address(HOSTS, "localhost") is None
    assert advertise._hosts_address(HOSTS, "ip6-loopback") is None
    debian = "127.0.0.1 localhost\n127.0.1.1 web\n"
    assert advertise._hosts_address(debian, "web") is None


def test_hosts_address_needs_an_exact_name() -> None:
    assert advertise._hosts_address(HOSTS, "3f4e5d6c7b8") is None
    assert advertise._hosts_address(HOSTS, "") is None
    assert advertise._hosts_address("", "3f4e5d6c7b8a") is None


def test_hosts_address_takes_the_first_line_with_the_name() -> None:
    hosts = HOSTS + "10.0.10.2\t3f4e5d6c7b8a\n"
    assert advertise._hosts_address(hosts, "3f4e5d6c7b8a") == "10.0.9.2"
    aliased = "10.0.9.5\tweb.dn web\n"
    assert advertise._hosts_address(aliased, "web") == "10.0.9.5"


# --- names: candidate names and the verdict -------------------------------------------


def container(**kw: Any) -> StackContainer:
    fields: dict[str, Any] = {
        "stack": "demo",
        "service": "mongo",
        "node": "n2",
        "name": "demo_mongo_1",
        "short_id": "3f4e5d6c7b8a",
        "networks": {"dn": "10.0.9.3", "other": "10.0.10.3"},
        "aliases": {"dn": ["mongo", "3f4e5d6c7b8a", "db"], "other": ["mongo", "store"]},
        "ports": [],
    }
    fields.update(kw)
    return StackContainer(**fields)


def test_candidate_names_in_order_without_repeats() -> None:
    assert names.candidate_names(container(), "dn") == [
        "demo_mongo_1",
        "mongo",
        "3f4e5d6c7b8a",
        "db",
        "demo_mongo_1.dn",
        "mongo.dn",
    ]


def test_candidate_names_use_that_networks_aliases() -> None:
    got = names.candidate_names(container(), "other")
    assert got == ["demo_mongo_1", "mongo", "store", "demo_mongo_1.other", "mongo.other"]
    assert "db" not in got


def test_candidate_names_without_aliases() -> None:
    c = container(aliases={})
    assert names.candidate_names(c, "dn") == [
        "demo_mongo_1",
        "mongo",
        "demo_mongo_1.dn",
        "mongo.dn",
    ]


COMPOSE = {
    "services": {
        "web": {"networks": ["dn", "back"]},
        "db": {"networks": {"dn": {"aliases": ["mongo"]}}},
        "solo": {},
        "host": {"network_mode": "host"},
    },
    "networks": {"dn": {"external": True}, "back": {}},
}


def test_service_networks_name_the_engines_networks_and_the_aliases_they_carry() -> None:
    assert service_networks(COMPOSE, "demo", "web") == {"dn": ["web"], "demo_back": ["web"]}
    assert service_networks(COMPOSE, "demo", "db") == {"dn": ["db", "mongo"]}
    assert service_networks(COMPOSE, "demo", "solo") == {"demo_default": ["solo"]}
    assert service_networks(COMPOSE, "demo", "host") == {}
    # swarm answers a service's name itself: only the aliases the file gives.
    assert service_networks(COMPOSE, "demo", "db", swarm=True) == {"dn": ["mongo"]}


def attrs(status: str, networks: dict[str, list[str]]) -> dict[str, Any]:
    nets = {n: {"Aliases": a} for n, a in networks.items()}
    return {"State": {"Status": status}, "NetworkSettings": {"Networks": nets}}


def test_container_problems_paused_cut_off_and_reconnected_without_aliases() -> None:
    wanted = {"dn": ["db", "mongo"]}
    assert container_problems(attrs("running", {"dn": ["db", "mongo", "3f4e"]}), wanted) == []
    assert container_problems(attrs("paused", {"dn": ["db", "mongo"]}), wanted) == ["is paused"]
    assert container_problems(attrs("running", {}), wanted) == ["is not on dn"]
    assert container_problems(attrs("running", {"dn": ["3f4e"]}), wanted) == [
        "is on dn without its alias(es) db, mongo"
    ]


def test_judge_a_name_of_several_containers_wants_all_of_them() -> None:
    both = ("10.0.9.3", "10.0.9.4")
    result = names._judge(container(), "dn", "mongo", {"n1": ["10.0.9.4", "10.0.9.3"]}, both)
    assert result.status == "pass" and result.message == "-> 10.0.9.3, 10.0.9.4 from n1"
    short = names._judge(container(), "dn", "mongo", {"n1": ["10.0.9.3"]}, both)
    assert short.status == "fail" and short.message.startswith("misses some of")


def judge(seen: dict[str, list[str]]) -> Any:
    return names._judge(container(), "dn", "mongo", seen)


def test_judge_correct_single_answer() -> None:
    result = judge({"n1": ["10.0.9.3"], "n3": ["10.0.9.3"]})
    assert result.status == "pass"
    assert result.message == "-> 10.0.9.3 from n1, n3"
    assert result.hint == ""
    assert result.subject == "mongo (demo/mongo on n2, dn)"
    assert result.nodes == ["n1", "n2", "n3"]
    assert result.details["expected"] == "10.0.9.3"


def test_judge_nothing_from_one_host() -> None:
    result = judge({"n1": [], "n3": ["10.0.9.3"]})
    assert result.status == "fail"
    assert result.message == "resolves to nothing from n1"
    assert result.hint == names.HINT


def test_judge_stale_address() -> None:
    result = judge({"n1": ["10.0.9.7"], "n3": ["10.0.9.7"]})
    assert result.status == "fail"
    assert result.message.startswith("resolves to a stale address ")
    assert "10.0.9.7" in result.message and "from n1" in result.message
    assert "from n3" in result.message


def test_judge_extra_addresses() -> None:
    result = judge({"n1": ["10.0.9.3", "10.0.9.7"], "n3": ["10.0.9.3"]})
    assert result.status == "fail"
    assert result.message.startswith("also returns other addresses ")
    assert "from n1" in result.message and "n3" not in result.message


def test_judge_different_answers_per_host_names_the_wrong_one() -> None:
    result = judge({"n1": ["10.0.9.3"], "n3": ["10.0.9.7"]})
    assert result.status == "fail"
    assert "stale address" in result.message and "from n3" in result.message
    assert "n1" not in result.message


def test_judge_lists_every_problem() -> None:
    result = judge({"n1": [], "n2": ["10.0.9.7"], "n3": ["10.0.9.3", "10.0.9.8"]})
    assert result.status == "fail"
    assert result.message.split("; ")[0] == "resolves to nothing from n1"
    assert len(result.message.split("; ")) == 3


def test_judge_with_no_observers_does_not_pass() -> None:
    assert judge({}).status != "pass"


# --- engines._death_reason --------------------------------------------------------------

PANIC_LOG = (
    'time="2024-05-01T10:00:00.000000000Z" level=info msg="API listen on /run/docker.sock"\n'
    "panic: runtime error: invalid memory address or nil pointer dereference\n"
    "[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x55d8c0a3b1c7]\n"
    "\n"
    "goroutine 63 [running]:\n"
    "github.com/docker/libnetwork.(*endpointCnt).Key(0x0)\n"
    "\t/build/src/github.com/docker/libnetwork/endpoint_cnt.go:22 +0x47\n"
    "github.com/docker/libnetwork/datastore.(*datastore).GetObject(0xc000420300)\n"
    "\t/build/src/github.com/docker/libnetwork/datastore/datastore.go:512 +0x1b4\n"
)
START_LOG = (
    'time="2024-05-01T10:05:00.000000000Z" level=info msg="Starting up"\n'
    'time="2024-05-01T10:05:01.000000000Z" level=info msg="API listen on /run/docker.sock"\n'
)


class EngineNode:
    """A local node of the `fl` lab whose dockerd left `log` and runs (or not): the
    real `LocalNode` reads its log (cut at the latest start marker) and its pid file."""

    def __init__(self, spec: ClusterSpec, tmp_path: Path, node: str) -> None:
        self.ctx = make_ctx(spec, tmp_path / "state")
        self.node = node
        self.log = self.ctx.layout.log_file(node, "dockerd")
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self.process: subprocess.Popen[bytes] | None = None

    def write_log(self, text: str) -> None:
        self.log.write_text(text)

    def run_silent_dockerd(self, tmp_path: Path) -> None:
        """A process whose name is dockerd (a copy of sleep) that answers nothing."""
        binary = tmp_path / "dockerd"
        shutil.copy(shutil.which("sleep") or "/bin/sleep", binary)
        self.process = subprocess.Popen([str(binary), "30"])
        self.ctx.layout.pid_file(self.node, "dockerd").write_text(f"{self.process.pid}\n")
        assert wait_until(lambda: self.ctx.node(self.node).service_alive("dockerd", "dockerd"), 5)

    def death_reason(self) -> tuple[str, str]:
        return engines._death_reason(VerifyContext(lab=self.ctx, probes=[]), self.node)


@pytest.fixture
def engine_node(spec: ClusterSpec, tmp_path: Path) -> Iterator[Callable[[str], EngineNode]]:
    made: list[EngineNode] = []

    def make(node: str) -> EngineNode:
        made.append(EngineNode(spec, tmp_path, node))
        return made[-1]

    yield make
    for engine_node in made:
        if engine_node.process is not None:
            engine_node.process.kill()
            engine_node.process.wait()


def test_death_reason_names_the_panic_and_its_frame(
    engine_node: Callable[[str], EngineNode],
) -> None:
    n3 = engine_node("n3")
    n3.write_log(PANIC_LOG)
    message, hint = n3.death_reason()
    assert message == (
        "dockerd on n3 crashed: panic: runtime error: invalid memory address or nil "
        "pointer dereference in github.com/docker/libnetwork.(*endpointCnt).Key"
    )
    assert str(n3.log) in hint and "bug in the engine" in hint


def test_death_reason_panic_without_docker_frames(engine_node: Callable[[str], EngineNode]) -> None:
    n1 = engine_node("n1")
    n1.write_log("panic: close of closed channel\n\ngoroutine 1 [running]:\nmain.main()\n")
    message, _ = n1.death_reason()
    assert message == "dockerd on n1 crashed: panic: close of closed channel"


def test_death_reason_not_running(engine_node: Callable[[str], EngineNode]) -> None:
    n3 = engine_node("n3")
    n3.write_log(START_LOG)
    message, hint = n3.death_reason()
    assert message == "dockerd on n3 is not running"
    assert "invoke up" in hint and str(n3.log) in hint


def test_death_reason_without_a_log(engine_node: Callable[[str], EngineNode]) -> None:
    message, _ = engine_node("n3").death_reason()
    assert message == "dockerd on n3 is not running"


def test_death_reason_running_but_silent(
    engine_node: Callable[[str], EngineNode], tmp_path: Path
) -> None:
    n2 = engine_node("n2")
    n2.write_log(START_LOG)
    n2.run_silent_dockerd(tmp_path)
    message, hint = n2.death_reason()
    assert message == "dockerd on n2 runs but does not answer on its socket"
    assert str(n2.log) in hint


def test_death_reason_ignores_a_panic_from_an_earlier_run(
    engine_node: Callable[[str], EngineNode],
) -> None:
    n3 = engine_node("n3")
    n3.write_log(PANIC_LOG + f"{START_MARKER} dockerd at 2.0\n" + START_LOG)
    message, _ = n3.death_reason()
    assert message == "dockerd on n3 is not running"


# --- the check's window (--timeout) ----------------------------------------------------------


def test_until_shares_the_checks_window_and_looks_once_when_it_has_closed(make_vctx: Any) -> None:
    """Many probes retried one after another each got a window of their own (76 s for a
    check with --timeout 10): once the check's window closes, each gets one look."""
    vctx = make_vctx([])
    vctx.timeout = 60.0
    vctx.deadline = time.monotonic() - 1  # the check spent its window on earlier probes
    tries: list[int] = []

    def failing() -> tuple[bool, int, str, str]:
        tries.append(1)
        return False, 1, "", "cmd"

    ok, *_rest, count = probe_pairs.until(vctx, failing)
    assert (ok, count, len(tries)) == (False, 1, 1)


def test_a_command_gets_what_is_left_of_the_checks_window(
    make_vctx: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[float] = []

    def exec_in(_lab: Any, _node: str, _name: str, _argv: list[str], timeout: float) -> Any:
        asked.append(timeout)
        return 0, ""

    monkeypatch.setattr(base, "exec_in", exec_in)
    vctx = make_vctx([])
    vctx.lab.node = lambda _name: SimpleNamespace(docker_env=dict)
    vctx.deadline = time.monotonic() - 1
    vctx.exec("n1", "probe", ["nslookup", "web"], timeout=6)  # closed: one short look
    vctx.exec("n1", "probe", ["batch"], timeout=9, bounded=False)  # bounds itself
    vctx.deadline = time.monotonic() + 100
    vctx.exec("n1", "probe", ["nslookup", "web"], timeout=6)  # open: its own timeout
    assert asked == [base.LAST_LOOK, 9, 6]
