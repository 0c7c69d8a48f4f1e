"""The one contract every runner implements (after pytest-testinfra's backends)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from overlaylab.errors import CommandError


@dataclass(frozen=True)
class CommandResult:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    where: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def check(self, step: str | None = None) -> CommandResult:
        """Raise a `CommandError` carrying the command and its output unless it succeeded."""
        if not self.ok:
            raise CommandError(
                self.argv, self.returncode, self.stdout, self.stderr, where=self.where, step=step
            )
        return self


class Runner(Protocol):
    """Runs an argument list (never a shell string) somewhere and reports the result."""

    where: str

    def run(
        self,
        argv: Sequence[str],
        *,
        check: bool = True,
        timeout: float | None = 60,
        input: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> CommandResult: ...
