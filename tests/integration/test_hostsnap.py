"""The host snapshot reports what a lab can leave, and not a busy machine's other work.

Needs no lab: an unrelated process and one naming a path under the state folder are
started between two snapshots; only the second may show up in the diff.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hostsnap import HostSnapshot

from overlaylab.layout import DEFAULT_STATE_ROOT
from overlaylab.waiting import wait_until


def exec_done(pid: int, shown: str) -> bool:
    return shown in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for proc in procs:
        proc.kill()
        proc.wait()


def test_diff_ignores_unrelated_processes_and_reports_the_labs(
    started: list[subprocess.Popen[bytes]],
) -> None:
    # Nothing is created under the state folder: the path is only named.
    named = DEFAULT_STATE_ROOT / f"hostsnap-test-{uuid.uuid4().hex[:8]}" / "etcd"
    before = HostSnapshot.take()
    unrelated = subprocess.Popen(["sleep", "60"])
    started.append(unrelated)
    labs = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", str(named)])
    started.append(labs)
    # Both have exec'd: a child not yet past its exec still shows its parent's command
    # line (seen with three integration lanes keeping the cores busy).
    assert wait_until(lambda: exec_done(unrelated.pid, "sleep"), 10, interval=0.01)
    assert wait_until(lambda: exec_done(labs.pid, str(named)), 10, interval=0.01)
    problems = before.differences(HostSnapshot.take())

    processes = [p for p in problems if p.startswith("process left running")]
    assert not any(f" {unrelated.pid} " in p for p in processes), processes
    reported = [p for p in processes if f" {labs.pid} " in p]
    assert len(reported) == 1, problems
    # The report keeps a command line's first 120 characters: the folder's unique name
    # is in it however long the interpreter's path is.
    assert named.parent.name in reported[0]
    assert f"[command line names {DEFAULT_STATE_ROOT}]" in reported[0]
