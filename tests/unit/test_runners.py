"""HostRunner runs real (harmless) commands; NamespaceRunner is checked without nsenter."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Sequence

import pytest

from overlaylab.errors import CommandError
from overlaylab.runners import CommandResult, HostRunner, NamespaceRunner
from overlaylab.runners import local as local_runners


def test_true_and_false() -> None:
    ok = HostRunner().run(["true"])
    assert (ok.returncode, ok.ok, ok.stdout, ok.stderr, ok.where) == (0, True, "", "", "host")
    assert ok.argv == ("true",)
    bad = HostRunner().run(["false"], check=False)
    assert (bad.returncode, bad.ok) == (1, False)


def test_stdout_stderr_and_exit_code_are_kept_apart() -> None:
    result = HostRunner().run(["sh", "-c", "echo x; echo y >&2; exit 3"], check=False)
    assert isinstance(result, CommandResult)
    assert (result.returncode, result.stdout, result.stderr) == (3, "x\n", "y\n")


def test_check_raises_command_error() -> None:
    with pytest.raises(CommandError) as info:
        HostRunner().run(["sh", "-c", "echo out; echo err >&2; exit 4"])
    err = info.value
    assert (err.returncode, err.stdout, err.stderr, err.where) == (4, "out\n", "err\n", "host")
    assert err.argv == ["sh", "-c", "echo out; echo err >&2; exit 4"]
    assert "  | err" in str(err)


def test_result_check_carries_the_step() -> None:
    result = HostRunner().run(["false"], check=False)
    with pytest.raises(CommandError) as info:
        result.check(step="stacks")
    assert info.value.step == "stacks"
    assert str(info.value).startswith("step stacks: ")
    assert HostRunner().run(["true"]).check() is not None


def test_missing_binary_is_exit_127() -> None:
    with pytest.raises(CommandError) as info:
        HostRunner().run(["overlaylab-no-such-binary-xyz", "--help"], check=False)
    assert info.value.returncode == 127
    assert "overlaylab-no-such-binary-xyz: not found" in info.value.stderr


def test_timeout_raises_with_partial_output() -> None:
    started = time.monotonic()
    with pytest.raises(CommandError) as info:
        HostRunner().run(["sh", "-c", "echo partial; exec sleep 30"], timeout=0.5, check=False)
    assert time.monotonic() - started < 10
    assert info.value.returncode == -1
    assert "timed out after 0.5s" in info.value.stderr
    assert info.value.stdout == "partial\n"


def test_input_and_env() -> None:
    assert HostRunner().run(["cat"], input="hello").stdout == "hello"
    env_run = HostRunner().run(
        ["sh", "-c", 'printf %s "$OL_T"'], env={"OL_T": "v", "PATH": "/usr/bin:/bin"}
    )
    assert env_run.stdout == "v"


def test_namespace_runner_wrap() -> None:
    runner = NamespaceRunner("ol-lab.node1", label="node1")
    assert runner.wrap(["ip", "-br", "addr"]) == [
        "nsenter",
        "--net=/run/netns/ol-lab.node1",
        "--",
        "ip",
        "-br",
        "addr",
    ]
    assert runner.where == "node1"
    assert NamespaceRunner("ol-lab-kv").where == "ol-lab-kv"


def test_namespace_runner_runs_the_wrapped_command(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[list[str]] = []

    def fake_run(argv: Sequence[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        seen.append(list(argv))
        return subprocess.CompletedProcess(list(argv), 2, "", "nope\n")

    monkeypatch.setattr(local_runners.subprocess, "run", fake_run)
    runner = NamespaceRunner("ol-lab.node1", label="node1")
    with pytest.raises(CommandError) as info:
        runner.run(["docker", "ps"])
    assert seen == [["nsenter", "--net=/run/netns/ol-lab.node1", "--", "docker", "ps"]]
    assert info.value.where == "node1"
    assert info.value.argv[:2] == ["nsenter", "--net=/run/netns/ol-lab.node1"]
