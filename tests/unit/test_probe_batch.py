"""The probe batch runner's protocol: tests in as arguments, results out after markers."""

from __future__ import annotations

import shlex
import subprocess

from overlaylab.checks.probe_batch import MARKER, RUNNER, ProbeTest, parse, runner_argv
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
