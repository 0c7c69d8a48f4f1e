"""`down` returns only when the lab is gone, and says so only when it is true."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hostsnap import HostSnapshot, wait_until_clean
from lab_cli import ROOT, invoke

from overlaylab import lablock
from overlaylab.layout import LabLayout
from overlaylab.providers.local import teardown
from overlaylab.waiting import wait_until

SMALL = "tests/testdata/labs/small.yml"


def test_down_returns_only_when_every_process_has_exited() -> None:
    before = HostSnapshot.take()
    invoke("up", "-i", SMALL)
    # A container per engine: its shim and process are what lingered after `down` before.
    invoke("verify", "-i", SMALL, "--only", "connectivity.icmp")
    lab_processes = teardown.lab_pids(LabLayout.for_cluster("sm"))
    assert len(lab_processes) >= 7  # etcd, 2 x (dockerd, containerd), shims, probes
    down = invoke("down", "-i", SMALL)
    assert "lab 'sm' is down" in down.stderr
    # No grace period: checked the moment `down` has returned. Not even a zombie may be
    # left, since `ps` shows those and a script right after `down` races with them.
    assert [_describe(pid) for pid in lab_processes if Path(f"/proc/{pid}").exists()] == []
    assert before.differences(HostSnapshot.take()) == []


def _describe(pid: int) -> str:
    try:
        return f"{pid}: {Path(f'/proc/{pid}/stat').read_text()[:120]}"
    except OSError:
        return f"{pid}: gone while looking"


@pytest.fixture
def stubborn_lab_folder() -> Iterator[tuple[Path, HostSnapshot]]:
    """A half-made lab whose folder holds an immutable file: `down` cannot remove it."""
    before = HostSnapshot.take()
    layout = LabLayout.for_cluster("stuck")
    teardown.record_host_footprint(layout)  # as `up` does before its first namespace
    stuck = layout.state_dir / "nodes" / "a" / "pinned"
    stuck.parent.mkdir(parents=True)
    stuck.write_text("kept by chattr +i\n")
    if subprocess.run(["chattr", "+i", str(stuck)], capture_output=True).returncode != 0:
        pytest.skip("this filesystem has no immutable attribute (chattr +i)")
    subprocess.run(["ip", "netns", "add", layout.node_ns("a")], check=True)
    try:
        yield layout.state_dir, before
    finally:
        subprocess.run(["chattr", "-i", str(stuck)], check=False)
        invoke("down", "--name", "stuck", check=False)


def test_down_names_what_it_could_not_remove_and_fails(
    stubborn_lab_folder: tuple[Path, HostSnapshot],
) -> None:
    folder, before = stubborn_lab_folder
    result = invoke("down", "--name", "stuck", check=False)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "lab 'stuck' is NOT fully down" in result.stderr
    assert f"folder {folder}" in result.stderr
    assert "deleted 1 namespaces" in result.stderr  # what it could do, it did
    assert "is down\n" not in result.stderr
    pinned = folder / "nodes" / "a" / "pinned"
    subprocess.run(["chattr", "-i", str(pinned)], check=True)
    again = invoke("down", "--name", "stuck")
    assert "lab 'stuck' is down" in again.stderr
    assert wait_until_clean(before) == []


def test_down_during_up_waits_for_it_then_takes_the_whole_lab_away() -> None:
    """Two commands on one lab: the second waits for the first and says why, and the lab
    ends fully gone (down after up), never half torn down under a running `up`."""
    before = HostSnapshot.take()
    up = subprocess.Popen(
        [sys.executable, "-m", "invoke", "up", "-i", SMALL],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert wait_until(lambda: lablock.lock_path("sm").exists(), 30, 0.05)
        down = invoke("down", "-i", SMALL)
        _, up_err = up.communicate(timeout=300)
    finally:
        if up.poll() is None:
            up.kill()
        invoke("down", "-i", SMALL, check=False)
    assert up.returncode == 0, up_err
    assert "lab 'sm' is up" in up_err
    assert f"lab 'sm' is busy: pid {up.pid}, `invoke up -i {SMALL}`" in down.stderr
    assert "lab 'sm' is down" in down.stderr
    assert "nothing was running" not in down.stderr  # it took down the finished lab
    assert not lablock.lock_path("sm").exists()
    assert wait_until_clean(before) == []
