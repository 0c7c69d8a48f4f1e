"""Reading a spec's compose files: regular files only, and never without end.

A spec names compose files by path, and a path can name anything: `/dev/zero` or a
FIFO would have `validate` (and `up`) read until the kernel kills it. Every reader of
a stack's compose file goes through `read_compose_text`, which refuses what is not a
regular file and what is larger than any compose file a lab needs.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import yaml

# A compose file of many services is a few KiB; a megabyte is no compose file.
MAX_COMPOSE_BYTES = 1024 * 1024


class NotARegularFile(OSError):
    """A path the lab reads that names a device, a FIFO, a socket or a directory, or a
    file past its size limit. An OSError, so every reader's handler for unreadable
    files reports it."""


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def read_regular_bytes(path: Path, limit: int | None = None) -> bytes:
    """The bytes of a regular file, at most `limit` of them (NotARegularFile past it).

    The file is opened first (without blocking: opening a FIFO with no writer would
    wait for one) and checked through its descriptor, so a path swapped between the
    check and the read cannot slip a device in.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as handle:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotARegularFile(f"{path} is {_kind(mode)}, not a regular file")
        if limit is None:
            return handle.read()
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise NotARegularFile(f"{path} is larger than {limit // 1024} KiB")
    return data


def read_compose_text(path: Path) -> str:
    """A compose file's text: a regular file of at most MAX_COMPOSE_BYTES, UTF-8."""
    return read_regular_bytes(path, MAX_COMPOSE_BYTES).decode("utf-8")


def load_compose(path: Path) -> Any:
    """A compose file parsed as YAML (None when empty)."""
    return yaml.safe_load(read_compose_text(path))
