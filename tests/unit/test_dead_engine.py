"""Before an engine starts, the pid files a killed one left are forgotten: dockerd's own
(a zombie's pid still shows in /proc, and the new dockerd refuses "pid file found") and
its containerd's (a zombie passes kill -0, and the new dockerd waits on a dead socket).
A pid file whose program is still alive and dying is waited for, not taken away from it;
a real host's engine files are never touched."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from types import SimpleNamespace
from typing import Any, cast

import pytest

from overlaylab.layout import NodePaths
from overlaylab.providers.base import Node as NodeHandle
from overlaylab.up.dead_engine import forget_dead_engine


class Handle:
    """A node whose commands run here, with its engine's files under `root`."""

    def __init__(self, root: Path, private: bool = True) -> None:
        self.paths = NodePaths.under(PurePosixPath(root))
        if not private:
            self.paths = dataclasses.replace(self.paths, private_engine=False)
        self.ran: list[list[str]] = []

    def run(self, argv: list[str], **_: Any) -> SimpleNamespace:
        self.ran.append(argv)
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        return SimpleNamespace(returncode=done.returncode, stdout=done.stdout)


def handle_at(root: Path, private: bool = True) -> NodeHandle:
    return cast(NodeHandle, Handle(root, private))


def program(tmp_path: Path, name: str, pid_file: Path) -> subprocess.Popen[bytes]:
    """A process whose /proc comm is `name` (never reaped until the test ends), and its
    pid written where the engine's exec root keeps it."""
    binary = tmp_path / "bin" / name
    binary.parent.mkdir(exist_ok=True)
    binary.symlink_to("/bin/sleep")
    proc = subprocess.Popen([str(binary), "60"])
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.write_text(f"{proc.pid}\n")
    return proc


@pytest.fixture
def reaped() -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for proc in procs:
        proc.kill()
        proc.wait()


def pid_files(root: Path) -> tuple[Path, Path]:
    return root / "exec" / "dockerd.pid", root / "exec" / "containerd" / "containerd.pid"


def test_a_killed_unreaped_engine_and_its_containerd_are_forgotten(
    tmp_path: Path, reaped: list[subprocess.Popen[bytes]]
) -> None:
    dockerd_pid, containerd_pid = pid_files(tmp_path)
    reaped += [program(tmp_path, "dockerd", dockerd_pid)]
    reaped += [program(tmp_path, "containerd", containerd_pid)]
    for proc in reaped:
        os.kill(proc.pid, signal.SIGKILL)  # zombies: nobody has reaped them yet
    for proc in reaped:
        wait_for_zombie(proc.pid)
    forget_dead_engine(handle_at(tmp_path), wait=0.5)
    assert not dockerd_pid.exists() and not containerd_pid.exists()


def test_a_dying_engine_keeps_its_pid_file_until_it_is_dead(
    tmp_path: Path, reaped: list[subprocess.Popen[bytes]]
) -> None:
    dockerd_pid, _ = pid_files(tmp_path)
    reaped.append(program(tmp_path, "dockerd", dockerd_pid))
    forget_dead_engine(handle_at(tmp_path), wait=0.3)  # still alive after the wait
    assert dockerd_pid.exists()


def test_pid_files_naming_another_program_or_nothing_are_stale(tmp_path: Path) -> None:
    dockerd_pid, containerd_pid = pid_files(tmp_path)
    containerd_pid.parent.mkdir(parents=True)
    dockerd_pid.write_text(f"{os.getpid()}\n")  # a reused pid: this test's python
    gone = subprocess.Popen(["true"])
    gone.wait()
    containerd_pid.write_text(f"{gone.pid}\n")
    forget_dead_engine(handle_at(tmp_path), wait=5)
    assert not dockerd_pid.exists() and not containerd_pid.exists()


def test_a_real_hosts_engine_files_are_not_touched(tmp_path: Path) -> None:
    dockerd_pid, _ = pid_files(tmp_path)
    dockerd_pid.parent.mkdir(parents=True)
    dockerd_pid.write_text("999999999\n")
    handle = Handle(tmp_path, private=False)
    forget_dead_engine(cast(NodeHandle, handle))
    assert handle.ran == [] and dockerd_pid.exists()


def wait_for_zombie(pid: int) -> None:
    for _ in range(100):
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        if state == "Z":
            return
        subprocess.run(["sleep", "0.02"], check=True)
    raise AssertionError(f"{pid} did not die")
