"""The probe batch runner's protocol: tests in as arguments, results out after markers."""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from overlaylab.verify import batch
from overlaylab.verify.batch import (
    LOST,
    MARKER,
    RUNNER,
    STALL_ROUNDS,
    ProbeTest,
    keep_ahead,
    parse,
    recall,
    riders,
    run_tests,
    runner_argv,
)
from overlaylab.verify.probes import Probe

SOURCE = Probe("node1", "dn", "probe-dn-node1", "10.0.9.2")


@pytest.fixture(autouse=True)
def quick_rounds(monkeypatch: pytest.MonkeyPatch) -> None:
    """The pause between retry rounds gives a real overlay time to converge; the host's
    sh that stands in for the probes has nothing to wait for. Which tests each round
    carries, and when retries stop, do not depend on it."""
    monkeypatch.setattr(batch, "RETRY_PAUSE", 0.02)


@pytest.fixture(autouse=True)
def own_tmpdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The runner's `mktemp -d` in a folder of this test's own: in the machine's /tmp it
    showed, for a moment, to the test beside it (two workers) that checks chromium left
    nothing there."""
    monkeypatch.setenv("TMPDIR", str(tmp_path))


def exits_zero(code: int, _out: str) -> bool:
    return code == 0


def passes_from_try(tries_file: Path, n: int) -> list[str]:
    """A command that fails until its n-th run."""
    return ["sh", "-c", f"echo . >>{tries_file}; [ $(wc -l <{tries_file}) -ge {n} ]"]


def test_the_runner_runs_every_test_and_parse_reads_each_ones_code_and_output() -> None:
    """The real runner script, in the host's sh: what each test printed, and its exit."""
    tests = [
        ProbeTest("a", SOURCE, ["echo", "hi there"], lambda c, _o: c == 0),
        ProbeTest("b", SOURCE, ["sh", "-c", "echo 'two\nlines'; exit 3"], lambda c, _o: c == 0),
        ProbeTest("c", SOURCE, ["printf", "no newline"], lambda c, _o: c == 0),
        ProbeTest("d", SOURCE, ["sh", "-c", "sleep 5"], lambda c, _o: c == 0, timeout=1),
    ]
    argv = runner_argv(tests)
    assert argv[:4] == ["sh", "-c", RUNNER, "probe-batch"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=20, check=True)
    assert parse(done.stdout) == {
        "a": (0, "hi there\n"),
        "b": (3, "two\nlines\n"),
        "c": (0, "no newline"),
        "d": (124, ""),  # cut off by its own timeout, not the batch's
    }


def test_a_test_is_passed_to_the_runner_as_data_never_as_shell_code() -> None:
    hostile = ProbeTest("x", SOURCE, ["echo", "$(touch /tmp/pwned); `id`"], lambda c, _o: True)
    test_id, timeout, command = hostile.argument().split(" ", 2)
    assert (test_id, timeout) == ("x", "3")
    assert shlex.split(command) == ["echo", "$(touch /tmp/pwned); `id`"]


def test_parse_of_output_without_markers_finds_nothing() -> None:
    assert parse("OCI runtime exec failed") == {}
    assert parse(f"\n{MARKER} a \n") == {"a": (124, "")}  # killed before its exit code


class HostProbes:
    """What run_tests needs of a VerifyContext, the probes being this host's sh: each
    round's exec is recorded with the ids of the tests it carried."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.pool = ThreadPoolExecutor(max_workers=4)
        self.rounds: list[list[str]] = []

    def exec(
        self, source: Probe, container: None, argv: list[str], timeout: float, bounded: bool = True
    ) -> tuple[int, str, str]:
        self.rounds.append(sorted(a.split(" ", 1)[0] for a in argv[4:]))
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        return done.returncode, done.stdout, shlex.join(argv)


def test_failures_are_retried_together_until_they_pass_or_the_window_ends(
    tmp_path: Path,
) -> None:
    tries = tmp_path / "tries"
    tests = [
        ProbeTest("true", SOURCE, ["true"], exits_zero),
        # Passes from its third try: a transient failure.
        ProbeTest("flaky", SOURCE, passes_from_try(tries, 3), exits_zero),
        ProbeTest("never", SOURCE, ["false"], exits_zero),
    ]
    vctx = HostProbes(timeout=3.0)
    seen = run_tests(vctx, tests)  # type: ignore[arg-type]
    assert vctx.rounds[0] == ["flaky", "never", "true"]
    # Retries carry every failure in one exec each round.
    assert vctx.rounds[1] == vctx.rounds[2] == ["flaky", "never"]
    assert all(r == ["never"] for r in vctx.rounds[3:]) and len(vctx.rounds) >= 4
    assert seen["true"].ok and seen["true"].tries == 1
    assert seen["flaky"].ok and seen["flaky"].tries == 3
    assert not seen["never"].ok and seen["never"].tries == len(vctx.rounds)
    vctx.pool.shutdown()


def test_timeout_zero_runs_once(tmp_path: Path) -> None:
    vctx = HostProbes(timeout=10.0)
    seen = run_tests(vctx, [ProbeTest("no", SOURCE, ["false"], exits_zero)], timeout=0)  # type: ignore[arg-type]
    assert vctx.rounds == [["no"]] and seen["no"].tries == 1
    vctx.pool.shutdown()


def test_a_failure_is_retried_once_even_when_the_first_round_outlasts_the_window() -> None:
    vctx = HostProbes(timeout=0.2)
    slow = ProbeTest("slow", SOURCE, ["sh", "-c", "sleep 0.5; false"], exits_zero)
    seen = run_tests(vctx, [slow])  # type: ignore[arg-type]
    assert vctx.rounds == [["slow"], ["slow"]]
    assert seen["slow"].tries == 2
    vctx.pool.shutdown()


class AheadProbes(HostProbes):
    """HostProbes with what riders and recall read: the checks' tests known ahead."""

    def __init__(self, timeout: float, ahead: dict[str, Callable[[Any], list[ProbeTest]]]):
        super().__init__(timeout)
        self.cache: dict[str, Any] = {}
        self.ahead = ahead


def always(_code: int, _out: str) -> bool:
    return True


def test_tests_known_ahead_ride_in_the_round_and_are_recalled_without_an_exec() -> None:
    names = [ProbeTest("name0", SOURCE, ["echo", "resolved"], always)]
    iso = [ProbeTest("name0", SOURCE, ["false"], always)]  # the same id in another check
    vctx = AheadProbes(
        3.0, {"names.resolve": lambda _v: names, "isolation.overlays": lambda _v: iso}
    )
    ahead, standing = riders(vctx)  # type: ignore[arg-type]
    pair = ProbeTest("never", SOURCE, ["false"], exits_zero)
    seen = run_tests(vctx, [pair, *ahead])  # type: ignore[arg-type]
    keep_ahead(vctx, standing, seen)  # type: ignore[arg-type]
    assert len(vctx.rounds[0]) == 3  # one exec carried the pair test and both riders
    # A rider is one look: the failing pair test is retried, the failing rider is not.
    assert all(r == ["never"] for r in vctx.rounds[1:]) and len(vctx.rounds) >= 2
    rounds = len(vctx.rounds)
    recalled = recall(vctx, "names.resolve", names)  # type: ignore[arg-type]
    assert recalled["name0"].output == "resolved\n" and recalled["name0"].tries == 1
    assert recall(vctx, "isolation.overlays", iso)["name0"].code == 1  # type: ignore[arg-type]
    assert len(vctx.rounds) == rounds
    vctx.pool.shutdown()


def test_recall_runs_tests_that_did_not_ride_or_changed_since() -> None:
    listed = [ProbeTest("name0", SOURCE, ["echo", "then"], always)]
    vctx = AheadProbes(3.0, {"names.resolve": lambda _v: listed})
    ahead, standing = riders(vctx)  # type: ignore[arg-type]
    keep_ahead(vctx, standing, run_tests(vctx, ahead))  # type: ignore[arg-type]
    changed = [ProbeTest("name0", SOURCE, ["echo", "now"], always)]
    assert recall(vctx, "names.resolve", changed)["name0"].output == "now\n"  # type: ignore[arg-type]
    extra = [*listed, ProbeTest("name1", SOURCE, ["echo", "new"], always)]
    assert recall(vctx, "names.resolve", extra)["name1"].output == "new\n"  # type: ignore[arg-type]
    assert recall(vctx, "other.check", listed)["name0"].tries == 1  # type: ignore[arg-type]
    assert len(vctx.rounds) == 4  # the ride, then a round for each of the three recalls
    vctx.pool.shutdown()


def test_a_check_whose_tests_cannot_be_listed_ahead_does_not_ride() -> None:
    def broken(_vctx: Any) -> list[ProbeTest]:
        raise RuntimeError("engine on node2 is not answering")

    listed = [ProbeTest("iso0", SOURCE, ["true"], always)]
    vctx = AheadProbes(3.0, {"names.resolve": broken, "isolation.overlays": lambda _v: listed})
    ahead, standing = riders(vctx)  # type: ignore[arg-type]
    assert [standing[t.id][0] for t in ahead] == ["isolation.overlays"]
    vctx.pool.shutdown()


def test_retries_stop_once_rounds_in_a_row_pass_nothing() -> None:
    """A fault passes nothing round after round: it does not hold verify for the window."""
    vctx = HostProbes(timeout=30.0)
    seen = run_tests(vctx, [ProbeTest("never", SOURCE, ["false"], exits_zero)])  # type: ignore[arg-type]
    assert len(vctx.rounds) == 1 + STALL_ROUNDS
    assert seen["never"].tries == 1 + STALL_ROUNDS and seen["never"].seconds < 10
    vctx.pool.shutdown()


def test_a_round_that_passes_something_keeps_the_retries_going(tmp_path: Path) -> None:
    """Converging: each pass resets the count of rounds that passed nothing."""
    vctx = HostProbes(timeout=30.0)
    late = 2 + STALL_ROUNDS + 1  # passes after more stalled rounds than STALL_ROUNDS
    tests = [
        ProbeTest("soon", SOURCE, passes_from_try(tmp_path / "soon", STALL_ROUNDS + 1), exits_zero),
        ProbeTest("late", SOURCE, passes_from_try(tmp_path / "late", late), exits_zero),
    ]
    seen = run_tests(vctx, tests)  # type: ignore[arg-type]
    assert seen["soon"].ok and seen["late"].ok
    assert seen["late"].tries == late
    vctx.pool.shutdown()


def test_a_rider_the_exec_printed_nothing_for_gets_a_look_of_its_own() -> None:
    listed = [
        ProbeTest("name0", SOURCE, ["echo", "seen"], always),
        ProbeTest("name1", SOURCE, ["echo", "again"], always),
    ]
    vctx = AheadProbes(3.0, {"names.resolve": lambda _v: listed})
    ahead, standing = riders(vctx)  # type: ignore[arg-type]
    seen = run_tests(vctx, ahead)  # type: ignore[arg-type]
    # The exec's output lost what one rider printed (the runner's marker never came back).
    lost = next(rid for rid, (_check, test) in standing.items() if test.id == "name1")
    seen[lost].output = f"{LOST} (exec exit 0): "
    keep_ahead(vctx, standing, seen)  # type: ignore[arg-type]
    rounds = len(vctx.rounds)
    recalled = recall(vctx, "names.resolve", listed)  # type: ignore[arg-type]
    assert recalled["name0"].output == "seen\n"
    assert recalled["name1"].output == "again\n"
    assert vctx.rounds[rounds:] == [["name1"]]  # only the lost one looked at again
    vctx.pool.shutdown()
