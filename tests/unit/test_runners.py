"""HostRunner runs real (harmless) commands and reports them as `CommandResult`s."""

from __future__ import annotations

import time

import pytest

from overlaylab.errors import CommandError
from overlaylab.providers.command import CommandResult
from overlaylab.providers.host_runner import HostRunner


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

    # A success passes through unchanged, so callers can chain `.check().stdout`.
    ok = HostRunner().run(["sh", "-c", "echo fine"], check=False)
    assert ok.check(step="stacks") is ok
    assert ok.check().stdout == "fine\n"


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
