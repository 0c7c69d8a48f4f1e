"""docker-compose started ahead: the real compose on this machine, run through a waiting
interpreter, answers as the usual command does; whatever cannot wait runs as usual."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from overlaylab.errors import CommandError
from overlaylab.providers.command import CommandResult
from overlaylab.providers.host_runner import HostRunner
from overlaylab.up.compose_warm import COMPOSE, WarmCompose, compose_python

HAS_PYTHON_COMPOSE = compose_python() is not None
needs_compose = pytest.mark.skipif(
    not HAS_PYTHON_COMPOSE, reason="needs docker-compose v1 (a Python script) on PATH"
)


@pytest.fixture
def warm() -> Iterator[WarmCompose]:
    pool = WarmCompose()
    yield pool
    pool.close()


def fake_compose(folder: Path, first_line: bytes) -> str:
    """A `docker-compose` on a PATH of its own, starting with `first_line`."""
    script = folder / COMPOSE
    script.write_bytes(first_line + b"\nprint('the usual way')\n")
    script.chmod(0o755)
    return f"{folder}{os.pathsep}{os.environ['PATH']}"


def test_the_interpreter_is_read_from_compose_s_first_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    python3 = shutil.which("python3")
    cases = {
        b"#!/usr/bin/python3": "/usr/bin/python3",
        b"#!/usr/bin/env python3": python3,
        b"#!/bin/sh": None,
        b"\x7fELF\x02\x01\x01": None,  # compose v2, or a frozen v1: a binary
    }
    for first_line, expected in cases.items():
        folder = tmp_path / str(len(list(tmp_path.iterdir())))
        folder.mkdir()
        monkeypatch.setenv("PATH", fake_compose(folder, first_line))
        assert compose_python() == expected, first_line
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert compose_python() is None


@needs_compose
def test_a_waiting_interpreter_answers_as_docker_compose_does(
    warm: WarmCompose, monkeypatch: pytest.MonkeyPatch
) -> None:
    usual = subprocess.run([COMPOSE, "version"], capture_output=True, text=True, check=True)
    warm.start(1, dict(os.environ))
    assert warm.waiting == 1

    def refuse(*_args: Any, **_kwargs: Any) -> CommandResult:
        raise AssertionError("ran the usual way, not in the waiting interpreter")

    monkeypatch.setattr(HostRunner, "run", refuse)
    result = warm.run([COMPOSE, "version"], env=dict(os.environ), timeout=60)
    assert result.ok and result.stdout == usual.stdout
    assert warm.waiting == 0


@needs_compose
def test_a_failing_command_raises_with_compose_s_own_message(
    warm: WarmCompose, tmp_path: Path
) -> None:
    warm.start(1, dict(os.environ))
    missing = tmp_path / "missing.yml"
    with pytest.raises(CommandError) as raised:
        warm.run([COMPOSE, "-f", str(missing), "config"], env=dict(os.environ), timeout=60)
    assert raised.value.returncode != 0
    assert str(missing) in str(raised.value)


@needs_compose
def test_the_command_s_environment_is_the_one_it_runs_with(
    warm: WarmCompose, tmp_path: Path
) -> None:
    """The interpreter started with another environment: compose reads the job's."""
    compose_file = tmp_path / "docker-compose.yml"
    compose_file.write_text('version: "2.4"\nservices:\n  web:\n    image: "${WEB_IMAGE}"\n')
    warm.start(1, {k: v for k, v in os.environ.items() if k != "WEB_IMAGE"})
    env = {**os.environ, "WEB_IMAGE": "overlaylab/probe:1"}
    result = warm.run([COMPOSE, "-f", str(compose_file), "config"], env=env, timeout=60)
    assert "image: overlaylab/probe:1" in result.stdout


@pytest.fixture
def usual(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Commands run the usual way (HostRunner), recorded and answered "usual"."""
    ran: list[list[str]] = []

    def run(_runner: HostRunner, argv: list[str], **_options: Any) -> CommandResult:
        ran.append(list(argv))
        return CommandResult(tuple(argv), 0, "usual\n", "", "host")

    monkeypatch.setattr(HostRunner, "run", run)
    return ran


def test_commands_beyond_the_waiting_ones_run_the_usual_way(
    warm: WarmCompose, usual: list[list[str]]
) -> None:
    assert warm.run([COMPOSE, "ps"], env={}, timeout=5).stdout == "usual\n"
    assert usual == [[COMPOSE, "ps"]]


def test_an_interpreter_without_compose_hands_the_command_back(
    warm: WarmCompose, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, usual: list[list[str]]
) -> None:
    """This test's own Python has no `compose` module: the preload says so and exits,
    and the command runs the usual way."""
    monkeypatch.setenv("PATH", fake_compose(tmp_path, f"#!{sys.executable}".encode()))
    warm.start(1, dict(os.environ))
    assert warm.waiting == 1
    assert warm.run([COMPOSE, "version"], env=dict(os.environ), timeout=30).ok
    assert usual == [[COMPOSE, "version"]]


@needs_compose
def test_close_ends_every_interpreter_no_command_came_for(warm: WarmCompose) -> None:
    warm.start(3, dict(os.environ))
    processes = list(warm._waiting)
    warm.close()
    assert warm.waiting == 0
    assert None not in [p.poll() for p in processes]
