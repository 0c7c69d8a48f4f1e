"""docker-compose v1 started ahead of time: its Python start overlaps the earlier steps.

compose v1 is a Python program that spends about 0.6 s of CPU importing itself before
its first API call, and `up` runs one per stack service, in its last step. So a fresh
`up` starts that many interpreters of compose's own Python at its beginning; each
imports compose and waits on stdin for one command (compose_preload.py). The stacks
step hands each one its argv and environment. A command finds no interpreter waiting
(more commands than were started, a docker-compose that is not a Python script, one
that cannot import compose): it runs the usual way. Measured on the default lab: the
stacks step 1.9 s before, 1.3-1.4 s after.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

from overlaylab.errors import CommandError
from overlaylab.providers.command import CommandResult
from overlaylab.providers.host_runner import HostRunner

COMPOSE = "docker-compose"
PRELOAD = Path(__file__).with_name("compose_preload.py")
CANNOT_IMPORT = 97  # compose_preload's exit code when compose does not import


def compose_python(compose: str = COMPOSE) -> str | None:
    """The interpreter of the docker-compose on PATH, when it is a Python script."""
    path = shutil.which(compose)
    if path is None:
        return None
    try:
        with open(path, "rb") as script:
            first = script.readline(256)
    except OSError:
        return None
    if not first.startswith(b"#!"):
        return None  # a binary (compose v2, a frozen v1): nothing to import ahead
    words = first[2:].decode(errors="replace").split()
    if len(words) >= 2 and Path(words[0]).name == "env":
        words = [shutil.which(words[1]) or "", *words[2:]]
    if not words or not words[0] or "python" not in Path(words[0]).name:
        return None
    return words[0]


class WarmCompose:
    """Interpreters of compose's Python, each waiting for one compose command."""

    def __init__(self) -> None:
        self._waiting: list[subprocess.Popen[str]] = []
        self._lock = threading.Lock()

    def start(self, count: int, env: Mapping[str, str], compose: str = COMPOSE) -> None:
        python = compose_python(compose) if count > 0 else None
        if python is None:
            return
        for _ in range(count):
            process = subprocess.Popen(
                [python, str(PRELOAD)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=dict(env),
            )
            with self._lock:
                self._waiting.append(process)

    @property
    def waiting(self) -> int:
        with self._lock:
            return len(self._waiting)

    def run(self, argv: Sequence[str], env: Mapping[str, str], timeout: float) -> CommandResult:
        """`argv` (a docker-compose command) in a waiting interpreter, else as usual.
        Raises CommandError, as HostRunner does, when it fails."""
        with self._lock:
            process = self._waiting.pop() if self._waiting else None
        if process is None:
            return HostRunner().run(argv, env=env, timeout=timeout)
        job = json.dumps({"argv": list(argv), "env": dict(env)}) + "\n"
        try:
            out, err = process.communicate(job, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            process.kill()
            out, _ = process.communicate()
            raise CommandError(argv, -1, out, f"timed out after {timeout}s", "host") from exc
        if process.returncode == CANNOT_IMPORT:
            return HostRunner().run(argv, env=env, timeout=timeout)
        return CommandResult(tuple(argv), process.returncode, out, err, "host").check()

    def close(self) -> None:
        """End every interpreter still waiting: it has only imported compose, so it is
        killed rather than waited for."""
        with self._lock:
            waiting, self._waiting = self._waiting, []
        for process in waiting:
            process.kill()
            process.communicate()
