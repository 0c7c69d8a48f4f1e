"""Messages of the typed errors: what a user sees instead of a traceback."""

from __future__ import annotations

import shlex

from overlaylab.errors import (
    CommandError,
    OverlaylabError,
    PreflightError,
    SpecError,
    StepError,
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
    assert str(StepError("engines", "node2", cause)).startswith(
        "step 'engines' failed on node2: command failed"
    )
    assert str(StepError("tls", None, ValueError("x"))) == "step 'tls' failed: x"
