"""Reading a spec's compose files: the one reader, regular files only, never without end.

Every part of the lab that needs a stack's compose file (validate, `up`'s images and
stacks steps, `docker stack deploy`, the topology graph, verify's stack checks) reads
it through `read_compose_file`, which gives one parsed model: the text as written, the
YAML document, and the line each service starts on.

A spec names compose files by path, and a path can name anything: `/dev/zero` or a
FIFO would have `validate` (and `up`) read until the kernel kills it. The reader
refuses what is not a regular file and what is larger than any compose file a lab needs.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
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


# What `read_compose_file` raises for a file that cannot be a compose file: missing,
# not a regular file or too large (OSError), not UTF-8, not YAML.
UNREADABLE: tuple[type[Exception], ...] = (OSError, UnicodeDecodeError, yaml.YAMLError)


@dataclass(frozen=True)
class ComposeFile:
    """One compose file, read and parsed once.

    `text` is the file as written (`up` fingerprints it and looks for image names in
    it); `document` is its YAML (None when empty); `service_lines` the line each
    service's key starts on, for messages.
    """

    path: Path
    text: str
    document: Any
    service_lines: dict[str, int] = field(default_factory=dict)

    @property
    def mapping(self) -> dict[str, Any]:
        """The document when it is a mapping (every compose file is), else empty."""
        return self.document if isinstance(self.document, dict) else {}

    @property
    def services(self) -> dict[str, Any] | None:
        """service -> definition, or None when the file has no services mapping.

        Version 1 files have no `services:`; every top-level key is a service. A file
        that names a version but has no `services:` has none."""
        data = self.document
        if not isinstance(data, dict):
            return None
        if "services" in data:
            services = data["services"]
        elif "version" in data:
            return None
        else:
            services = data
        return {str(k): v for k, v in services.items()} if isinstance(services, dict) else None

    def version(self, default: str) -> str:
        """The file's `version:` as text, `default` when it names none."""
        return str(self.mapping.get("version", default))


def read_compose_file(path: Path) -> ComposeFile:
    """The compose file at `path`, parsed (raises one of UNREADABLE)."""
    text = read_compose_text(path)
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        document = loader.construct_document(node) if node is not None else None
    finally:
        loader.dispose()
    return ComposeFile(path, text, document, _service_lines(node, document))


def _service_lines(node: yaml.Node | None, document: Any) -> dict[str, int]:
    """The line (1-based) of each service's key, where the services form a mapping."""
    if not isinstance(node, yaml.MappingNode) or not isinstance(document, dict):
        return {}
    services_node: yaml.Node = node
    if "services" in document:
        services_node = next(v for k, v in node.value if k.value == "services")
    if not isinstance(services_node, yaml.MappingNode):
        return {}
    return {str(k.value): k.start_mark.line + 1 for k, _ in services_node.value}
