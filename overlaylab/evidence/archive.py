"""The evidence archive: a gzipped tarball of collected items, scrubbed of secrets,
with a manifest of what was collected, from where, how long it took, and what could
not be collected and why."""

from __future__ import annotations

import contextlib
import io
import json
import re
import tarfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from overlaylab.errors import OverlaylabError

# What must never leave the lab in an archive someone attaches to a bug report.
# A block cut short (a log tail, a truncated message) has no END line: it runs to the end.
_PRIVATE_KEY = re.compile(
    rb"-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----.*?(?:-----END \1PRIVATE KEY-----|\Z)", re.S
)
_SWARM_TOKEN = re.compile(rb"SWMTKN-1-[0-9a-z]+-[0-9a-z]+")
REMOVED_KEY = b"[private key removed by overlaylab logs]"
REMOVED_TOKEN = b"SWMTKN-[join token removed by overlaylab logs]"


def scrub(data: bytes) -> bytes:
    """The bytes without private keys (PEM blocks) and swarm join tokens."""
    return _SWARM_TOKEN.sub(REMOVED_TOKEN, _PRIVATE_KEY.sub(REMOVED_KEY, data))


@dataclass
class Entry:
    path: str  # inside the archive
    source: str  # where it came from: a node, "lab" or "this machine"
    what: str  # how it was collected (a command, an API call, a file)
    seconds: float
    bytes: int


@dataclass
class Missing:
    path: str
    source: str
    what: str
    reason: str
    seconds: float


@dataclass
class Manifest:
    cluster: str
    created: str  # UTC, ISO 8601
    spec: str
    since: str | None
    verify: str  # "ran", "skipped (--no-verify)", or why it could not run
    entries: list[Entry] = field(default_factory=list)
    missing: list[Missing] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "cluster": self.cluster,
            "created": self.created,
            "spec": self.spec,
            "since": self.since,
            "verify": self.verify,
            "seconds": round(self.seconds, 3),
            "collected": [asdict(e) for e in sorted(self.entries, key=lambda e: e.path)],
            "not_collected": [asdict(m) for m in sorted(self.missing, key=lambda m: m.path)],
        }


class EvidenceArchive:
    """Items gathered in memory (a lab's evidence is a few hundred KiB), written at once."""

    def __init__(self, top: str) -> None:
        self.top = top  # every path sits in one folder, as tarballs of sources do
        self._files: dict[str, bytes] = {}

    def add(self, path: str, data: bytes) -> int:
        clean = scrub(data)
        self._files[path] = clean
        return len(clean)

    def paths(self) -> list[str]:
        return sorted(self._files)

    def write(self, target: Path, manifest: Manifest) -> int:
        """Write the tarball (manifest first); returns its size in bytes."""
        buffer = io.BytesIO()
        now = time.time()
        with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=6) as tar:
            document = json.dumps(manifest.as_dict(), indent=2).encode() + b"\n"
            files = {"manifest.json": scrub(document)}  # reasons quote what failed
            files.update(self._files)
            for path, data in files.items():
                info = tarfile.TarInfo(f"{self.top}/{path}")
                info.size, info.mtime, info.mode = len(data), int(now), 0o644
                tar.addfile(info, io.BytesIO(data))
        partial = target.with_name(target.name + ".part")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            partial.write_bytes(buffer.getvalue())
            partial.replace(target)
        except OSError as exc:
            with contextlib.suppress(OSError):
                partial.unlink()
            raise OverlaylabError(
                f"cannot write the archive {target}: {exc.strerror or exc}; "
                "pass another file with -o"
            ) from None
        return len(buffer.getvalue())
