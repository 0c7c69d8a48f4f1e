"""A snapshot of everything a lab could leave behind on the host, for before/after diffs.

Processes are scoped to what a lab can leave: a developer's workstation and a CI runner
are busy machines, and an unrelated `sleep 240` in another shell is no leak. A process
counts when it is inside one of the labs' network namespaces (`ol-*`) or cgroups
(`overlaylab-*`), when it is one of the programs a lab runs (engines, shims, KV stores,
sshd...) outside the host's own network namespace, when it is a lab client (compose,
vagrant), or when its command line, open files or working directory reference the
state folder.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from overlaylab.layout import CGROUP_PREFIX, DEFAULT_STATE_ROOT, NETNS_PREFIX
from overlaylab.waiting import wait_until

WATCHED_PATHS = [
    Path("/var/lib/overlaylab"),
    Path("/run/docker"),
    Path("/run/netns"),
    Path("/etc/docker"),
    Path("/run/containerd"),
]
# What the lab's programs would write to the machine's temporary folder: containerd's
# stack dump when its engine finds it unhealthy and kills it (its $TMPDIR is the node's).
TMP_LEFTOVERS = (Path("/tmp"), ("containerd.*.stacks.log", "goroutine-stacks-*.log"))
CGROUP_ROOT = Path("/sys/fs/cgroup")
NETNS_DIR = Path("/run/netns")

# Servers a lab starts inside its namespaces. The machine may run its own (a system
# docker starting a container spawns a shim and a docker-proxy in the host's network
# namespace), so these count only outside it: a lab's dockerd whose namespace `down`
# already removed still sits in that orphaned namespace.
LAB_SERVERS = frozenset(
    {
        "dockerd",
        "containerd",
        "runc",
        "docker-proxy",
        "docker-init",
        "etcd",
        "consul",
        "swarm",
        "sshd",
        "zkServer.sh",
    }
)
SHIM_PREFIX = "containerd-shim"  # containerd-shim-runc-v2: comm keeps 15 characters
# Clients only the lab's tasks run on this machine: they count wherever they are.
LAB_CLIENTS = frozenset({"docker-compose", "vagrant"})


@dataclass(frozen=True)
class ProcessFacts:
    """What /proc says about one process, enough to tell whether a lab left it."""

    pid: int
    comm: str
    cmdline: tuple[str, ...]
    netns: str | None  # "net:[4026532301]"; None when it cannot be read
    cgroups: tuple[str, ...] = ()  # paths from /proc/PID/cgroup
    open_paths: tuple[str, ...] = ()  # targets of /proc/PID/fd/* and /proc/PID/cwd


@dataclass(frozen=True)
class LabScope:
    """What belongs to labs on this machine right now."""

    host_netns: str | None
    lab_netns: dict[str, str]  # "net:[inode]" -> namespace name (ol-*)
    state_root: str = str(DEFAULT_STATE_ROOT)

    @classmethod
    def current(cls) -> LabScope:
        lab_netns: dict[str, str] = {}
        if NETNS_DIR.is_dir():
            for entry in NETNS_DIR.iterdir():
                if entry.name.startswith(NETNS_PREFIX):
                    try:
                        lab_netns[f"net:[{entry.stat().st_ino}]"] = entry.name
                    except OSError:
                        continue  # removed while we looked
        return cls(host_netns=_readlink("/proc/self/ns/net"), lab_netns=lab_netns)

    def mentions_state(self, text: str) -> bool:
        """`text` names the state folder or something under it (not /var/lib/overlaylab2)."""
        root = self.state_root
        return re.search(re.escape(root) + r"(/|$|\s)", text) is not None


def _program(facts: ProcessFacts) -> str:
    """The program's name: comm, unless argv[0] shows the name comm truncated."""
    first = Path(facts.cmdline[0]).name if facts.cmdline else ""
    return first if first.startswith(facts.comm) and len(facts.comm) == 15 else facts.comm


def _is_lab_server(facts: ProcessFacts) -> bool:
    name = _program(facts)
    if name in LAB_SERVERS or name.startswith(SHIM_PREFIX):
        return True
    # zkServer.sh execs java: ZooKeeper is the java whose command line names it.
    return name == "java" and any("zookeeper" in arg.lower() for arg in facts.cmdline)


def lab_process_reason(facts: ProcessFacts, scope: LabScope) -> str | None:
    """Why the process belongs to a lab, or None when it is none of a lab's business."""
    if facts.netns is not None and facts.netns in scope.lab_netns:
        return f"in netns {scope.lab_netns[facts.netns]}"
    for path in facts.cgroups:
        if any(part.startswith(CGROUP_PREFIX) for part in path.split("/")):
            return f"in cgroup {path}"
    name = _program(facts)
    if name in LAB_CLIENTS:
        return f"lab program {name}"
    outside_host = facts.netns is not None and facts.netns != scope.host_netns
    if outside_host and _is_lab_server(facts):
        return f"lab program {name} outside the host's network namespace"
    if any(scope.mentions_state(arg) for arg in facts.cmdline):
        return f"command line names {scope.state_root}"
    for path in facts.open_paths:
        if scope.mentions_state(path):
            return f"uses {path}"
    return None


def _out(*argv: str) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=False).stdout


def _readlink(path: str | Path) -> str | None:
    try:
        return os.readlink(path)
    except OSError:
        return None


def _process_facts(entry: Path) -> ProcessFacts | None:
    """The facts of /proc/PID, or None for kernel threads, zombies and the departed."""
    try:
        raw = (entry / "cmdline").read_bytes()
        state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        comm = (entry / "comm").read_text().rstrip("\n")
        cgroup_lines = (entry / "cgroup").read_text().splitlines()
    except (OSError, IndexError, ValueError):
        return None
    if not raw or state == "Z":  # kernel threads have no cmdline; zombies hold nothing
        return None
    try:
        fds = list((entry / "fd").iterdir())
    except OSError:
        fds = []
    targets = [_readlink(fd) for fd in fds] + [_readlink(entry / "cwd")]
    return ProcessFacts(
        pid=int(entry.name),
        comm=comm,
        cmdline=tuple(arg.decode(errors="replace") for arg in raw.rstrip(b"\0").split(b"\0")),
        netns=_readlink(entry / "ns" / "net"),
        cgroups=tuple(line.split(":", 2)[-1] for line in cgroup_lines),
        open_paths=tuple(t for t in targets if t),
    )


def _processes(scope: LabScope) -> dict[int, str]:
    """Every process a lab may have left: pid -> its command line and why it counts."""
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        facts = _process_facts(entry)
        reason = facts and lab_process_reason(facts, scope)
        if facts and reason:
            found[facts.pid] = f"{' '.join(facts.cmdline)[:120]} [{reason}]"
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
            processes=_processes(LabScope.current()),
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
            files={
                **{str(p): _tree(p) for p in WATCHED_PATHS},
                str(TMP_LEFTOVERS[0]): sorted(
                    str(f) for pattern in TMP_LEFTOVERS[1] for f in TMP_LEFTOVERS[0].glob(pattern)
                ),
            },
            cgroups=cgroups,
        )

    def differences(self, after: HostSnapshot) -> list[str]:
        """What `after` has that this snapshot did not (and the reverse for state)."""
        problems: list[str] = []
        new = {pid: what for pid, what in after.processes.items() if pid not in self.processes}
        problems += [f"process left running: {pid} {what}" for pid, what in new.items()]
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
    problems: list[str] = []

    def clean() -> bool:
        nonlocal problems
        problems = before.differences(HostSnapshot.take())
        return not problems

    wait_until(clean, timeout, interval=0.2)
    return problems
