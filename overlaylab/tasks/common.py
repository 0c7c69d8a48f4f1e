"""What every task shares: turning library errors into clean exits, the console.

Every task module is imported to build the collection, so `invoke --list` and a task's
own start pay for whatever any of them imports at the top. Task modules import the
heavy libraries (docker SDK, pydantic, rich, paramiko, Jinja2) inside the task that
uses them; the names tests replace (`err`, `out`, a task module's `open_lab`...) stay
module attributes that resolve on first use.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import sys
from collections.abc import Callable, Iterator
from types import FrameType
from typing import TYPE_CHECKING, Any, TextIO, TypeVar, cast

from invoke import Task
from invoke.exceptions import Exit

from overlaylab.errors import OverlaylabError
from overlaylab.layout import DEFAULT_SPEC

if TYPE_CHECKING:
    from pathlib import Path

    from rich.console import Console

    from overlaylab.context import LabContext
    from overlaylab.progress import Progress

F = TypeVar("F", bound=Callable[..., Any])
DEFAULT_INVENTORY = DEFAULT_SPEC  # the tasks' name for it: their option is --inventory


def _leave_out_dockers_ssh_transport() -> None:
    """`import docker` brings the SDK's ssh:// transport along, and with it paramiko,
    cryptography, bcrypt and PyNaCl: half of the SDK's import time, paid by every `up`,
    `verify` and `down`. The lab's engines are reached over unix sockets and TLS, SSH
    hosts through fabric (which imports paramiko itself when an SSH lab needs it); only
    the host's own engine (an image without a tarball) is found from DOCKER_HOST, so the
    transport stays when DOCKER_HOST is an ssh:// URL. Left out, the SDK skips it as it
    does where paramiko is not installed."""
    if "docker" in sys.modules or os.environ.get("DOCKER_HOST", "").startswith("ssh://"):
        return
    sys.modules.setdefault("docker.transport.sshconn", None)  # type: ignore[arg-type]


_leave_out_dockers_ssh_transport()

# Off a terminal (a pipe, a file, CI) rich would lay tables out at 80 columns and crop
# every cell to fit ("192.168.9…"): output there is read by programs and people later,
# so it keeps every character. COLUMNS, when set, still decides.
UNBOUNDED_WIDTH = 100_000


def console(file: TextIO | None = None) -> Console:
    """A console for a task's output: the terminal's width, or unbounded off a terminal."""
    from rich.console import Console

    made = Console(file=file, highlight=False, soft_wrap=True)
    if made.is_terminal or os.environ.get("COLUMNS"):
        return made
    return Console(file=file, highlight=False, soft_wrap=True, width=UNBOUNDED_WIDTH)


class _ConsoleOnFirstUse:
    """Stands for `console(file)` and makes it at its first use: rich costs a tenth of a
    second to import, which `invoke --list` and tasks that print nothing need not pay.
    The file is the one given here (as when the console was made at import)."""

    def __init__(self, file: TextIO | None) -> None:
        self._file = file
        self._made: Console | None = None

    def __getattr__(self, name: str) -> Any:
        if self._made is None:
            self._made = console(self._file)
        return getattr(self._made, name)


out = cast("Console", _ConsoleOnFirstUse(None))
err = cast("Console", _ConsoleOnFirstUse(sys.stderr))


def open_lab(spec_path: str | Path, progress: Progress | None = None) -> LabContext:
    """overlaylab.context.open_lab, imported at the first call (it brings the docker SDK,
    pydantic and every provider): tasks call it by this name, which tests replace."""
    from overlaylab.context import open_lab as open_it

    return open_it(spec_path, progress)


def progress(quiet: bool = False) -> Progress:
    """The progress lines of a task (rich, imported when a task first shows them)."""
    from overlaylab.progress import Progress

    return Progress(quiet=quiet)


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM (a CI timeout, `kill`) is an interruption like Ctrl-C, not a crash: `up`
    then leaves the lab for the next `up` to finish, and says so."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class KeepsHelpFlag(Task):  # type: ignore[type-arg]
    """A task whose options never take `-h` as a short flag: `invoke TASK -h` is help.

    invoke gives each option the first free letter of its name, so verify's `--html`
    would become `-h` and `invoke verify -h` would ask for a file name instead.
    """

    def arg_opts(self, name: str, default: str, taken_names: set[str]) -> dict[str, Any]:
        opts: dict[str, Any] = super().arg_opts(name, default, taken_names | {"h"})
        return opts


def _engine_errors() -> tuple[type[BaseException], ...]:
    """The docker SDK's and requests' errors, from the libraries already imported: one
    that was never imported raised nothing (the task did not reach an engine)."""
    found: list[type[BaseException]] = []
    docker_errors = sys.modules.get("docker.errors")
    if docker_errors is not None:
        found.append(docker_errors.DockerException)
    requests_errors = sys.modules.get("requests.exceptions")
    if requests_errors is not None:
        found.append(requests_errors.RequestException)
    return tuple(found)


def friendly_errors(task_fn: F) -> F:
    """Library code raises typed errors; only here do they become an exit with a message."""

    @functools.wraps(task_fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return task_fn(*args, **kwargs)
        except OverlaylabError as exc:
            raise Exit(f"error: {exc}", code=2) from None
        except _engine_errors() as exc:
            # An engine that vanished mid-task: say which call failed, not a traceback.
            raise Exit(
                f"error: an engine stopped answering ({type(exc).__name__}: {exc}); "
                "`invoke status` shows which, `invoke up` restarts it",
                code=2,
            ) from None
        except KeyboardInterrupt:
            raise Exit("interrupted", code=130) from None

    return wrapper  # type: ignore[return-value]
