"""The last lines of a log, or of a command's output, for a message: the one helper
every error, check and step that quotes one uses."""

from __future__ import annotations

from pathlib import Path

NO_LOG = "(no log)"
# Sets quoted lines apart inside an error message.
QUOTE = "  | "


def tail(text: str | None, lines: int = 15, quote: str = "", missing: str = NO_LOG) -> str:
    """The last `lines` lines of `text`, each after `quote`; `missing` when there is no
    text at all (None), and "" when it is empty."""
    kept = (missing if text is None else text).strip().splitlines()[-lines:]
    return "\n".join(f"{quote}{line}" for line in kept)


def file_tail(path: Path, lines: int = 15, after: str = "", missing: str = NO_LOG) -> str:
    """The last lines of a log file, of what follows the last `after` in it when given
    (a log several runs append to); `missing` when it cannot be read."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return missing
    return tail(text.rsplit(after, 1)[-1] if after else text, lines)
