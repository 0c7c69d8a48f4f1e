"""The lab lock: one command at a time per lab, the second told who it waits for, a
killed holder's lock taken over, and no file left behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from overlaylab import lablock


@pytest.fixture(autouse=True)
def lock_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(lablock, "LOCK_DIR", tmp_path)
    return tmp_path


def test_the_lock_file_is_gone_after_release(lock_dir: Path) -> None:
    with lablock.lab_lock("t", "invoke up"):
        assert lablock.lock_path("t").exists()
        assert "`invoke up`" in lablock.holder_of(lablock.lock_path("t"))
    assert list(lock_dir.iterdir()) == []


def test_a_second_command_waits_and_says_for_whom() -> None:
    order: list[str] = []
    said: list[str] = []
    holding = threading.Event()

    def first() -> None:
        with lablock.lab_lock("t", "invoke up -i lab.yml"):
            holding.set()
            time.sleep(0.5)
            order.append("up done")

    thread = threading.Thread(target=first)
    thread.start()
    holding.wait(5)
    with lablock.lab_lock("t", "invoke down -i lab.yml", said.append):
        order.append("down starts")
    thread.join()
    assert order == ["up done", "down starts"]
    [message] = said
    assert f"pid {os.getpid()}, `invoke up -i lab.yml`" in message
    assert "`invoke down -i lab.yml` waits" in message


def test_labs_of_other_names_do_not_wait_for_each_other() -> None:
    said: list[str] = []
    with lablock.lab_lock("a", "invoke up"), lablock.lab_lock("b", "invoke up", said.append):
        pass
    assert said == []


def test_a_killed_holders_lock_is_taken_over_at_once(lock_dir: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from overlaylab import lablock; "
            f"lablock.LOCK_DIR = Path({str(lock_dir)!r}); "
            "ctx = lablock.lab_lock('t', 'invoke up'); ctx.__enter__(); "
            "print('held', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert lablock.lock_path("t").exists()  # the killed holder could not remove it
    said: list[str] = []
    with lablock.lab_lock("t", "invoke down", said.append):
        pass
    assert said == []  # nobody holds it: no wait
    assert list(lock_dir.iterdir()) == []
