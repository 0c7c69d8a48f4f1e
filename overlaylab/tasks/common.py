"""What every task shares: turning library errors into clean exits, the console."""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import sys
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any, TextIO, TypeVar

import docker.errors
import requests
from invoke import Task
from invoke.exceptions import Exit
from rich.console import Console

from overlaylab.errors import OverlaylabError

F = TypeVar("F", bound=Callable[..., Any])
DEFAULT_INVENTORY = "inventory/lab.yml"

# Off a terminal (a pipe, a file, CI) rich would lay tables out at 80 columns and crop
# every cell to fit ("192.168.9…"): output there is read by programs and people later,
# so it keeps every character. COLUMNS, when set, still decides.
UNBOUNDED_WIDTH = 100_000


def console(file: TextIO | None = None) -> Console:
    """A console for a task's output: the terminal's width, or unbounded off a terminal."""
    made = Console(file=file, highlight=False, soft_wrap=True)
    if made.is_terminal or os.environ.get("COLUMNS"):
        return made
    return Console(file=file, highlight=False, soft_wrap=True, width=UNBOUNDED_WIDTH)


out = console()
err = console(sys.stderr)


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


def friendly_errors(task_fn: F) -> F:
    """Library code raises typed errors; only here do they become an exit with a message."""

    @functools.wraps(task_fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return task_fn(*args, **kwargs)
        except OverlaylabError as exc:
            raise Exit(f"error: {exc}", code=2) from None
        except (docker.errors.DockerException, requests.RequestException) as exc:
            # An engine that vanished mid-task: say which call failed, not a traceback.
            raise Exit(
                f"error: an engine stopped answering ({type(exc).__name__}: {exc}); "
                "`invoke status` shows which, `invoke up` restarts it",
                code=2,
            ) from None
        except KeyboardInterrupt:
            raise Exit("interrupted", code=130) from None

    return wrapper  # type: ignore[return-value]
