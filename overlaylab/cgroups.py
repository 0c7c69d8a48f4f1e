"""cgroups as this machine mounts them: v1 (a hierarchy per controller, as on the
project's machines) or v2 (one unified hierarchy, most Linux machines today).

The lab finds its own cgroups by name (the `overlaylab-<cluster>.` cgroup parent of
every engine) in either layout, and the tests and benchmarks read a process's memory
from whichever its kernel keeps.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


def unified(root: Path = CGROUP_ROOT) -> bool:
    """cgroup v2 mounted at root (its top holds cgroup.controllers; v1's holds folders
    named after controllers)."""
    return (root / "cgroup.controllers").is_file()


def hierarchy_tops(root: Path = CGROUP_ROOT) -> list[Path]:
    """Where each hierarchy starts: root itself (v2), or each controller's folder (v1)."""
    if unified(root):
        return [root]
    with contextlib.suppress(OSError):
        return [p for p in root.iterdir() if p.is_dir()]
    return []


def subgroups(group: Path) -> list[Path]:
    with contextlib.suppress(OSError):
        return [p for p in group.iterdir() if p.is_dir()]
    return []


@dataclass(frozen=True)
class ProcessCgroup:
    """Where /proc/PID/cgroup puts a process for one controller."""

    version: int  # 1 or 2
    path: str  # inside the hierarchy, e.g. /docker/<id>

    def folder(self, controller: str, root: Path = CGROUP_ROOT) -> Path:
        top = root / controller if self.version == 1 else root
        return top / self.path.lstrip("/")


def process_cgroup(text: str, controller: str = "memory") -> ProcessCgroup:
    """Parse /proc/PID/cgroup: the v1 line that names `controller` ("4:memory:/x",
    or a joint one "3:cpu,cpuacct:/x"), else the v2 line ("0::/x").

    Raises ValueError when neither is there (the controller is not mounted).
    """
    unified_path = None
    for line in text.splitlines():
        number, controllers, path = [*line.split(":", 2), "", ""][:3]
        if not number:
            continue
        if controller in controllers.split(","):
            return ProcessCgroup(1, path)
        if number == "0" and controllers == "":
            unified_path = path
    if unified_path is not None:
        return ProcessCgroup(2, unified_path)
    raise ValueError(f"no {controller} cgroup (v1) and no unified one (v2) in: {text!r}")


# (current, peak) memory files per cgroup version.
_MEMORY_FILES = {
    1: ("memory.usage_in_bytes", "memory.max_usage_in_bytes"),
    2: ("memory.current", "memory.peak"),  # memory.peak: kernel 5.19 and later
}


def memory_mib(pid: int, peak: bool = False, root: Path = CGROUP_ROOT) -> float:
    """Memory charged to the cgroup of `pid` (page cache included), now or at its peak."""
    where = process_cgroup(Path(f"/proc/{pid}/cgroup").read_text())
    name = _MEMORY_FILES[where.version][1 if peak else 0]
    value = (where.folder("memory", root) / name).read_text()
    return round(int(value) / 2**20, 1)
