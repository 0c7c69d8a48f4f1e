"""An engine heal forgets a killed engine's containerd while it is a zombie (its pid file
goes, so the next dockerd starts a containerd of its own instead of waiting on a dead
one's socket), and leaves a running engine's containerd alone."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from types import SimpleNamespace
from typing import Any, cast

import pytest

from overlaylab.context import LabContext
from overlaylab.faults import services
from overlaylab.layout import NodePaths


class Handle:
    def __init__(self, root: Path, engine_alive: bool) -> None:
        self.paths = NodePaths.under(PurePosixPath(root))
        self.engine_alive = engine_alive
        self.ran: list[list[str]] = []

    def service_alive(self, service: str, binary: str | None = None) -> bool:
        return self.engine_alive

    def run(self, argv: list[str], **_: Any) -> SimpleNamespace:
        self.ran.append(argv)
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        return SimpleNamespace(returncode=done.returncode, stdout=done.stdout)


def lab_of(handle: Handle) -> LabContext:
    return cast(LabContext, SimpleNamespace(node=lambda _name: handle))


@pytest.fixture
def containerd(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """A process named containerd (not reaped by anyone until the test ends), and the
    pid file where the engine's exec root keeps its pid."""
    binary = tmp_path / "containerd"
    binary.symlink_to("/bin/sleep")
    proc = subprocess.Popen([str(binary), "60"])
    pid_file = tmp_path / "exec" / "containerd" / "containerd.pid"
    pid_file.parent.mkdir(parents=True)
    pid_file.write_text(str(proc.pid))
    yield proc, pid_file
    proc.kill()
    proc.wait()


def test_a_dead_unreaped_containerd_is_forgotten(tmp_path: Path, containerd) -> None:  # type: ignore[no-untyped-def]
    proc, pid_file = containerd
    os.kill(proc.pid, signal.SIGKILL)  # dies with its engine; nobody has reaped it yet
    services._forget_dead_containerd(lab_of(Handle(tmp_path, engine_alive=False)), "n1")
    assert not pid_file.exists()


def test_a_running_engines_containerd_is_left_alone(tmp_path: Path, containerd) -> None:  # type: ignore[no-untyped-def]
    proc, pid_file = containerd
    handle = Handle(tmp_path, engine_alive=True)
    services._forget_dead_containerd(lab_of(handle), "n1")
    assert handle.ran == [] and pid_file.exists() and proc.poll() is None
