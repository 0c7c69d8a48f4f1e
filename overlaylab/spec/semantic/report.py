"""How a problem is reported: its YAML path, its line, a suggestion for a near-miss name."""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from overlaylab.spec.models import ClusterSpec

Loc = tuple[str | int, ...]


# Maps a YAML path to (line number, whether the path itself is in the file). A path that
# is not in the file holds a default; the line is then that of its nearest ancestor.
Locate = Callable[[Loc], tuple[int, bool]]


_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def format_path(loc: Loc) -> str:
    """`('nodes', 2, 'address')` -> `nodes[2].address`; odd keys are quoted."""
    out = ""
    for element in loc:
        if isinstance(element, int):
            out += f"[{element}]"
        elif _PLAIN_KEY.match(element):
            out += f".{element}" if out else element
        else:
            out += f"[{element!r}]"
    return out or "(top level)"


def format_problem(line: int, loc: Loc, message: str, *, default: bool = False) -> str:
    suffix = " (default)" if default else ""
    return f"line {line}, {format_path(loc)}{suffix}: {message}"


def suggest(word: str, choices: Iterable[str]) -> str:
    """`; did you mean 'x'?` when a choice is close to `word`, else ``."""
    choices = list(choices)
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    # A truncated name (`key` for `key_file`) is too short for difflib's ratio.
    close = close or [c for c in choices if len(word) >= 3 and c.startswith(word)][:1]
    return f"; did you mean {close[0]!r}?" if close else ""


@dataclass
class Report:
    """Collects problems with their line so they can be listed in file order."""

    locate: Locate
    problems: list[tuple[int, str]] = field(default_factory=list)

    def add(self, loc: Loc, message: str) -> None:
        line, present = self.locate(loc)
        self.problems.append((line, format_problem(line, loc, message, default=not present)))


Check = Callable[[ClusterSpec, Path, Report], None]
