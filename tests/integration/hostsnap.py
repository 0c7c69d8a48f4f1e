"""A snapshot of everything a lab could leave behind on the host, for before/after diffs."""

from __future__ import annotations

import re
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

WATCHED_PATHS = [
    Path("/var/lib/overlaylab"),
    Path("/run/docker"),
    Path("/run/netns"),
    Path("/etc/docker"),
    Path("/run/containerd"),
]
CGROUP_ROOT = Path("/sys/fs/cgroup")


def _out(*argv: str) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=False).stdout


def _processes() -> dict[int, str]:
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if cmdline and state != "Z":  # kernel threads have no cmdline; zombies hold nothing
            found[int(entry.name)] = cmdline
    return found


def _tree(path: Path) -> list[str]:
    if not path.exists():
        return []
    return sorted(str(p) for p in [path, *path.rglob("*")])


@dataclass
class HostSnapshot:
    processes: dict[int, str]
    netns: list[str]
    links: list[str]
    addresses: list[str]
    routes: list[str]
    mounts: list[str]
    iptables: str
    ip6tables: str
    files: dict[str, list[str]]
    cgroups: list[str]
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def take(cls) -> HostSnapshot:
        counters = re.compile(r"\[\d+:\d+\]|^#.*$", re.M)
        cgroups = sorted(
            str(p)
            for top in CGROUP_ROOT.glob("*")
            if top.is_dir()
            for p in top.iterdir()
            if p.is_dir()
        )
        return cls(
            processes=_processes(),
            netns=sorted(_out("ip", "netns", "list").split()),
            links=sorted(
                re.sub(r"^\d+: ", "", line).split()[0]
                for line in _out("ip", "-o", "link").splitlines()
            ),
            addresses=sorted(
                " ".join(line.split()[1:4]) for line in _out("ip", "-o", "addr").splitlines()
            ),
            routes=sorted(_out("ip", "route").splitlines()),
            mounts=sorted(
                " ".join(line.split()[4:5] + line.split(" - ")[1].split()[:1])
                for line in Path("/proc/self/mountinfo").read_text().splitlines()
            ),
            iptables=counters.sub("", _out("iptables-save")),
            ip6tables=counters.sub("", _out("ip6tables-save")),
            files={str(p): _tree(p) for p in WATCHED_PATHS},
            cgroups=cgroups,
        )

    def differences(self, after: HostSnapshot) -> list[str]:
        """What `after` has that this snapshot did not (and the reverse for state)."""
        problems: list[str] = []
        new = {pid: cmd for pid, cmd in after.processes.items() if pid not in self.processes}
        problems += [f"process left running: {pid} {cmd[:120]}" for pid, cmd in new.items()]
        for name in ("netns", "links", "addresses", "routes", "mounts", "cgroups"):
            before_set, after_set = set(getattr(self, name)), set(getattr(after, name))
            problems += [f"{name}: added {x}" for x in sorted(after_set - before_set)]
            problems += [f"{name}: removed {x}" for x in sorted(before_set - after_set)]
        for name in ("iptables", "ip6tables"):
            if getattr(self, name) != getattr(after, name):
                problems.append(f"{name} rules changed")
        for path, listing in after.files.items():
            if listing != self.files.get(path):
                changed = sorted(set(listing) ^ set(self.files.get(path, [])))[:5]
                problems.append(f"files under {path} changed: {changed}")
        return problems


def wait_until_clean(before: HostSnapshot, timeout: float = 10.0) -> list[str]:
    """Diff after `down`, allowing a moment for processes the kernel is still reaping."""
    deadline = time.monotonic() + timeout
    while True:
        problems = before.differences(HostSnapshot.take())
        if not problems or time.monotonic() > deadline:
            return problems
        time.sleep(0.2)
