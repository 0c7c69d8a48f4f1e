"""One command at a time on a lab: `up`, `down` (and every command that changes a lab)
hold the lab's lock while they run.

Without it, `down` started during `up` tears the lab down under it, and `up` fails on
engines that vanished. A second command waits for the first, and says which one it
waits for (pid, command, since when). The lock is a kernel `flock`: a process that is
killed loses it at once, so a lock left behind is simply taken over. The lock file
lives under /run/lock and is removed by whoever releases it, so no command leaves a
file behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from overlaylab.errors import OverlaylabError

LOCK_DIR = Path("/run/lock")


def lock_path(cluster: str) -> Path:
    folder = LOCK_DIR if LOCK_DIR.is_dir() else Path("/tmp")
    return folder / f"overlaylab-{cluster}.lock"


def holder_of(path: Path) -> str:
    """Who holds the lock, as the holder wrote it: 'pid 123, `invoke up`, since 10:04:05'."""
    try:
        facts = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return "another command"
    since = time.strftime("%H:%M:%S", time.localtime(facts.get("since", 0)))
    return f"pid {facts.get('pid', '?')}, `{facts.get('command', '?')}`, since {since}"


def _same_file(fd: int, path: Path) -> bool:
    """Is the locked descriptor still the file at `path`? The previous holder removes
    the file as it releases it: a lock on that unlinked file locks nothing."""
    try:
        return os.fstat(fd).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        return False


@contextlib.contextmanager
def lab_lock(
    cluster: str, command: str, on_wait: Callable[[str], None] = lambda message: None
) -> Iterator[None]:
    """Hold the lab's lock for `command`; wait (telling on_wait once) while another holds it."""
    path = lock_path(cluster)
    told = False
    while True:
        try:
            # Never through a symlink someone else put in the shared lock folder.
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)
        except OSError as exc:
            raise OverlaylabError(
                f"cannot open the lab's lock {path}: {exc.strerror or exc}; remove it if "
                "no command of this lab runs (`ls -l` shows who made it)"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not told:
                on_wait(
                    f"lab '{cluster}' is busy: {holder_of(path)} is running on it; "
                    f"`{command}` waits for it to finish (Ctrl-C to give up)"
                )
                told = True
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
            except BaseException:
                os.close(fd)
                raise
        if _same_file(fd, path):
            break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        record = {"pid": os.getpid(), "command": command, "since": time.time()}
        os.pwrite(fd, json.dumps(record).encode(), 0)
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        os.close(fd)
