"""What the images built offline have in common: a binary's shared libraries."""

from __future__ import annotations

import subprocess
from pathlib import Path


def shared_libraries(binary: Path) -> list[str]:
    """Absolute paths of the libraries (and loader) `binary` needs, as ldd names them."""
    out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=True).stdout
    paths = []
    for line in out.splitlines():
        words = line.split()
        candidates = [w for w in words if w.startswith("/")]
        if candidates:
            paths.append(candidates[0])
    return paths
