"""Typed errors. Library code raises these; only the task layer turns them into exits.

Every error carries a message a user can act on. `CommandError` keeps the command
and the tail of its output so a failure can be pasted into a shell and reproduced.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence


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
        tail = _tail(stderr or stdout)
        prefix = f"step {step}: " if step else ""
        super().__init__(
            f"{prefix}command failed on {where} (exit {returncode}):\n"
            f"  $ {shlex.join(self.argv)}\n" + (f"{tail}" if tail else "  (no output)")
        )


class StepError(OverlaylabError):
    """A step of `up` failed on a node; wraps the cause with the step and node names."""

    def __init__(self, step: str, node: str | None, cause: BaseException) -> None:
        self.step = step
        self.node = node
        self.cause = cause
        where = f" on {node}" if node else ""
        super().__init__(f"step '{step}' failed{where}: {cause}")


def _tail(text: str, lines: int = 15) -> str:
    kept = text.strip().splitlines()[-lines:]
    return "\n".join(f"  | {line}" for line in kept)
