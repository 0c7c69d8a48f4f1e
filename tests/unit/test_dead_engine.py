"""When the lab sees no engine running on a node, the pid files a killed one left are
forgotten: dockerd's own (a zombie's pid still shows in /proc, and the new dockerd
refuses "pid file found") and its containerd's (a zombie passes kill -0, and the new
dockerd waits on a dead socket). A dockerd still alive is adopted, not started twice; a
containerd still alive after its dockerd died is waited for; a real host's engine files
are never touched."""

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


@pytest.fixture
def programs(tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes started by `program`, killed and reaped when the test ends."""
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for proc in procs:
        proc.kill()
        proc.wait()


def program(
    procs: list[subprocess.Popen[bytes]], tmp_path: Path, name: str, pid_file: Path
) -> subprocess.Popen[bytes]:
    """A process whose /proc comm is `name` (never reaped until the test ends), and its
    pid written where the engine's exec root keeps it."""
    binary = tmp_path / "bin" / name
    binary.parent.mkdir(exist_ok=True)
    binary.symlink_to("/bin/sleep")
    proc = subprocess.Popen([str(binary), "60"])
    procs.append(proc)
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.write_text(f"{proc.pid}\n")
    return proc


def files(root: Path) -> tuple[Path, Path, Path]:
    """The lab's pid file for the engine, dockerd's own, containerd's."""
    exec_root = root / "exec"
    return (
        root / "dockerd.pid",
        exec_root / "dockerd.pid",
        exec_root / "containerd" / "containerd.pid",
    )


def killed(proc: subprocess.Popen[bytes]) -> None:
    """Killed and left unreaped: a zombie, as after a kill -9 with a slow init."""
    os.kill(proc.pid, signal.SIGKILL)
    for _ in range(200):
        state = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        if state == "Z":
            return
        subprocess.run(["sleep", "0.02"], check=True)
    raise AssertionError(f"{proc.pid} did not die")


def test_a_killed_unreaped_engine_and_its_containerd_are_forgotten(
    tmp_path: Path, programs: list[subprocess.Popen[bytes]]
) -> None:
    ours, dockerd_pid, containerd_pid = files(tmp_path)
    killed(program(programs, tmp_path, "dockerd", dockerd_pid))
    killed(program(programs, tmp_path, "containerd", containerd_pid))
    assert forget_dead_engine(handle_at(tmp_path), wait=0.5) is False
    assert not dockerd_pid.exists() and not containerd_pid.exists() and not ours.exists()


def test_a_live_engine_the_lab_lost_track_of_is_adopted(
    tmp_path: Path, programs: list[subprocess.Popen[bytes]]
) -> None:
    ours, dockerd_pid, containerd_pid = files(tmp_path)
    engine = program(programs, tmp_path, "dockerd", dockerd_pid)
    program(programs, tmp_path, "containerd", containerd_pid)
    assert forget_dead_engine(handle_at(tmp_path), wait=5) is True
    assert ours.read_text().strip() == str(engine.pid)
    assert dockerd_pid.exists() and containerd_pid.exists()  # its own, left alone


def test_a_containerd_outliving_its_engine_is_waited_for_then_kept_if_alive(
    tmp_path: Path, programs: list[subprocess.Popen[bytes]]
) -> None:
    _, dockerd_pid, containerd_pid = files(tmp_path)
    killed(program(programs, tmp_path, "dockerd", dockerd_pid))
    program(programs, tmp_path, "containerd", containerd_pid)  # not dying after all
    assert forget_dead_engine(handle_at(tmp_path), wait=0.3) is False
    assert not dockerd_pid.exists() and containerd_pid.exists()


def test_pid_files_naming_another_program_or_nothing_are_stale(tmp_path: Path) -> None:
    ours, dockerd_pid, containerd_pid = files(tmp_path)
    containerd_pid.parent.mkdir(parents=True)
    dockerd_pid.write_text(f"{os.getpid()}\n")  # a reused pid: this test's python
    gone = subprocess.Popen(["true"])
    gone.wait()
    containerd_pid.write_text(f"{gone.pid}\n")
    assert forget_dead_engine(handle_at(tmp_path), wait=5) is False
    assert not dockerd_pid.exists() and not containerd_pid.exists() and not ours.exists()


def test_a_real_hosts_engine_files_are_not_touched(tmp_path: Path) -> None:
    _, dockerd_pid, _ = files(tmp_path)
    dockerd_pid.parent.mkdir(parents=True)
    dockerd_pid.write_text("999999999\n")
    handle = Handle(tmp_path, private=False)
    assert forget_dead_engine(cast(NodeHandle, handle)) is False
    assert handle.ran == [] and dockerd_pid.exists()
