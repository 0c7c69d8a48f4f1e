"""Messages of the typed errors: what a user sees instead of a traceback."""

from __future__ import annotations

import shlex
import subprocess

import docker.errors
import pytest

from overlaylab.errors import (
    CommandError,
    NodeError,
    OverlaylabError,
    PreflightError,
    SpecError,
    StepError,
    TeardownIncomplete,
    describe_failure,
    on_node,
)


def test_command_error_message() -> None:
    argv = ["docker", "network", "create", "--label", "a b", "it's"]
    stderr = "\n".join(f"line {i}" for i in range(1, 31)) + "\n"
    err = CommandError(argv, 3, "ignored stdout", stderr, where="node1", step="networks")
    text = str(err)
    lines = text.splitlines()
    assert lines[0] == "step networks: command failed on node1 (exit 3):"
    assert lines[1] == "  $ " + shlex.join(argv)
    assert shlex.split(lines[1].removeprefix("  $ ")) == argv  # pasteable into a shell
    assert lines[2:] == [f"  | line {i}" for i in range(16, 31)]  # the last 15 lines
    assert "ignored stdout" not in text
    assert (err.argv, err.returncode, err.where, err.step) == (argv, 3, "node1", "networks")
    assert isinstance(err, OverlaylabError)


def test_command_error_falls_back_to_stdout_then_to_no_output() -> None:
    assert "  | only stdout" in str(CommandError(["x"], 1, "only stdout\n", ""))
    quiet = str(CommandError(["x"], 1, "", "  \n"))
    assert quiet.endswith("(no output)")
    assert quiet.startswith("command failed on host (exit 1):")  # no step prefix


def test_spec_error_lists_every_problem() -> None:
    problems = ["line 3, name: bad", "line 9, nodes[0].address: outside", "line 12, kv: x"]
    err = SpecError("inventory/lab.yml", problems)
    lines = str(err).splitlines()
    assert lines[0] == "inventory/lab.yml: 3 problems in the cluster spec"
    assert lines[1:] == [f"  - {p}" for p in problems]
    assert err.problems == problems and err.path == "inventory/lab.yml"
    assert (
        str(SpecError("x.yml", ["one"])).splitlines()[0] == "x.yml: 1 problem in the cluster spec"
    )


def test_preflight_error_shows_each_gap_and_fix() -> None:
    gaps = [
        ("`etcd` is not installed", "apt-get install -y etcd-server"),
        ("not running as root", "sudo -E invoke up"),
    ]
    text = str(PreflightError(gaps))
    for what, fix in gaps:
        assert f"  - {what}\n      fix: {fix}" in text
    assert text.index("etcd-server") < text.index("sudo")


def test_step_error_names_step_node_and_cause() -> None:
    cause = CommandError(["dockerd"], 1, "", "boom")
    with pytest.raises(NodeError) as raised, on_node("node2"):
        raise cause
    error = StepError("engines", raised.value)
    assert (error.step, error.node, error.cause) == ("engines", "node2", cause)
    assert str(error).startswith("step 'engines' failed on node2: command failed")
    assert "$ dockerd" in str(error) and "| boom" in str(error)
    assert str(StepError("tls", ValueError("x"))) == "step 'tls' failed: ValueError: x"


def test_foreign_failures_are_described_with_their_command_and_output() -> None:
    failed = subprocess.CalledProcessError(
        1, ["docker", "load"], output=b"", stderr=b"line 1\nunexpected EOF\n"
    )
    text = describe_failure(failed)
    assert "exit 1" in text and "$ docker load" in text and "| unexpected EOF" in text
    api = docker.errors.APIError("500 Server Error", explanation="engine went away")
    assert describe_failure(api).startswith("APIError: 500 Server Error")
    assert describe_failure(RuntimeError()) == "RuntimeError: (no message)"


def test_on_node_keeps_the_innermost_node() -> None:
    with pytest.raises(NodeError) as raised, on_node("outer"), on_node("inner"):
        raise OSError("disk full")
    assert raised.value.node == "inner"
    assert str(raised.value) == "on inner: OSError: disk full"


def test_teardown_incomplete_lists_every_leftover_and_the_fix() -> None:
    error = TeardownIncomplete("lab", ["killed 3 processes"], ["mount /x", "folder /y"])
    text = str(error)
    assert text.startswith("lab 'lab' is NOT fully down")
    assert "  - mount /x\n  - folder /y\n" in text and "fix: run `invoke down` again" in text
