"""`--since DURATION`: the tail of a log that covers the last DURATION.

dockerd writes `time="2026-12-07T11:04:05.123456789Z"`, etcd's zap logger a leading
ISO time or a JSON "ts", ZooKeeper `2026-12-07 11:04:05,123`. A line without a time
belongs to the line before it (a panic's stack, a wrapped message).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_STAMP = re.compile(
    r'(?:time="|"time":"|"ts":"?|^)(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})'
    r"(?:[.,]\d+)?(Z|[+-]\d{2}:?\d{2})?"
)


def parse_duration(text: str) -> timedelta:
    """'90s', '15m', '2h', '1d', '1h30m': raises ValueError on anything else."""
    parts = _DURATION.findall(text.strip())
    if not parts or "".join(n + u for n, u in parts) != text.strip():
        raise ValueError(
            f"--since {text!r} is not a duration: write it as e.g. 90s, 15m, 2h, 1d or 1h30m"
        )
    return timedelta(seconds=sum(float(n) * _UNITS[u] for n, u in parts))


def _when(line: str) -> datetime | None:
    match = _STAMP.search(line)
    if match is None:
        return None
    day, clock, zone = match.groups()
    try:
        moment = datetime.fromisoformat(f"{day}T{clock}")
    except ValueError:
        return None
    if not zone:  # ZooKeeper's times carry no zone: the machine's local time
        return moment.astimezone(UTC)
    if zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        hours, minutes = int(zone[1:3]), int(zone[-2:])
        moment -= sign * timedelta(hours=hours, minutes=minutes)
    return moment.replace(tzinfo=UTC)


def lines_since(text: str, cutoff: datetime) -> str:
    """The lines of `text` written at or after `cutoff` (UTC); all of it when no line
    carries a time this module reads (better too much than an empty log)."""
    kept: list[str] = []
    keeping = False
    dated = False
    for line in text.splitlines(keepends=True):
        when = _when(line)
        if when is not None:
            dated = True
            keeping = when >= cutoff
        if keeping:
            kept.append(line)
    return "".join(kept) if dated else text
