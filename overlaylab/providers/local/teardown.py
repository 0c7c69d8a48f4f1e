"""Take a local lab away completely, from names alone.

Order matters: kill every process first (engines, their containerd and shims, the
containers themselves, the KV store), then detach mounts, then remove links,
namespaces, cgroups and files. Processes are found three ways so that a lab
interrupted at any point (kill -9 mid-`up`, a lost state file) is still found:
by network namespace (`ip netns pids`), by cgroup parent (containers live in
their own namespaces) and by command line mentioning the state folder.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import json
import os
import shutil
import signal
from pathlib import Path

from overlaylab import cgroups
from overlaylab.errors import TeardownIncomplete
from overlaylab.layout import LabLayout
from overlaylab.providers.local import memory_state, plumbing
from overlaylab.waiting import wait_until

MNT_DETACH = 2
CGROUP_ROOT = cgroups.CGROUP_ROOT
# dockerd hard-codes its plugin socket folder; the lab records whether it made it.
DOCKER_PLUGIN_DIR = Path("/run/docker/plugins")
# containerd 1.6 puts each shim's socket at /run/containerd/s/sha256(<containerd
# address>/<namespace>/<container id>), whatever its root; a killed shim leaves it.
SHIM_SOCKET_DIR = Path("/run/containerd/s")
CONTAINERD_NAMESPACE = "moby"
FOOTPRINT_FILE = "host-footprint.json"
PROCESS_EXIT_TIMEOUT = 10.0
_libc = ctypes.CDLL(None, use_errno=True)


def lab_namespaces(layout: LabLayout) -> list[str]:
    return [n for n in plumbing.namespaces() if layout.owns_ns(n)]


def lab_cgroups(layout: LabLayout) -> list[Path]:
    """The lab's cgroups at the top of each hierarchy (v1: one per controller; v2: the
    unified one), where dockerd's `cgroup-parent` puts them."""
    if not CGROUP_ROOT.is_dir():
        return []
    return [
        group
        for top in cgroups.hierarchy_tops(CGROUP_ROOT)
        for group in cgroups.subgroups(top)
        if group.name.startswith(layout.cgroup_prefix)
    ]


def _cgroup_pids(group: Path) -> set[int]:
    pids: set[int] = set()
    for procs in group.rglob("cgroup.procs"):
        with contextlib.suppress(OSError, ValueError):
            pids |= {int(p) for p in procs.read_text().split()}
    return pids


def lab_pids(layout: LabLayout) -> set[int]:
    pids: set[int] = set()
    for ns in lab_namespaces(layout):
        pids |= plumbing.processes_in(ns)
    for group in lab_cgroups(layout):
        pids |= _cgroup_pids(group)
    # The state folder as a whole path component: /var/lib/overlaylab/lab must not
    # match the processes of lab `lab2` (/var/lib/overlaylab/lab2/...).
    marker = str(layout.state_dir).encode()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                cmdline = (entry / "cmdline").read_bytes() + b"\0"
                if marker + b"/" in cmdline or marker + b"\0" in cmdline:
                    pids.add(int(entry.name))
    pids.discard(os.getpid())
    return pids


def kill_processes(layout: LabLayout, timeout: float = PROCESS_EXIT_TIMEOUT) -> int:
    """SIGKILL every process of the lab and wait until each one has left /proc.

    Nothing in a lab needs a graceful stop, so there is no SIGTERM round to wait out.
    A killed process is only gone once its parent reaps it: the lab's services are
    children of pid 1 (the `up` that started them has exited), which reaps on its own
    schedule, so `down` waits for that rather than report a lab that `ps` still shows.
    """
    killed: set[int] = set()

    def all_gone() -> bool:
        alive = {p for p in lab_pids(layout) if not _is_zombie(p)}
        for pid in alive:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        killed.update(alive)
        _reap_children()
        return not alive and not any(_in_proc_table(p) for p in killed)

    wait_until(all_gone, timeout, interval=0.05)
    return len(killed)


def _in_proc_table(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def _reap_children() -> None:
    # Services spawned by this very process (an `up` then `down` in one run) would
    # otherwise linger as zombies until it exits.
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0] != 0:
            pass


def lab_mounts(layout: LabLayout) -> list[str]:
    root = str(layout.state_dir)
    points: list[str] = []
    with open("/proc/self/mountinfo") as handle:
        for line in handle:
            point = line.split()[4].replace("\\040", " ")
            if point == root or point.startswith(root + "/"):
                points.append(point)
    return points


def unmount_all(layout: LabLayout) -> int:
    """Every mount inside the state folder; the folder's own tmpfs stays, as it holds
    the record `down` reads next (memory_state.unmount_state takes it off last)."""
    count = 0
    root = str(layout.state_dir)
    for _ in range(10):  # nested and stacked mounts come off in rounds
        points = [p for p in lab_mounts(layout) if p != root]
        if not points:
            break
        for point in sorted(set(points), key=len, reverse=True):
            if _libc.umount2(point.encode(), MNT_DETACH) == 0:
                count += 1
    return count


def remove_cgroups(layout: LabLayout) -> int:
    count = 0
    for group in lab_cgroups(layout):
        for sub in sorted(
            (p for p in group.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True
        ):
            with contextlib.suppress(OSError):
                sub.rmdir()
        with contextlib.suppress(OSError):
            group.rmdir()
            count += 1
    return count


NETNS_DIR = plumbing.NETNS_DIR


def record_host_footprint(layout: LabLayout) -> None:
    """Before the lab's first namespace, note which shared host paths already existed.

    `ip netns add` bind-mounts /run/netns onto itself and dockerd makes
    /run/docker/plugins; `down` removes them only if the lab made them.
    """
    path = layout.state_dir / FOOTPRINT_FILE
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    shared = (
        DOCKER_PLUGIN_DIR,
        DOCKER_PLUGIN_DIR.parent,
        SHIM_SOCKET_DIR,
        SHIM_SOCKET_DIR.parent,
        NETNS_DIR,
    )
    existed = {str(p): p.exists() for p in shared}
    existed["netns-mount"] = memory_state.is_mount_point(NETNS_DIR)
    path.write_text(json.dumps(existed))


def restore_host_footprint(layout: LabLayout) -> None:
    try:
        existed = json.loads((layout.state_dir / FOOTPRINT_FILE).read_text())
    except (OSError, ValueError):
        # No record: these are runtime folders that `ip netns` and dockerd recreate on
        # demand, so take them away when empty and unused by anyone else.
        other = _other_dockerd_running()
        existed = {
            str(DOCKER_PLUGIN_DIR): other,
            str(DOCKER_PLUGIN_DIR.parent): other,
            str(NETNS_DIR): False,
            "netns-mount": False,
        }
    for p in (SHIM_SOCKET_DIR, SHIM_SOCKET_DIR.parent):
        existed.setdefault(str(p), _other_dockerd_running())
    for p in (DOCKER_PLUGIN_DIR, DOCKER_PLUGIN_DIR.parent, SHIM_SOCKET_DIR, SHIM_SOCKET_DIR.parent):
        if not existed.get(str(p), True):
            with contextlib.suppress(OSError):
                p.rmdir()  # only if empty: never take what someone else put there
    no_namespaces_left = NETNS_DIR.is_dir() and not any(NETNS_DIR.iterdir())
    netns_mounted = memory_state.is_mount_point(NETNS_DIR)
    if no_namespaces_left and not existed.get("netns-mount", True) and netns_mounted:
        _libc.umount2(str(NETNS_DIR).encode(), MNT_DETACH)
    if no_namespaces_left and not existed.get(str(NETNS_DIR), True):
        with contextlib.suppress(OSError):
            NETNS_DIR.rmdir()


def _other_dockerd_running() -> bool:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().strip() == "dockerd" and not _is_zombie(
                    int(entry.name)
                ):
                    return True
    return False


def remove_shim_sockets(layout: LabLayout) -> int:
    """Remove the shim sockets of every container the lab's engines ever ran."""
    removed = 0
    nodes = layout.state_dir / "nodes"
    for containers in nodes.glob("*/data/containers"):
        node_dir = containers.parent.parent
        address = node_dir / "exec" / "containerd" / "containerd.sock"
        for container in containers.iterdir():
            key = os.path.join(address, CONTAINERD_NAMESPACE, container.name)
            socket_path = SHIM_SOCKET_DIR / hashlib.sha256(key.encode()).hexdigest()
            with contextlib.suppress(FileNotFoundError):
                socket_path.unlink()
                removed += 1
    return removed


def destroy_local_lab(layout: LabLayout) -> list[str]:
    """Take the lab away; return what was done. Raises if anything of it remains.

    The last act is a fresh scan for every kind of trace, so "the lab is down" is
    only ever said when it is true.
    """
    done: list[str] = []
    killed = kill_processes(layout)
    if killed:
        done.append(f"killed {killed} processes")
    unmounted = unmount_all(layout)
    if unmounted:
        done.append(f"unmounted {unmounted} mounts")
    if _host_link_exists(layout):
        # Deleted by hand: namespace teardown is asynchronous in the kernel.
        with plumbing.links(None) as host:
            host.delete(layout.host_link)
        done.append(f"deleted host link {layout.host_link}")
    namespaces = lab_namespaces(layout)
    for ns in namespaces:
        plumbing.remove_namespace(ns)
    if namespaces:
        done.append(f"deleted {len(namespaces)} namespaces")
    cgroups = remove_cgroups(layout)
    if cgroups:
        done.append(f"removed {cgroups} cgroups")
    sockets = remove_shim_sockets(layout)
    if sockets:
        done.append(f"removed {sockets} stale shim sockets")
    restore_host_footprint(layout)
    if memory_state.unmount_state(layout):
        done.append("unmounted the state folder's tmpfs")
    if layout.state_dir.exists():
        shutil.rmtree(layout.state_dir, ignore_errors=True)
        done.append(f"removed {layout.state_dir}")
    parent = layout.state_dir.parent
    if parent.name == "overlaylab":
        with contextlib.suppress(OSError):
            parent.rmdir()  # the shared root, once its last lab is gone
    remaining = leftovers(layout)
    if remaining:
        raise TeardownIncomplete(layout.cluster, done, remaining)
    return done


def _host_link_exists(layout: LabLayout) -> bool:
    with plumbing.links(None) as host:
        return host.exists(layout.host_link)


def leftovers(layout: LabLayout) -> list[str]:
    """Every trace of the lab still on the machine, one line each (empty when clean)."""
    found: list[str] = []
    for pid in sorted(lab_pids(layout)):
        state = "exited, not yet reaped" if _is_zombie(pid) else "running"
        found.append(f"process {pid} ({_command_line(pid)}): {state}")
    found += [f"network namespace {ns}" for ns in lab_namespaces(layout)]
    if _host_link_exists(layout):
        found.append(f"host link {layout.host_link}")
    found += [f"mount {point}" for point in lab_mounts(layout)]
    found += [f"cgroup {group}" for group in lab_cgroups(layout)]
    if layout.state_dir.exists():
        found.append(f"folder {layout.state_dir}")
    return found


def _command_line(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        return raw.replace(b"\0", b" ").decode(errors="replace").strip()[:120] or "?"
    except OSError:
        return "?"
