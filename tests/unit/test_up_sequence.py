"""`up` over a sequence of fake steps: what it records, and what a failure leaves behind.

Every exception inside a step is that step's failure (StepError with step, node and
cause) and a lab this run started is removed unless --retain; only an interruption
leaves the half-made lab for the next `up` to finish.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import docker.errors
import pytest
from fakelab import UpProvider, captured_progress, fake_context

from overlaylab.context import LabContext
from overlaylab.errors import (
    CommandError,
    OverlaylabError,
    PreflightError,
    StepError,
    TeardownIncomplete,
    on_node,
)
from overlaylab.up import pipeline
from overlaylab.up.compose_warm import WarmCompose
from overlaylab.up.pipeline import Step
from overlaylab.up.run import UpRun


class Sequence:
    """Named fake steps that record that they ran; `during` runs an action inside one."""

    def __init__(self, names: list[str], changed: set[str] | None = None) -> None:
        self.names = names
        self.changed = changed if changed is not None else set(names)
        self.ran: list[str] = []
        self.actions: dict[str, Callable[[], None]] = {}

    def during(self, name: str, action: Callable[[], None]) -> None:
        self.actions[name] = action

    def steps(self) -> list[tuple[str, Step]]:
        return [(name, self._step(name)) for name in self.names]

    def _step(self, name: str) -> Step:
        def ensure(ctx: LabContext, run: UpRun) -> bool:
            self.ran.append(name)
            if name in self.actions:
                self.actions[name]()
            return name in self.changed

        return ensure


NAMES = ["nodes", "tls", "kv", "engines", "images", "gossip", "networks", "stacks"]


@pytest.fixture
def preflights(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    ran: list[str] = []
    monkeypatch.setattr(pipeline, "preflight", lambda ctx: ran.append(ctx.spec.name))
    return ran


def run_up(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    sequence: Sequence,
    provider: UpProvider,
    retain: bool = False,
) -> tuple[LabContext, pipeline.UpReport | BaseException, str]:
    """`up` with the fake sequence; (context, report or what it raised, what it said)."""
    progress, said = captured_progress()
    ctx = fake_context(tmp_path, provider, progress=progress)
    monkeypatch.setattr(pipeline, "UP_SEQUENCE", sequence.steps())
    outcome: pipeline.UpReport | BaseException
    try:
        outcome = pipeline.up(ctx, retain=retain)
    except BaseException as exc:  # KeyboardInterrupt too: the tests look at what it was
        outcome = exc
    return ctx, outcome, said.getvalue()


# --- success ------------------------------------------------------------------------------
def test_success_records_the_steps_that_changed_something_and_every_timing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, preflights: list[str]
) -> None:
    sequence = Sequence(NAMES, changed={"nodes", "engines", "stacks"})
    sequence.during("kv", lambda: time.sleep(0.05))  # a slow step
    provider = UpProvider()
    _, report, said = run_up(tmp_path, monkeypatch, sequence, provider)
    assert isinstance(report, pipeline.UpReport)
    assert preflights == ["lab"]
    assert sequence.ran == NAMES
    assert report.changed == ["nodes", "engines", "stacks"]
    assert list(report.timings) == ["preflight", *NAMES]
    assert report.timings["kv"] >= 0.05
    assert report.seconds >= sum(report.timings.values()) - 1e-6
    assert provider.actions("destroy") == []
    for name in NAMES:
        assert f"✓ {name} (" in said


@pytest.mark.parametrize(("exists", "fails"), [(False, False), (False, True), (True, False)])
def test_a_fresh_up_starts_compose_ahead_and_leaves_none_waiting(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    preflights: list[str],
    exists: bool,
    fails: bool,
) -> None:
    """One compose interpreter per service of the default spec's stack, for a fresh
    lab only (a later `up` may compose nothing); none outlives `up`, failed or not."""
    started: list[int] = []
    monkeypatch.setattr(WarmCompose, "start", lambda _self, count, _env: started.append(count))
    closed: list[bool] = []
    monkeypatch.setattr(WarmCompose, "close", lambda _self: closed.append(True))
    sequence = Sequence(NAMES)
    if fails:
        sequence.during("images", raiser(OverlaylabError("no space left on device")))
    _, outcome, _ = run_up(tmp_path, monkeypatch, sequence, UpProvider(lab_exists=exists))
    if fails:
        assert isinstance(outcome, StepError) and outcome.step == "images"
    else:
        assert isinstance(outcome, pipeline.UpReport), outcome
    assert started == ([] if exists else [2])
    assert closed == [True]


def test_a_second_up_that_changes_nothing_reports_no_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, preflights: list[str]
) -> None:
    sequence = Sequence(NAMES, changed=set())
    _, report, _ = run_up(tmp_path, monkeypatch, sequence, UpProvider(lab_exists=True))
    assert isinstance(report, pipeline.UpReport)
    assert report.changed == []
    assert sequence.ran == NAMES


def test_a_failed_preflight_runs_no_step_and_removes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def preflight(ctx: LabContext) -> None:
        raise PreflightError([("`etcd` is not installed", "apt-get install -y etcd-server")])

    monkeypatch.setattr(pipeline, "preflight", preflight)
    sequence = Sequence(NAMES)
    provider = UpProvider()
    _, outcome, _ = run_up(tmp_path, monkeypatch, sequence, provider)
    assert isinstance(outcome, PreflightError)
    assert sequence.ran == []
    assert provider.actions("destroy") == []


# --- a step fails -------------------------------------------------------------------------
def raise_on_node(node: str, exc: Exception) -> Callable[[], None]:
    def fail() -> None:
        with on_node(node):
            raise exc

    return fail


def raiser(exc: BaseException) -> Callable[[], None]:
    def fail() -> None:
        raise exc

    return fail


CALLED_PROCESS = subprocess.CalledProcessError(
    1,
    ["docker", "load", "-i", "/lab/images/mongo.tar"],
    output=b"",
    stderr=b"Loaded layer 1/3\nunexpected EOF\n",
)
API_ERROR = docker.errors.APIError("500 Server Error", explanation="engine went away")
COMMAND_ERROR = CommandError(["docker-compose", "up", "-d", "web"], 1, "", "no such image: web")

FAILURES = {
    "RuntimeError": (RuntimeError("a bug"), None, "RuntimeError: a bug"),
    "APIError": (API_ERROR, None, "APIError: 500 Server Error"),
    "CalledProcessError": (
        CALLED_PROCESS,
        None,
        "command failed (exit 1):\n  $ docker load -i /lab/images/mongo.tar\n"
        "  | Loaded layer 1/3\n  | unexpected EOF",
    ),
    "OverlaylabError": (OverlaylabError("etcd on kv did not become ready"), None, None),
    "on_node": (COMMAND_ERROR, "node2", "command failed on host (exit 1)"),
}


@pytest.mark.parametrize("kind", FAILURES)
def test_any_failure_in_a_step_is_a_step_error_and_the_fresh_lab_is_removed(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, preflights: list[str]
) -> None:
    cause, node, described = FAILURES[kind]
    sequence = Sequence(NAMES)
    sequence.during("images", raise_on_node(node, cause) if node else raiser(cause))
    provider = UpProvider(lab_exists=False)
    _, error, said = run_up(tmp_path, monkeypatch, sequence, provider)

    assert isinstance(error, StepError)
    assert (error.step, error.node, error.cause) == ("images", node, cause)
    where = f" on {node}" if node else ""
    assert str(error).startswith(f"step 'images' failed{where}: ")
    assert (described or str(cause)) in str(error)
    assert error.__cause__ is not None  # the traceback stays reachable for debugging
    assert sequence.ran == NAMES[: NAMES.index("images") + 1]  # later steps never ran
    assert provider.actions("destroy") == [("destroy",)]
    assert "✗ images failed: removing the half-made lab (keep it with --retain)" in said
    assert "✓ images" not in said
    assert "interrupted" not in said


def test_the_output_tail_of_a_failed_command_is_kept_to_its_last_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, preflights: list[str]
) -> None:
    output = "".join(f"layer {i}\n" for i in range(1, 41)).encode()
    failed = subprocess.CalledProcessError(2, ["docker", "load"], output=output)
    sequence = Sequence(NAMES)
    sequence.during("images", raise_on_node("node3", failed))
    _, error, _ = run_up(tmp_path, monkeypatch, sequence, UpProvider())
    assert isinstance(error, StepError)
    lines = str(error).splitlines()
    assert lines[0] == "step 'images' failed on node3: command failed (exit 2):"
    assert lines[1] == "  $ docker load"
    assert lines[2:] == [f"  | layer {i}" for i in range(26, 41)]


def test_retain_keeps_the_half_made_lab(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, preflights: list[str]
) -> None:
    sequence = Sequence(NAMES)
    sequence.during("engines", raiser(API_ERROR))
    provider = UpProvider(lab_exists=False)
    _, error, said = run_up(tmp_path, monkeypatch, sequence, provider, retain=True)
    assert isinstance(error, StepError) and error.step == "engines"
    assert provider.actions("destroy") == []
    assert "removing the half-made lab" not in said
    assert sequence.ran == NAMES[: NAMES.index("engines") + 1]


def test_a_lab_that_existed_before_up_is_never_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, preflights: list[str]
) -> None:
    sequence = Sequence(NAMES)
    sequence.during("networks", raiser(RuntimeError("boom")))
    provider = UpProvider(lab_exists=True)
    _, error, said = run_up(tmp_path, monkeypatch, sequence, provider)
    assert isinstance(error, StepError) and error.step == "networks"
    assert provider.actions("destroy") == []
    assert "removing the half-made lab" not in said


def test_a_lab_is_fresh_when_it_did_not_exist_before_the_first_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, preflights: list[str]
) -> None:
    # The nodes step makes the lab exist; a later failure must still remove it.
    provider = UpProvider(lab_exists=False)
    sequence = Sequence(NAMES)
    sequence.during("nodes", lambda: setattr(provider, "lab_exists", True))
    sequence.during("kv", raiser(OverlaylabError("etcd on kv did not become ready")))
    _, error, _ = run_up(tmp_path, monkeypatch, sequence, provider)
    assert isinstance(error, StepError) and error.step == "kv"
    assert provider.actions("destroy") == [("destroy",)]


@pytest.mark.parametrize(
    ("destroy_error", "described"),
    [
        (
            TeardownIncomplete("lab", ["killed 3 processes"], ["mount /run/netns/ol-lab.a"]),
            "lab 'lab' is NOT fully down; still on this machine:\n  - mount /run/netns/ol-lab.a",
        ),
        (ValueError("bad pid file"), "ValueError: bad pid file; run `invoke down`"),
    ],
    ids=["teardown-incomplete", "a-bug"],
)
def test_a_failing_clean_up_is_said_and_the_step_failure_is_still_raised(
    destroy_error: Exception,
    described: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    preflights: list[str],
) -> None:
    sequence = Sequence(NAMES)
    cause = RuntimeError("engine died")
    sequence.during("engines", raiser(cause))
    provider = UpProvider(lab_exists=False)
    provider.destroy_error = destroy_error
    _, error, said = run_up(tmp_path, monkeypatch, sequence, provider)
    assert isinstance(error, StepError)
    assert (error.step, error.cause) == ("engines", cause)
    assert provider.actions("destroy") == [("destroy",)]
    assert f"clean-up failed too: {described}" in said


# --- an interruption ----------------------------------------------------------------------
@pytest.mark.parametrize("fresh", [True, False], ids=["fresh-lab", "existing-lab"])
def test_an_interruption_propagates_and_leaves_the_lab_for_the_next_up(
    fresh: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, preflights: list[str]
) -> None:
    sequence = Sequence(NAMES)
    sequence.during("engines", raiser(KeyboardInterrupt()))
    provider = UpProvider(lab_exists=not fresh)
    _, outcome, said = run_up(tmp_path, monkeypatch, sequence, provider)
    assert type(outcome) is KeyboardInterrupt
    assert sequence.ran == NAMES[: NAMES.index("engines") + 1]
    assert provider.actions("destroy") == []
    assert "interrupted: run `invoke up` to finish or `invoke down`" in said
    assert "removing the half-made lab" not in said
