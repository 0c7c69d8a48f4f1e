"""Typed errors. Library code raises these; only the task layer turns them into exits.

Every error carries a message a user can act on. `CommandError` keeps the command
and the tail of its output so a failure can be pasted into a shell and reproduced.
"""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from overlaylab.logtail import QUOTE, tail


class OverlaylabError(Exception):
    """Base for every error overlaylab reports to a user (never shown as a traceback)."""


class SpecError(OverlaylabError):
    """The cluster spec is invalid. Holds every problem found, not just the first."""

    def __init__(self, path: str, problems: Sequence[str]) -> None:
        self.path = path
        self.problems = list(problems)
        count = len(self.problems)
        head = f"{path}: {count} problem{'s' if count != 1 else ''} in the cluster spec"
        super().__init__("\n".join([head, *(f"  - {p}" for p in self.problems)]))


class PreflightError(OverlaylabError):
    """The machine lacks something the lab needs. Lists every gap with its fix."""

    def __init__(self, gaps: Sequence[tuple[str, str]]) -> None:
        self.gaps = list(gaps)
        lines = ["preflight: this machine cannot run the lab yet:"]
        for what, fix in self.gaps:
            lines.append(f"  - {what}\n      fix: {fix}")
        super().__init__("\n".join(lines))


class CommandError(OverlaylabError):
    """A command failed. Shows where it ran, the command line and its output tail."""

    def __init__(
        self,
        argv: Sequence[str],
        returncode: int,
        stdout: str,
        stderr: str,
        where: str = "host",
        step: str | None = None,
    ) -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        self.where = where
        self.step = step
        said = tail(stderr or stdout, quote=QUOTE)
        prefix = f"step {step}: " if step else ""
        super().__init__(
            f"{prefix}command failed on {where} (exit {returncode}):\n"
            f"  $ {shlex.join(self.argv)}\n" + (f"{said}" if said else "  (no output)")
        )


class NodeError(OverlaylabError):
    """Something failed on one node. `on_node` raises it so the step can name the node."""

    def __init__(self, node: str, cause: BaseException) -> None:
        self.node = node
        self.cause = cause
        super().__init__(f"on {node}: {describe_failure(cause)}")


@contextmanager
def on_node(node: str) -> Iterator[None]:
    """Work done for one node: any failure inside carries that node's name upwards."""
    try:
        yield
    except NodeError:
        raise
    except Exception as exc:
        raise NodeError(node, exc) from exc


class StepError(OverlaylabError):
    """A step of `up` failed: which step, on which node, and the cause with its output."""

    def __init__(self, step: str, cause: BaseException) -> None:
        self.step = step
        self.node = cause.node if isinstance(cause, NodeError) else None
        self.cause = cause.cause if isinstance(cause, NodeError) else cause
        where = f" on {self.node}" if self.node else ""
        super().__init__(f"step '{step}' failed{where}: {describe_failure(self.cause)}")


class TeardownIncomplete(OverlaylabError):
    """`down` did what it could, and a final scan still finds parts of the lab."""

    def __init__(self, cluster: str, done: Sequence[str], remaining: Sequence[str]) -> None:
        self.cluster = cluster
        self.done = list(done)
        self.remaining = list(remaining)
        lines = [f"lab '{cluster}' is NOT fully down; still on this machine:"]
        lines += [f"  - {what}" for what in self.remaining]
        lines.append(
            "  fix: run `invoke down` again; a process that survives SIGKILL is stuck in the "
            "kernel (see its /proc/PID/stack), a busy mount shows its users with `fuser -vm`"
        )
        super().__init__("\n".join(lines))


def describe_failure(exc: BaseException) -> str:
    """One readable account of any failure: ours as written, others with what they ran.

    A failing step may raise anything (a Docker API error from an engine that died, a
    CalledProcessError from a tool): the user gets its type, message, command and the
    tail of its output, never a bare repr or a traceback.
    """
    if isinstance(exc, OverlaylabError):
        return str(exc)
    if isinstance(exc, subprocess.CalledProcessError):
        argv = exc.cmd if isinstance(exc.cmd, list | tuple) else [str(exc.cmd)]
        output = exc.stderr or exc.output or ""
        if isinstance(output, bytes):
            output = output.decode(errors="replace")
        said = tail(output, quote=QUOTE)
        return f"command failed (exit {exc.returncode}):\n  $ {shlex.join(map(str, argv))}\n" + (
            said or "  (no output)"
        )
    text = str(exc).strip() or "(no message)"
    return f"{type(exc).__name__}: {text}"
