"""The waits inside `up`'s steps: ready, died early, or timed out, with the same errors.

Services and engines are faked on the local nodes' handles (no root); a node's
stop_service runs on real child processes.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import docker.errors
import pytest
from lab_specs import REPO, make_ctx, run_for

from overlaylab.context import LabContext
from overlaylab.errors import NodeError, OverlaylabError
from overlaylab.providers.command import CommandResult
from overlaylab.spec import load_spec
from overlaylab.up.dead_engine import FORGET_STALE
from overlaylab.up.steps import engines, kv, networks
from overlaylab.up.steps.engines import ENABLE_FORWARDING
from overlaylab.waiting import wait_until


class FakeService:
    """Stands in for a local node's services: alive once started, until told to die.

    Only the services (and, for engines, the ping) are replaced, on the node handle
    the steps get from `ctx.node`; its files are the real ones in the lab's folder.
    """

    def __init__(self, ctx: LabContext, node: str, monkeypatch: pytest.MonkeyPatch) -> None:
        self.node = ctx.node(node)
        self.spawned: list[list[str]] = []
        self.dies_after_polls: int | None = None
        self.polls = 0
        monkeypatch.setattr(self.node, "start_service", self.start_service)
        monkeypatch.setattr(self.node, "service_alive", self.service_alive)
        monkeypatch.setattr(self.node, "service_log", self.service_log)
        monkeypatch.setattr(self.node, "run", self.run)

    def run(self, argv: Sequence[str], **options: object) -> CommandResult:
        # The commands modelled: forwarding on, a dead engine's pid files forgotten (none
        # here), and "is the KV program installed" (yes).
        modelled = (ENABLE_FORWARDING, FORGET_STALE, 'command -v "$1"')
        assert list(argv) == ENABLE_FORWARDING or argv[2] in modelled, argv
        return CommandResult(tuple(argv), 0, "", "", self.node.name)

    def start_service(self, service: str, argv: Sequence[str]) -> None:
        self.spawned.append(list(argv))

    def service_alive(self, service: str, binary: str | None = None) -> bool:
        if not self.spawned:
            return False
        self.polls += 1
        return self.dies_after_polls is None or self.polls <= self.dies_after_polls

    def service_log(self, service: str) -> str | None:
        return "panic: no luck" if self.spawned else None

    def pings(self, monkeypatch: pytest.MonkeyPatch, *answers: bool) -> None:
        """The engine's /_ping answers these in turn, then the last one for ever."""
        pending = list(answers)

        def engine_ping(timeout: float = 1.0) -> bool:
            return pending.pop(0) if len(pending) > 1 else pending[0]

        monkeypatch.setattr(self.node, "engine_ping", engine_ping)


def answers(*values: object) -> Callable[..., object]:
    """A stub returning `values` in turn, then the last one for ever."""
    pending = list(values)
    return lambda *args, **kwargs: pending.pop(0) if len(pending) > 1 else pending[0]


# --- the KV store -------------------------------------------------------------------------
def test_kv_ready_after_a_few_polls(ctx: LabContext, monkeypatch: pytest.MonkeyPatch) -> None:
    service = FakeService(ctx, "kv", monkeypatch)
    monkeypatch.setattr(kv, "kv_ready", answers((False, "refused"), (False, "refused"), (True, "")))
    assert kv.ensure_kv(ctx, run_for(ctx)) is True
    assert service.spawned[0][0] == "etcd"


def test_kv_that_dies_fails_at_once_with_its_last_answer_and_log(
    ctx: LabContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = FakeService(ctx, "kv", monkeypatch)
    service.dies_after_polls = 1
    monkeypatch.setattr(kv, "kv_ready", answers((False, "connection refused")))
    started = time.monotonic()
    with pytest.raises(NodeError) as info:
        kv.ensure_kv(ctx, run_for(ctx))
    assert time.monotonic() - started < kv.READY_TIMEOUT / 3  # did not wait out the timeout
    assert info.value.node == "kv"
    message = str(info.value.cause)
    assert message.startswith("etcd on kv did not become ready (connection refused).")
    assert "  | panic: no luck" in message


def test_kv_that_never_answers_times_out(ctx: LabContext, monkeypatch: pytest.MonkeyPatch) -> None:
    FakeService(ctx, "kv", monkeypatch)
    monkeypatch.setattr(kv, "READY_TIMEOUT", 0.3)
    monkeypatch.setattr(kv, "kv_ready", answers((False, "HTTP 503: starting")))
    started = time.monotonic()
    with pytest.raises(OverlaylabError, match=r"did not become ready \(HTTP 503: starting\)"):
        kv.ensure_kv(ctx, run_for(ctx))
    assert 0.25 <= time.monotonic() - started < 3


# --- engines ------------------------------------------------------------------------------
def test_engine_started_once_it_answers(ctx: LabContext, monkeypatch: pytest.MonkeyPatch) -> None:
    service = FakeService(ctx, "node1", monkeypatch)
    service.pings(monkeypatch, False, False, True)
    node = ctx.spec.engine_nodes[0]
    assert engines._ensure_engine(ctx, node) == "started"
    assert service.spawned == [["dockerd", "--config-file", str(ctx.layout.daemon_config("node1"))]]
    # The configuration it was started with is in place, through the node's files.
    config = json.loads(ctx.layout.daemon_config("node1").read_text())
    assert config == engines.daemon_config(ctx, node)


def test_engine_that_dies_fails_at_once_with_its_log(
    ctx: LabContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = FakeService(ctx, "node1", monkeypatch)
    service.dies_after_polls = 2
    service.pings(monkeypatch, False)
    started = time.monotonic()
    with pytest.raises(NodeError) as info:
        engines._ensure_engine(ctx, ctx.spec.engine_nodes[0])
    assert time.monotonic() - started < engines.READY_TIMEOUT / 3
    socket = ctx.layout.docker_socket("node1")
    assert info.value.node == "node1"
    assert str(info.value.cause).startswith(f"dockerd on node1 did not answer on {socket}.")
    assert "  | panic: no luck" in str(info.value)


@pytest.mark.parametrize(
    ("spec_file", "node", "patience"),
    [
        ("inventory/lab.yml", "node1", engines.READY_TIMEOUT),
        ("tests/testdata/labs/swarm.yml", "m2", engines.MANAGER_READY_TIMEOUT),
        ("tests/testdata/labs/swarm.yml", "w1", engines.READY_TIMEOUT),
    ],
)
def test_a_swarm_manager_is_given_longer_to_answer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spec_file: str, node: str, patience: float
) -> None:
    """A manager of a leaderless swarm answers only once its swarm component gives up."""
    ctx = make_ctx(load_spec(REPO / spec_file), tmp_path / "state")
    service = FakeService(ctx, node, monkeypatch)
    service.pings(monkeypatch, True)
    waited: list[float] = []
    real_wait = engines.wait_until

    def recording(condition, timeout, interval=0.05):  # type: ignore[no-untyped-def]
        waited.append(timeout)
        return real_wait(condition, timeout, interval)

    monkeypatch.setattr(engines, "wait_until", recording)
    assert engines._ensure_engine(ctx, ctx.spec.node(node)) == "started"
    assert waited == [patience]


def test_start_slots_space_real_starts_and_cost_nothing_when_unused() -> None:
    slots = engines.StartSlots(0.05)
    taken: list[float] = []
    lock = threading.Lock()

    def take() -> None:
        slots.take()
        with lock:
            taken.append(time.monotonic())

    threads = [threading.Thread(target=take) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    taken.sort()
    # The slots handed out are a full gap apart, and no thread goes before its slot (the
    # i-th to go, at or after the i-th slot). How late a sleeping thread wakes is the
    # scheduler's: two wake-ups can come closer than the gap on a loaded machine.
    given = slots.given
    gaps = [later - earlier for earlier, later in itertools.pairwise(given)]
    assert len(gaps) == 3 and all(gap >= 0.05 - 1e-9 for gap in gaps), gaps
    assert all(went >= slot for went, slot in zip(taken, given, strict=True)), (taken, given)
    # A slot only waits for the ones taken before it: a fresh one is free at once.
    fresh = engines.StartSlots(60.0)
    before = time.monotonic()
    fresh.take()
    assert time.monotonic() - before < 30.0


# --- overlay networks ---------------------------------------------------------------------
class FakeApi:
    def __init__(self, refusals: int, known: dict[str, str] | None = None) -> None:
        self.refusals = refusals
        self.known = known or {}
        self.create_calls = 0

    def create_network(self, name: str, **options: object) -> dict[str, str]:
        self.create_calls += 1
        if self.create_calls <= self.refusals:
            raise docker.errors.APIError(
                "500", explanation="datastore for scope global is not ready"
            )
        self.known[name] = "abc123def456789"
        return {"Id": self.known[name]}

    def networks(self, names: list[str]) -> list[dict[str, str]]:
        return [{"Name": n, "Id": self.known[n]} for n in names if n in self.known]

    def inspect_network(self, net_id: str) -> dict[str, object]:
        return {"Id": net_id, "Driver": "overlay"}


class FakeClient:
    def __init__(self, api: FakeApi) -> None:
        self.api = api


def test_network_creation_is_retried_until_the_engine_accepts(ctx: LabContext) -> None:
    api = FakeApi(refusals=2)
    info = networks._create(ctx, FakeClient(api), ctx.spec.networks[0])  # type: ignore[arg-type]
    assert info["Id"] == "abc123def456789"
    assert api.create_calls == 3


def test_network_creation_refused_until_the_timeout_names_the_reason(
    ctx: LabContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(networks, "CREATE_TIMEOUT", 0.3)
    api = FakeApi(refusals=1000)
    with pytest.raises(OverlaylabError) as info:
        networks._create(ctx, FakeClient(api), ctx.spec.networks[0])  # type: ignore[arg-type]
    assert str(info.value) == (
        "network dn: the engine refused to create it: datastore for scope global is not ready"
    )
    assert isinstance(info.value.__cause__, docker.errors.APIError)
    assert api.create_calls >= 2


def test_network_missing_on_one_engine_names_that_engine(
    ctx: LabContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(networks, "PROPAGATION_TIMEOUT", 0.3)
    seen = {"node1": {"dn": "abc123def456789"}, "node2": {"dn": "abc123def456789"}, "node3": {}}
    asked: list[str] = []

    def engine_of(node: str) -> Callable[..., AbstractContextManager[FakeClient]]:
        @contextmanager
        def engine(timeout: int = 30) -> Iterator[FakeClient]:
            asked.append(node)
            yield FakeClient(FakeApi(refusals=0, known=seen[node]))

        return engine

    for node in seen:
        monkeypatch.setattr(ctx.node(node), "engine", engine_of(node))
    with pytest.raises(OverlaylabError) as info:
        networks._wait_everywhere(
            ctx, ctx.spec.networks[0], "abc123def456789", ["node1", "node2", "node3"]
        )
    assert str(info.value).startswith(
        "network dn (abc123def456) did not appear on node3 within 0s: "
    )
    # Engines that have it are not asked again.
    assert asked.count("node1") == 1 and asked.count("node3") > 1


# --- stopping a service (real processes) -------------------------------------------------
def start_as_service(ctx: LabContext, argv: list[str]) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(argv)
    ctx.layout.node_dir("node1").mkdir(parents=True, exist_ok=True)
    ctx.layout.pid_file("node1", "sleeper").write_text(f"{proc.pid}\n")
    # The node recognises the service by its name: wait until `sh` has become sleep.
    assert wait_until(lambda: ctx.node("node1").service_alive("sleeper", "sleep"), 5)
    return proc


def test_stop_service_stops_with_sigterm(ctx: LabContext) -> None:
    proc = start_as_service(ctx, ["sleep", "30"])
    ctx.node("node1").stop_service("sleeper", "sleep", timeout=5)
    assert proc.wait(timeout=5) == -15
    assert not ctx.node("node1").service_alive("sleeper")


def test_stop_service_ends_a_stopped_service_with_sigterm(ctx: LabContext) -> None:
    """A hung service (SIGSTOP, as the KV fault does) gets its SIGTERM acted on, not a
    SIGKILL after sitting out the timeout."""
    proc = start_as_service(ctx, ["sleep", "30"])
    os.kill(proc.pid, signal.SIGSTOP)
    ctx.node("node1").stop_service("sleeper", "sleep", timeout=30)
    assert proc.wait(timeout=5) == -15
    assert not ctx.node("node1").service_alive("sleeper")


def test_stop_service_kills_what_ignores_sigterm_after_the_timeout(ctx: LabContext) -> None:
    # An ignored signal stays ignored across exec: this sleep shrugs off SIGTERM.
    proc = start_as_service(ctx, ["sh", "-c", "trap '' TERM; exec sleep 30"])
    started = time.monotonic()
    ctx.node("node1").stop_service("sleeper", "sleep", timeout=0.5)
    assert proc.wait(timeout=5) == -9
    assert 0.4 <= time.monotonic() - started < 5
