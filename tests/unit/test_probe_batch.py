"""The probe batch runner's protocol: tests in as arguments, results out after markers."""

from __future__ import annotations

import shlex
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from overlaylab.checks.probe_batch import (
    MARKER,
    RUNNER,
    ProbeTest,
    parse,
    run_tests,
    runner_argv,
)
from overlaylab.checks.probes import Probe

SOURCE = Probe("node1", "dn", "probe-dn-node1", "10.0.9.2")


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
        self, source: Probe, container: None, argv: list[str], timeout: float
    ) -> tuple[int, str, str]:
        self.rounds.append(sorted(a.split(" ", 1)[0] for a in argv[4:]))
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        return done.returncode, done.stdout, shlex.join(argv)


def test_failures_are_retried_together_until_they_pass_or_the_window_ends(
    tmp_path: Path,
) -> None:
    tries = tmp_path / "tries"
    ok = lambda code, _out: code == 0  # noqa: E731
    tests = [
        ProbeTest("true", SOURCE, ["true"], ok),
        # Passes from its third try: a transient failure.
        ProbeTest(
            "flaky", SOURCE, ["sh", "-c", f"echo . >>{tries}; [ $(wc -l <{tries}) -ge 3 ]"], ok
        ),
        ProbeTest("never", SOURCE, ["false"], ok),
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
    ok = lambda code, _out: code == 0  # noqa: E731
    seen = run_tests(vctx, [ProbeTest("no", SOURCE, ["false"], ok)], timeout=0)  # type: ignore[arg-type]
    assert vctx.rounds == [["no"]] and seen["no"].tries == 1
    vctx.pool.shutdown()


def test_a_failure_is_retried_once_even_when_the_first_round_outlasts_the_window() -> None:
    vctx = HostProbes(timeout=0.2)
    ok = lambda code, _out: code == 0  # noqa: E731
    slow = ProbeTest("slow", SOURCE, ["sh", "-c", "sleep 0.5; false"], ok)
    seen = run_tests(vctx, [slow])  # type: ignore[arg-type]
    assert vctx.rounds == [["slow"], ["slow"]]
    assert seen["slow"].tries == 2
    vctx.pool.shutdown()
