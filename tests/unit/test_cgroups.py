"""cgroup v1 and v2: a process's cgroup from /proc/PID/cgroup, and the lab's own
cgroups found (and removed) in either layout, on fake hierarchies in tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest

from overlaylab import cgroups
from overlaylab.layout import LabLayout
from overlaylab.providers.local import teardown
from overlaylab.providers.vagrant import outer

V1 = """12:pids:/docker/abc
11:memory:/docker/abc
4:cpu,cpuacct:/docker/abc
1:name=systemd:/docker/abc
0::/
"""
V2 = "0::/system.slice/docker-abc.scope\n"


def test_v1_names_the_memory_hierarchy() -> None:
    found = cgroups.process_cgroup(V1)
    assert found == cgroups.ProcessCgroup(1, "/docker/abc")
    assert found.folder("memory", Path("/r")) == Path("/r/memory/docker/abc")


def test_v1_finds_a_controller_in_a_joint_hierarchy() -> None:
    assert cgroups.process_cgroup(V1, "cpuacct") == cgroups.ProcessCgroup(1, "/docker/abc")


def test_v2_is_the_unified_line() -> None:
    found = cgroups.process_cgroup(V2)
    assert found == cgroups.ProcessCgroup(2, "/system.slice/docker-abc.scope")
    assert found.folder("memory", Path("/r")) == Path("/r/system.slice/docker-abc.scope")


def test_no_such_controller_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="no memory cgroup"):
        cgroups.process_cgroup("3:cpu:/x\n")


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.mark.parametrize("version", [1, 2])
def test_memory_of_a_process_in_either_layout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, version: int
) -> None:
    proc = tmp_path / "proc-cgroup"
    proc.write_text(V1 if version == 1 else V2)
    real_path = Path
    monkeypatch.setattr(
        cgroups,
        "Path",
        lambda p: proc if str(p) == "/proc/7/cgroup" else real_path(p),
    )
    root = tmp_path / "cg"
    if version == 1:
        _write(root / "memory/docker/abc/memory.usage_in_bytes", str(3 * 2**20))
        _write(root / "memory/docker/abc/memory.max_usage_in_bytes", str(5 * 2**20))
    else:
        _write(root / "cgroup.controllers", "memory pids\n")
        _write(root / "system.slice/docker-abc.scope/memory.current", str(3 * 2**20))
        _write(root / "system.slice/docker-abc.scope/memory.peak", str(5 * 2**20))
    assert cgroups.memory_mib(7, root=root) == 3.0
    assert cgroups.memory_mib(7, peak=True, root=root) == 5.0


def test_lab_cgroups_on_v1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(teardown, "CGROUP_ROOT", tmp_path)
    layout = LabLayout.for_cluster("cg")
    mine = [tmp_path / c / "overlaylab-cg.node1" for c in ("memory", "pids")]
    for group in mine:
        group.mkdir(parents=True)
    (tmp_path / "memory" / "overlaylab-cg2.node1").mkdir()  # another lab's
    assert sorted(teardown.lab_cgroups(layout)) == sorted(mine)


def test_lab_cgroups_on_v2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(teardown, "CGROUP_ROOT", tmp_path)
    (tmp_path / "cgroup.controllers").write_text("memory pids\n")
    layout = LabLayout.for_cluster("cg")
    mine = tmp_path / "overlaylab-cg.node1"
    (mine / "c0ffee").mkdir(parents=True)
    (tmp_path / "overlaylab-cg2.node1").mkdir()
    (tmp_path / "system.slice" / "docker.service").mkdir(parents=True)
    assert teardown.lab_cgroups(layout) == [mine]


def test_nested_lab_cgroups_on_v2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Below a cgroup namespace's root on a unified hierarchy (a CI job's container)."""
    monkeypatch.setattr(teardown, "CGROUP_ROOT", tmp_path)
    (tmp_path / "cgroup.controllers").write_text("memory pids\n")
    layout = LabLayout.for_cluster("vgs")
    shallow = tmp_path / "job-7.scope" / "overlaylab-vgs._vagrant"
    deep = tmp_path / "system.slice" / "job-42.scope" / "overlaylab-vgs._vagrant"
    for nested in (shallow, deep):
        (nested / "c0ffee").mkdir(parents=True)
    (tmp_path / "overlaylab-vgs._vagrant").mkdir()  # top level: teardown's
    assert sorted(outer.nested_lab_cgroups(layout)) == sorted([shallow, deep])
    assert outer.remove_nested_cgroups(layout) == 2
    assert not shallow.exists() and not deep.exists()
