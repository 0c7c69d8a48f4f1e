"""An engine heal stops the containerd a killed engine left, and only then: a running
engine's containerd is its own (the advertise heal restarts the engine before it)."""

from __future__ import annotations

import subprocess
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
def orphan(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A process named containerd, its pid where the engine's exec root keeps it."""
    binary = tmp_path / "containerd"
    binary.symlink_to("/bin/sleep")
    proc = subprocess.Popen([str(binary), "60"])
    pid_file = tmp_path / "exec" / "containerd" / "containerd.pid"
    pid_file.parent.mkdir(parents=True)
    pid_file.write_text(str(proc.pid))
    yield proc
    proc.kill()
    proc.wait()


def test_the_containerd_of_a_killed_engine_is_stopped(tmp_path: Path, orphan) -> None:  # type: ignore[no-untyped-def]
    services._stop_orphaned_containerd(lab_of(Handle(tmp_path, engine_alive=False)), "n1")
    assert orphan.wait(timeout=15) is not None


def test_a_running_engines_containerd_is_left_alone(tmp_path: Path, orphan) -> None:  # type: ignore[no-untyped-def]
    handle = Handle(tmp_path, engine_alive=True)
    services._stop_orphaned_containerd(lab_of(handle), "n1")
    assert handle.ran == [] and orphan.poll() is None
