"""Progress lines for long steps: one line per step and node, with timings."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console


class Progress:
    def __init__(self, quiet: bool = False, console: Console | None = None) -> None:
        self.quiet = quiet
        self.console = console or Console(file=sys.stderr, highlight=False)
        self.timings: dict[str, float] = {}

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        started = time.monotonic()
        self.say(f"[bold cyan]▶ {name}[/]")
        try:
            yield
        finally:
            elapsed = time.monotonic() - started
            self.timings[name] = self.timings.get(name, 0.0) + elapsed
        self.say(f"  [green]✓[/] {name} [dim]({elapsed:.2f}s)[/]")

    def item(self, where: str, message: str) -> None:
        self.say(f"  [dim]·[/] {where}: {message}")

    def say(self, markup: str) -> None:
        if not self.quiet:
            self.console.print(markup)
