"""When a local lab's state folder goes into memory, and when it stays where it is.
The kernel's mount calls are replaced by a recorder: nothing is mounted here."""

from __future__ import annotations

import errno
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from overlaylab.layout import LabLayout
from overlaylab.providers.local import memory_state


@dataclass
class Kernel:
    fails_with: int = 0
    mounted: list[tuple[bytes, bytes, bytes, bytes]] = field(default_factory=list)
    unmounted: list[bytes] = field(default_factory=list)

    def mount(self, source: bytes, target: bytes, kind: bytes, flags: int, data: bytes) -> int:
        if self.fails_with:
            return -1
        self.mounted.append((source, target, kind, data))
        return 0

    def umount2(self, target: bytes, flags: int) -> int:
        self.unmounted.append(target)
        return 0


@pytest.fixture
def kernel(monkeypatch: pytest.MonkeyPatch) -> Kernel:
    k = Kernel()
    monkeypatch.setattr(memory_state, "_libc", k)
    monkeypatch.setattr(memory_state.ctypes, "get_errno", lambda: k.fails_with)
    return k


def test_a_new_lab_gets_a_tmpfs_on_its_state_folder(tmp_path: Path, kernel: Kernel) -> None:
    layout = LabLayout.for_cluster("lab", tmp_path / "root" / "lab")
    assert memory_state.mount_state_in_memory(layout)
    assert layout.state_dir.is_dir()
    target = str(layout.state_dir).encode()
    assert kernel.mounted == [(b"overlaylab-lab", target, b"tmpfs", b"mode=0755")]


def test_an_empty_folder_left_by_a_reboot_is_mounted_again(tmp_path: Path, kernel: Kernel) -> None:
    layout = LabLayout.for_cluster("lab", tmp_path / "lab")
    layout.state_dir.mkdir()
    assert memory_state.mount_state_in_memory(layout)
    assert len(kernel.mounted) == 1


def test_a_lab_that_holds_state_on_disk_keeps_it_there(tmp_path: Path, kernel: Kernel) -> None:
    """A lab made before (or a half-made one) must not have its files hidden under a
    new mount: its engines' data and the record `down` reads are there."""
    layout = LabLayout.for_cluster("lab", tmp_path / "lab")
    layout.state_dir.mkdir()
    (layout.state_dir / "state.json").write_text("{}")
    assert not memory_state.mount_state_in_memory(layout)
    assert kernel.mounted == []


def test_a_folder_already_in_memory_is_not_mounted_twice(
    tmp_path: Path, kernel: Kernel, monkeypatch: pytest.MonkeyPatch
) -> None:
    layout = LabLayout.for_cluster("lab", tmp_path / "lab")
    layout.state_dir.mkdir()
    monkeypatch.setattr(memory_state, "is_mount_point", lambda path: path == layout.state_dir)
    assert not memory_state.mount_state_in_memory(layout)
    assert kernel.mounted == []
    assert memory_state.unmount_state(layout)
    assert kernel.unmounted == [str(layout.state_dir).encode()]


def test_a_refused_mount_says_where_and_why(tmp_path: Path, kernel: Kernel) -> None:
    kernel.fails_with = errno.EPERM
    layout = LabLayout.for_cluster("lab", tmp_path / "lab")
    with pytest.raises(OSError, match=r"cannot mount a tmpfs on .*/lab: Operation not permitted"):
        memory_state.mount_state_in_memory(layout)


def test_nothing_is_unmounted_where_nothing_was_mounted(tmp_path: Path, kernel: Kernel) -> None:
    assert not memory_state.unmount_state(LabLayout.for_cluster("lab", tmp_path / "lab"))
    assert kernel.unmounted == []


def test_a_mount_point_is_read_from_the_mount_table() -> None:
    assert memory_state.is_mount_point(Path("/"))
    assert not memory_state.is_mount_point(Path("/no/such/folder/here"))
