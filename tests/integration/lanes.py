"""The integration modules in lanes that run at once, each lane a machine of its own as far
as a lab (and a host snapshot) can tell.

    python tests/integration/lanes.py [--lanes N] [pytest options...]

A lab's tests wait on the engines far more than they compute: one integration run kept
2 cores 28% busy on average. Run one after another, they took 15-17 minutes; in three
lanes about 6 (the cores 75% busy), in two about 8. Lanes run
them side by side, but every test still needs the machine to itself: it brings a lab up
on fixed names and subnets, and compares the whole host before and after (processes,
namespaces, links, routes, mounts, iptables, cgroups, files). So each lane runs inside
namespaces of its own, made here, as a container runtime makes a container:

- network: the lane's own "host" namespace, with only a loopback. Its labs' links,
  addresses, routes and iptables rules are there, and the lanes can use the same names
  and subnets. Lab traffic stays inside the lane.
- mount: the folders a lab writes (/var/lib/overlaylab, /run/netns, /run/docker,
  /run/containerd, /etc/docker) are empty memory filesystems of the lane's own; /proc
  shows the lane's processes.
- pid: the lane sees only its own processes; its first process (this file, inside) reaps
  the orphans a killed `up` or engine leaves, as init does.
- cgroup: each hierarchy is mounted again with the lane's cgroup as its root, so the
  labs' cgroups (and the snapshot's list of them) are the lane's own.

Modules that share a lab (shared_labs.py), or a folder outside these (Vagrant's
~/.vagrant.d and the node image cache), go in the same lane; the rest are dealt out by
their measured time, longest first, to the lane with the least so far.

When the lanes are done, what they made on the machine itself (their cgroups, the mount
points created for them) is removed, so the machine is as it was.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent

# Seconds each module took in one lane-less run on 2 cores (calls, set-ups and
# teardowns, from --durations=0), to deal them out evenly. A module not listed counts as
# DEFAULT_WEIGHT; the figures only balance the lanes.
WEIGHTS = {
    "test_swarm_mode.py": 171,
    "test_fault_catalogue.py": 138,
    "test_faults_overlay.py": 107,
    "test_faults.py": 106,
    "test_fault_catalogue_services.py": 104,
    "test_vagrant_provider.py": 50,
    "test_vagrant_substrate.py": 34,
    "test_vagrant_crash_down.py": 29,
    "test_faults_nat.py": 29,
    "test_ssh_swarm.py": 29,
    "test_interrupted_up.py": 28,
    "test_node_contract.py": 23,
    "test_ssh_provider.py": 23,
    "test_default_lab.py": 18,
    "test_discovery_demo.py": 17,
    "test_up_failures.py": 14,
    "test_down.py": 11,
    "test_swarm_idle.py": 8,
    "test_new_layout_lab.py": 6,
    "test_zookeeper_lab.py": 5,
}
DEFAULT_WEIGHT = 10
# Modules that must share a lane: one shared lab, or a folder the lanes do not separate.
TOGETHER = [
    ("test_faults.py", "test_faults_overlay.py"),  # the shared faults lab
    ("test_node_contract.py", "test_ssh_provider.py"),  # the shared small and ssh labs
    ("test_vagrant_provider.py", "test_vagrant_substrate.py", "test_vagrant_crash_down.py"),
]
# Folders a lab writes outside its state folder's subtree, made the lane's own: /run
# (where `ip netns`, dockerd and containerd keep their runtime folders, which `down`
# removes when the lab made them) starts with the machine's folders but none of these.
PRIVATE_DIRS = ["/run", "/var/lib/overlaylab", "/etc/docker"]
RUN_MADE_BY_LABS = {"netns", "docker", "containerd"}
CGROUP_ROOT = Path("/sys/fs/cgroup")
LANE_CGROUP = "ci-lane"  # not overlaylab-*: a lab's cgroups are the ones named so


@dataclass
class Lane:
    number: int
    modules: list[str]
    weight: int = 0


def deal(modules: list[str], lanes: int) -> list[Lane]:
    """Modules (file names) into `lanes` lanes of about equal measured time."""
    groups: list[tuple[str, ...]] = []
    placed: set[str] = set()
    for together in TOGETHER:
        present = tuple(m for m in together if m in modules)
        if present:
            groups.append(present)
            placed.update(present)
    groups += [(m,) for m in modules if m not in placed]
    groups.sort(key=lambda g: -sum(WEIGHTS.get(m, DEFAULT_WEIGHT) for m in g))
    dealt = [Lane(n, []) for n in range(1, lanes + 1)]
    for group in groups:
        lightest = min(dealt, key=lambda lane: lane.weight)
        lightest.modules += group
        lightest.weight += sum(WEIGHTS.get(m, DEFAULT_WEIGHT) for m in group)
    return [lane for lane in dealt if lane.modules]


# --- cgroups: the lane's own, as the root of every hierarchy it sees ------------------------


@dataclass(frozen=True)
class Hierarchy:
    mount_point: Path
    fstype: str  # cgroup or cgroup2
    options: str  # the superblock's options: "rw,cpu", "rw,name=systemd", "rw"
    current: str  # this process's cgroup in it, from /proc/self/cgroup


def hierarchies() -> list[Hierarchy]:
    """The cgroup hierarchies mounted on this machine, and where this process sits in each."""
    mine: dict[frozenset[str], str] = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        mine[frozenset(controllers.split(",")) if controllers else frozenset()] = path
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields, _, rest = line.partition(" - ")
        fstype, _, options = rest.split(" ", 2)
        if fstype not in ("cgroup", "cgroup2"):
            continue
        names = frozenset(o for o in options.split(",") if o not in ("rw", "ro"))
        key = (
            frozenset()
            if fstype == "cgroup2"
            else frozenset(n for n in names if n in {c for k in mine for c in k})
        )
        if key in mine:
            found.append(Hierarchy(Path(fields.split()[4]), fstype, options, mine[key]))
    return found


def lane_cgroup(h: Hierarchy, number: int) -> Path:
    return h.mount_point / h.current.lstrip("/") / f"{LANE_CGROUP}{number}"


def enter_lane_cgroups(number: int) -> None:
    """Move this process into the lane's cgroup of every hierarchy (before it unshares
    its cgroup namespace, which makes those cgroups the roots it sees)."""
    for h in hierarchies():
        target = lane_cgroup(h, number)
        target.mkdir(exist_ok=True)
        for name in ("cpuset.cpus", "cpuset.mems"):  # a v1 cpuset starts empty
            mine = target / name
            if mine.exists() and not mine.read_text().strip():
                mine.write_text((target.parent / name).read_text())
        (target / "cgroup.procs").write_text(str(os.getpid()))


def remove_lane_cgroups(number: int, timeout: float = 10.0) -> None:
    """The lane's cgroups, deepest first: a leak inside was already the lane's failure.
    A lane just killed may take a moment to empty them."""
    deadline = time.monotonic() + timeout
    for h in hierarchies():
        top = lane_cgroup(h, number)
        folders = [*sorted((p for p in top.rglob("*") if p.is_dir()), reverse=True), top]
        for folder in (f for f in folders if f.is_dir()):
            while True:
                try:
                    folder.rmdir()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)


def mount(*argv: str) -> None:
    subprocess.run(["mount", *argv], check=True)


def remount_cgroups(seen: list[Hierarchy]) -> None:
    """Inside the lane: every hierarchy mounted again, rooted at the lane's cgroup.

    The machine's mounts go first (the lane's copies of them): left under the new ones,
    they stay in /proc/self/mountinfo with roots outside the namespace ("/../.."), and
    the JVM's container support (ZooKeeper) fails on them with a NullPointerException."""
    links = {p.name: os.readlink(p) for p in CGROUP_ROOT.iterdir() if p.is_symlink()}
    subprocess.run(["umount", "--recursive", str(CGROUP_ROOT)], check=True)
    if any(h.mount_point.parent == CGROUP_ROOT for h in seen):
        mount("-t", "tmpfs", "-o", "mode=755", "cgroup", str(CGROUP_ROOT))
        for name, target in links.items():
            (CGROUP_ROOT / name).symlink_to(target)
    for h in seen:
        h.mount_point.mkdir(parents=True, exist_ok=True)
        mount("-t", h.fstype, "-o", h.options, h.fstype, str(h.mount_point))


# --- inside a lane ------------------------------------------------------------------------


def inside(number: int, pytest_argv: list[str], seen: list[Hierarchy]) -> int:
    """The lane's first process: make its machine, run pytest, reap every orphan."""
    for folder in PRIVATE_DIRS:
        kept = Path(folder)
        files = {p: (p.read_bytes(), p.stat().st_mode) for p in kept.iterdir() if p.is_file()}
        folders = [p for p in kept.rglob("*") if p.is_dir() and not p.is_symlink()]
        if folder == "/run":  # its folders (sshd's privilege separation...), no files
            files = {}
            folders = [p for p in folders if p.relative_to(kept).parts[0] not in RUN_MADE_BY_LABS]
        mount("-t", "tmpfs", "-o", "mode=755", f"lane{number}", folder)
        for path in folders:
            path.mkdir(parents=True, exist_ok=True)
        for path, (data, mode) in files.items():  # /etc/docker's, as the machine has them
            path.write_bytes(data)
            path.chmod(mode)
    remount_cgroups(seen)
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    env = {**os.environ, "OVERLAYLAB_TEST_LANE": str(number)}
    child = subprocess.Popen(pytest_argv, cwd=ROOT, env=env)
    while True:
        pid, status = os.wait()
        if pid == child.pid:
            return os.waitstatus_to_exitcode(status)


# --- the runner -----------------------------------------------------------------------------


def lane_command(number: int, pytest_argv: list[str]) -> list[str]:
    """This file moves itself into the lane's cgroups, then becomes `unshare`, whose child
    is the lane's first process (this file again, --inside)."""
    return [
        sys.executable, __file__, "--enter", str(number), "--",
        "unshare", "--net", "--mount", "--pid", "--cgroup", "--propagation", "private",
        "--fork", "--kill-child", "--mount-proc",
        sys.executable, __file__, "--inside", str(number), "--", *pytest_argv,
    ]  # fmt: skip


def pump(number: int, stream: object, lock: threading.Lock) -> None:
    """A lane's output, each line marked with its lane."""
    for line in stream:  # type: ignore[attr-defined]
        with lock:
            sys.stdout.write(f"[lane {number}] {line}")
            sys.stdout.flush()


@contextlib.contextmanager
def mount_points() -> Iterator[None]:
    """The folders the lanes mount over, made where the machine lacks them, and removed
    after (with the lanes' cgroups)."""
    created = [Path(d) for d in PRIVATE_DIRS if not Path(d).exists()]
    for folder in created:
        folder.mkdir(parents=True)
    try:
        yield
    finally:
        for folder in reversed(created):
            shutil.rmtree(folder, ignore_errors=True)


def lane_problem() -> str | None:
    """Why a lane cannot be made on this machine (a trial lane that runs `true`), or None."""
    trial = subprocess.run(
        lane_command(0, ["true"]), cwd=ROOT, capture_output=True, text=True, check=False
    )
    remove_lane_cgroups(0)
    if trial.returncode == 0:
        return None
    said = (trial.stderr or trial.stdout).strip().splitlines()
    return said[-1] if said else f"exit {trial.returncode}"


def run_lanes(lanes: list[Lane], options: list[str]) -> int:
    lock = threading.Lock()
    procs: list[tuple[Lane, subprocess.Popen[str]]] = []
    pumps = []
    try:
        for lane in lanes:
            # One line per test (-v instead of the caller's -q): a lane's output arrives a
            # line at a time, and a line of -q's dots would stay unseen until it is full.
            verbose = [o for o in options if o != "-q"] + ["-v"]
            argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *verbose]
            argv += [str(HERE / m) for m in lane.modules]
            print(
                f"[lane {lane.number}] {len(lane.modules)} modules, about {lane.weight}s: "
                f"{' '.join(m.removesuffix('.py') for m in lane.modules)}",
                flush=True,
            )
            proc = subprocess.Popen(
                lane_command(lane.number, argv),
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            procs.append((lane, proc))
            pumps.append(threading.Thread(target=pump, args=(lane.number, proc.stdout, lock)))
            pumps[-1].start()
        codes = [proc.wait() for _, proc in procs]
    finally:
        for _, proc in procs:
            if proc.poll() is None:
                proc.kill()  # unshare: its child, the lane's first process, is killed too
                proc.wait()
        for thread in pumps:
            thread.join()
        for lane, _ in procs:
            remove_lane_cgroups(lane.number)
    for (lane, _), code in zip(procs, codes, strict=True):
        print(f"[lane {lane.number}] pytest exited {code}")
    # pytest's own codes: 0 passed, 5 nothing selected (in every lane), else the worst.
    failed = [c for c in codes if c not in (0, 5)]
    return max(failed) if failed else (5 if all(c == 5 for c in codes) else 0)


def stopped(signum: int, _frame: object) -> None:
    signal.signal(signum, signal.SIG_IGN)
    sys.exit(128 + signum)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    lanes = int(os.environ.get("OVERLAYLAB_TEST_LANES", "3"))
    parser.add_argument("--lanes", type=int, default=lanes)
    parser.add_argument("--enter", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--inside", type=int, help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args()
    if rest[:1] == ["--"]:
        rest = rest[1:]
    if args.enter is not None:
        enter_lane_cgroups(args.enter)
        os.execvp(rest[0], rest)
    if args.inside is not None:
        return inside(args.inside, rest, hierarchies_of_machine())
    modules = sorted(p.name for p in HERE.glob("test_*.py"))
    plain = [sys.executable, "-m", "pytest", *rest, str(HERE)]
    if args.lanes <= 1 or os.geteuid() != 0 or not shutil.which("unshare"):
        return subprocess.run(plain, cwd=ROOT).returncode  # root-less: pytest skips them
    # A runner stopped (CI's timeout, kill) stops its lanes: the clean-up below runs, and
    # a second SIGTERM (timeout(1) forwards its own) does not cut it short.
    signal.signal(signal.SIGTERM, stopped)
    with mount_points():
        problem = lane_problem()
        if problem is None:
            return run_lanes(deal(modules, args.lanes), rest)
    print(f"lanes: no lane can be made here ({problem}); the modules run one after another")
    return subprocess.run(plain, cwd=ROOT).returncode


def hierarchies_of_machine() -> list[Hierarchy]:
    """Inside the lane, before anything is remounted: the machine's hierarchies (their
    mount points and options; `current` no longer matters)."""
    return [h for h in hierarchies() if re.match(r"^/sys/", str(h.mount_point))]


if __name__ == "__main__":
    sys.exit(main())
