"""The runner for this machine: argument lists run on the host, results kept apart."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence

from overlaylab.errors import CommandError
from overlaylab.providers.command import TIMED_OUT, CommandResult


class HostRunner:
    where = "host"

    def run(
        self,
        argv: Sequence[str],
        *,
        check: bool = True,
        timeout: float | None = 60,
        input: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> CommandResult:
        argv = tuple(argv)
        try:
            proc = subprocess.run(
                argv,
                capture_output=True,
                text=True,
                timeout=timeout,
                input=input,
                check=False,
                env=dict(env) if env is not None else None,
            )
        except FileNotFoundError as exc:
            raise CommandError(argv, 127, "", f"{argv[0]}: not found ({exc})", self.where) from exc
        except subprocess.TimeoutExpired as exc:
            out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
            raise CommandError(
                argv, TIMED_OUT, out, f"timed out after {timeout}s", self.where
            ) from exc
        result = CommandResult(argv, proc.returncode, proc.stdout, proc.stderr, self.where)
        return result.check() if check else result
