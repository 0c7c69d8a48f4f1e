"""Teardown helpers that work on names and files: every host path is redirected to tmp_path.

Nothing here kills, unmounts or deletes anything outside tmp_path: the shared runtime
folders are monkeypatched, `ip` is faked and umount2 is replaced by a recorder.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from overlaylab.layout import LabLayout
from overlaylab.providers.local import plumbing, teardown


@dataclass
class FakeLibc:
    unmounted: list[bytes] = field(default_factory=list)

    def umount2(self, target: bytes, flags: int) -> int:
        self.unmounted.append(target)
        return 0


@dataclass
class Host:
    """A fake /run: the shared folders dockerd, containerd and `ip netns` use."""

    root: Path
    libc: FakeLibc

    @property
    def plugins(self) -> Path:
        return self.root / "docker" / "plugins"

    @property
    def shims(self) -> Path:
        return self.root / "containerd" / "s"

    @property
    def netns(self) -> Path:
        return self.root / "netns"

    def make_all(self) -> None:
        for folder in (self.plugins, self.shims, self.netns):
            folder.mkdir(parents=True, exist_ok=True)


@pytest.fixture
def host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Host:
    h = Host(tmp_path / "run", FakeLibc())
    monkeypatch.setattr(teardown, "DOCKER_PLUGIN_DIR", h.plugins)
    monkeypatch.setattr(teardown, "SHIM_SOCKET_DIR", h.shims)
    monkeypatch.setattr(teardown, "NETNS_DIR", h.netns)
    monkeypatch.setattr(teardown, "_libc", h.libc)
    monkeypatch.setattr(teardown, "_other_dockerd_running", lambda: False)
    monkeypatch.setattr(teardown.memory_state, "is_mount_point", lambda path: False)
    return h


@pytest.fixture
def layout(tmp_path: Path) -> LabLayout:
    return LabLayout.for_cluster("lab", tmp_path / "state" / "lab")


def write_footprint(layout: LabLayout, existed: dict[str, bool]) -> None:
    layout.state_dir.mkdir(parents=True, exist_ok=True)
    (layout.state_dir / teardown.FOOTPRINT_FILE).write_text(json.dumps(existed))


def nothing_existed(host: Host) -> dict[str, bool]:
    return {
        str(host.plugins): False,
        str(host.plugins.parent): False,
        str(host.shims): False,
        str(host.shims.parent): False,
        str(host.netns): False,
        "netns-mount": False,
    }


# --- shim sockets ---------------------------------------------------------------------


def shim_socket(node_dir: Path, container: str) -> str:
    key = f"{node_dir}/exec/containerd/containerd.sock/moby/{container}"
    return hashlib.sha256(key.encode()).hexdigest()


def test_remove_shim_sockets_removes_only_the_labs(host: Host, layout: LabLayout) -> None:
    host.make_all()
    ids = {"node1": ["a" * 64, "b" * 64], "node2": ["c" * 64]}
    ours = []
    for node, containers in ids.items():
        for cid in containers:
            (layout.node_dir(node) / "data" / "containers" / cid).mkdir(parents=True)
            ours.append(host.shims / shim_socket(layout.node_dir(node), cid))
    for sock in ours[:-1]:  # one shim socket is already gone
        sock.touch()
    other_lab = LabLayout.for_cluster("lab2", layout.state_dir.parent / "lab2")
    foreign = [
        host.shims / shim_socket(other_lab.node_dir("node1"), "a" * 64),
        host.shims / hashlib.sha256(b"/run/containerd/containerd.sock/moby/x").hexdigest(),
        host.shims / "unrelated",
    ]
    for sock in foreign:
        sock.touch()
    assert teardown.remove_shim_sockets(layout) == 2
    assert not any(s.exists() for s in ours)
    assert all(s.exists() for s in foreign)


def test_remove_shim_sockets_without_state_dir(host: Host, layout: LabLayout) -> None:
    host.make_all()
    (host.shims / "unrelated").touch()
    assert teardown.remove_shim_sockets(layout) == 0
    assert (host.shims / "unrelated").exists()


# --- shared runtime folders -----------------------------------------------------------


def test_restore_removes_what_the_lab_created(host: Host, layout: LabLayout) -> None:
    host.make_all()
    write_footprint(layout, nothing_existed(host))
    teardown.restore_host_footprint(layout)
    for folder in (host.plugins, host.plugins.parent, host.shims, host.shims.parent, host.netns):
        assert not folder.exists(), folder
    assert host.libc.unmounted == []


def test_restore_keeps_what_existed_before(host: Host, layout: LabLayout) -> None:
    host.make_all()
    write_footprint(layout, {k: True for k in nothing_existed(host)})
    teardown.restore_host_footprint(layout)
    for folder in (host.plugins, host.shims, host.netns):
        assert folder.is_dir(), folder
    assert host.libc.unmounted == []


def test_restore_keeps_created_folders_someone_else_now_uses(host: Host, layout: LabLayout) -> None:
    host.make_all()
    (host.plugins / "someone.sock").touch()
    (host.shims / "abc").touch()
    (host.netns / "other-ns").touch()
    write_footprint(layout, nothing_existed(host))
    teardown.restore_host_footprint(layout)
    assert (host.plugins / "someone.sock").exists()
    assert (host.shims / "abc").exists()
    assert (host.netns / "other-ns").exists()
    assert host.libc.unmounted == []


def test_restore_partial_footprint(host: Host, layout: LabLayout) -> None:
    host.make_all()
    existed = nothing_existed(host)
    existed[str(host.plugins.parent)] = True  # /run/docker was there, plugins was not
    write_footprint(layout, existed)
    teardown.restore_host_footprint(layout)
    assert not host.plugins.exists()
    assert host.plugins.parent.is_dir()


def test_restore_unmounts_netns_only_when_the_lab_mounted_it(
    host: Host, layout: LabLayout, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(teardown.memory_state, "is_mount_point", lambda path: path == host.netns)
    host.make_all()
    existed = nothing_existed(host)
    existed["netns-mount"] = True
    write_footprint(layout, existed)
    teardown.restore_host_footprint(layout)
    assert host.libc.unmounted == []

    host.make_all()
    write_footprint(layout, nothing_existed(host))
    teardown.restore_host_footprint(layout)
    assert host.libc.unmounted == [str(host.netns).encode()]


def test_restore_never_unmounts_netns_with_namespaces_left(
    host: Host, layout: LabLayout, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(teardown.memory_state, "is_mount_point", lambda path: path == host.netns)
    host.make_all()
    (host.netns / "ol-other-node1").touch()
    write_footprint(layout, nothing_existed(host))
    teardown.restore_host_footprint(layout)
    assert host.libc.unmounted == []
    assert host.netns.is_dir()


@pytest.mark.parametrize("other_dockerd", [False, True])
def test_restore_without_footprint(
    host: Host, layout: LabLayout, monkeypatch: pytest.MonkeyPatch, other_dockerd: bool
) -> None:
    monkeypatch.setattr(teardown, "_other_dockerd_running", lambda: other_dockerd)
    host.make_all()
    teardown.restore_host_footprint(layout)
    # Folders a running system dockerd uses stay; without one they go when empty.
    assert host.plugins.exists() is other_dockerd
    assert host.shims.exists() is other_dockerd
    assert not host.netns.exists()


# --- finding the lab's things by name ---------------------------------------------------


class FakeMountinfo:
    def __init__(self, text: str) -> None:
        self.text = text

    def __call__(self, path: str, *args: object, **kwargs: object) -> io.StringIO:
        assert path == "/proc/self/mountinfo"
        return io.StringIO(self.text)


def test_lab_mounts_parses_mountinfo(layout: LabLayout, monkeypatch: pytest.MonkeyPatch) -> None:
    root = str(layout.state_dir)
    spaced = f"{root}/nodes/node 1/x".replace(" ", "\\040")
    lines = [
        "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw",
        f"50 22 0:45 / {root} rw - tmpfs tmpfs rw",
        f"51 50 0:46 / {root}/nodes/node1/data/overlay2/abc/merged rw - overlay overlay rw",
        f"52 22 0:47 / {spaced} rw - tmpfs tmpfs rw",
        f"53 22 0:48 / {root}2/nodes/node1 rw - tmpfs tmpfs rw",
        f"54 22 0:49 / {root}-x/nodes/node1 rw - tmpfs tmpfs rw",
        "55 22 0:50 / /run/netns rw - tmpfs tmpfs rw",
    ]
    monkeypatch.setattr(teardown, "open", FakeMountinfo("\n".join(lines) + "\n"), raising=False)
    assert teardown.lab_mounts(layout) == [
        root,
        f"{root}/nodes/node1/data/overlay2/abc/merged",
        f"{root}/nodes/node 1/x",
    ]


def fake_netns_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, names: list[str]) -> None:
    """A /run/netns of our own: its entries are what `plumbing.namespaces` lists."""
    folder = tmp_path / "netns"
    folder.mkdir(exist_ok=True)
    for name in names:
        (folder / name).touch()
    monkeypatch.setattr(plumbing, "NETNS_DIR", folder)


def test_lab_namespaces_are_the_ones_named_for_the_lab(
    layout: LabLayout, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_netns_dir(
        monkeypatch,
        tmp_path,
        ["ol-lab.node2", "ol-lab.node1", "ol-lab2-node1", "ol-lab._switch", "ol-lab2.switch", "x"],
    )
    assert teardown.lab_namespaces(layout) == ["ol-lab._switch", "ol-lab.node1", "ol-lab.node2"]


def test_processes_in_a_namespace_are_found_by_its_inode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Our own process is "in" a namespace whose file is our own /proc/self/ns/net.
    folder = tmp_path / "netns"
    folder.mkdir()
    (folder / "here").symlink_to(f"/proc/{os.getpid()}/ns/net")
    (folder / "elsewhere").touch()
    monkeypatch.setattr(plumbing, "NETNS_DIR", folder)
    assert os.getpid() in plumbing.processes_in("here")
    assert plumbing.processes_in("elsewhere") == set()
    assert plumbing.processes_in("missing") == set()


@pytest.fixture
def sleeper(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], subprocess.Popen[bytes]]]:
    """Two processes of ours whose command lines name a state folder each."""
    code = "import time; time.sleep(60)"
    ours = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "state/lab/nodes/n1")])
    theirs = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "state/lab2/nodes/n1")])
    try:
        yield ours, theirs
    finally:
        for proc in (ours, theirs):
            proc.kill()
            proc.wait()


def isolate_pid_scan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_netns_dir(monkeypatch, tmp_path, [])
    monkeypatch.setattr(teardown, "CGROUP_ROOT", tmp_path / "no-cgroups")


def test_lab_pids_finds_processes_by_command_line(
    layout: LabLayout,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    sleeper: tuple[subprocess.Popen[bytes], subprocess.Popen[bytes]],
) -> None:
    isolate_pid_scan(tmp_path, monkeypatch)
    ours, _ = sleeper
    pids = teardown.lab_pids(layout)
    assert ours.pid in pids


def test_lab_pids_ignores_a_lab_whose_state_dir_extends_the_name(
    layout: LabLayout,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    sleeper: tuple[subprocess.Popen[bytes], subprocess.Popen[bytes]],
) -> None:
    isolate_pid_scan(tmp_path, monkeypatch)
    _, theirs = sleeper
    assert theirs.pid not in teardown.lab_pids(layout)


def test_a_netlink_call_that_hangs_is_abandoned_and_retried(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(plumbing, "CALL_TIMEOUT", 0.05)
    calls: list[int] = []

    def operation() -> str:
        calls.append(1)
        if len(calls) < 3:  # the first two attempts never get an answer
            return plumbing._within_deadline(lambda: time.sleep(1) or "late", "test")
        return plumbing._within_deadline(lambda: "answered", "test")

    assert plumbing.retrying(operation) == "answered"
    assert len(calls) == 3
    with pytest.raises(plumbing.NetlinkHang, match="no answer within"):
        plumbing.retrying(lambda: plumbing._within_deadline(lambda: time.sleep(1), "x"), 2)


def test_a_netlink_error_is_not_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []

    def failing() -> None:
        calls.append(1)
        plumbing._within_deadline(lambda: 1 / 0, "test")

    with pytest.raises(ZeroDivisionError):
        plumbing.retrying(failing)
    assert calls == [1]
