"""`up` killed with SIGKILL mid-way, then `up` again: the lab converges and works."""

from __future__ import annotations

import signal
import subprocess
import sys

from hostsnap import HostSnapshot, wait_until_clean
from lab_cli import ROOT, invoke

from overlaylab.layout import LabLayout
from overlaylab.waiting import wait_until

LAYOUT = LabLayout.for_cluster("lab")


def test_up_killed_during_engines_then_up_converges() -> None:
    before = HostSnapshot.take()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "invoke", "up"],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        marker = LAYOUT.log_file("node1", "dockerd")  # the engines step has begun
        wait_until(lambda: marker.exists() or proc.poll() is not None, 60, interval=0.01)
        assert proc.poll() is None, "up finished before it could be interrupted"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert (
            not (LAYOUT.state_dir / "state.json").exists()
            or "stacks" not in (LAYOUT.state_dir / "state.json").read_text()
        )

        again = invoke("up")
        assert "lab 'lab' is up" in again.stderr
        assert "already" in again.stderr  # it finished the lab rather than rebuilding it
        verify = invoke("verify", "--only", "connectivity")
        assert "0/39 checks failed" in verify.stdout, verify.stdout
    finally:
        invoke("down", check=False)
    assert wait_until_clean(before) == []


def test_down_works_without_the_state_file() -> None:
    before = HostSnapshot.take()
    try:
        invoke("up")
        (LAYOUT.state_dir / "state.json").unlink()
        (LAYOUT.state_dir / "host-footprint.json").unlink()
    finally:
        invoke("down", "--name", "lab")
    assert wait_until_clean(before) == []
