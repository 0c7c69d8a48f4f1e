"""The result record every runner returns (after pytest-testinfra's backends)."""

from __future__ import annotations

from dataclasses import dataclass

from overlaylab.errors import CommandError

# The returncode every runner gives a command it stopped at its timeout (CommandError).
TIMED_OUT = -1


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
