"""local_preflight on a faked machine: every lookup it makes is monkeypatched."""

from __future__ import annotations

import ipaddress
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from lab_specs import LAB_YML, REPO, SWARM_YML, ZK_YML, lab_variant

from overlaylab.errors import PreflightError
from overlaylab.providers import tool_gaps as preflight
from overlaylab.providers.local import preflight as local
from overlaylab.providers.local.preflight import BASE_TOOLS, local_preflight
from overlaylab.spec import load_spec

HOST = ipaddress.IPv4Address("192.168.99.1")


@dataclass
class Machine:
    """What the fake machine has; tests change fields before calling preflight."""

    tmp: Path
    missing: set[str] = field(default_factory=set)
    euid: int = 0
    dockerd: tuple[int, int] | None = (20, 10)
    # libkv stores compiled into the dockerd (Debian's: no consul).
    stores: set[str] = field(default_factory=lambda: {"etcd", "zk"})
    modules_missing: set[str] = field(default_factory=set)
    routes: str = "default via 10.0.0.1 dev eth0\n10.0.0.0/24 dev eth0 scope link\n"
    calls: list[list[str]] = field(default_factory=list)

    @property
    def busybox(self) -> Path:
        return self.tmp / "busybox"

    @property
    def containerd_socket(self) -> Path:
        return self.tmp / "containerd.sock"

    @property
    def zk_server(self) -> Path:
        return self.tmp / "zkServer.sh"

    def which(self, binary: str) -> str | None:
        return None if binary in self.missing else f"/usr/bin/{binary}"

    def run(self, argv: Sequence[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        self.calls.append(list(argv))
        if list(argv) == ["ip", "-4", "route", "show"]:
            return subprocess.CompletedProcess(list(argv), 0, self.routes, "")
        raise AssertionError(f"unexpected command in preflight: {argv}")


@pytest.fixture
def machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Machine:
    m = Machine(tmp_path)
    m.busybox.write_bytes(b"\x7fELF")
    m.zk_server.write_text("#!/bin/sh\n")
    # The local provider's preflight (local) puts together the shared gap finders
    # (preflight): each name is replaced wherever it is looked up.
    monkeypatch.setattr(preflight, "which", m.which)
    monkeypatch.setattr(local, "which", m.which)
    monkeypatch.setattr(local.os, "geteuid", lambda: m.euid)
    monkeypatch.setattr(preflight, "dockerd_version", lambda binary=None: m.dockerd)
    monkeypatch.setattr(preflight, "binary_has_store", lambda binary, scheme: scheme in m.stores)
    monkeypatch.setattr(preflight, "BUSYBOX", m.busybox)
    monkeypatch.setattr(local, "SYSTEM_CONTAINERD_SOCKET", m.containerd_socket)
    monkeypatch.setattr(local, "ZOOKEEPER_SERVER", m.zk_server)
    monkeypatch.setattr(local, "kernel_feature", lambda mod: mod not in m.modules_missing)
    monkeypatch.setattr(preflight.subprocess, "run", m.run)
    return m


def whats(gaps: list[tuple[str, str]]) -> str:
    return "\n".join(what for what, _ in gaps)


def fix_for(gaps: list[tuple[str, str]], needle: str) -> str:
    found = [fix for what, fix in gaps if needle in what]
    assert len(found) == 1, (needle, gaps)
    return found[0]


def test_a_complete_machine_has_no_gaps(machine: Machine) -> None:
    assert local_preflight(load_spec(LAB_YML), HOST) == []
    assert local_preflight(load_spec(ZK_YML), None) == []


def test_every_missing_binary_is_reported_with_its_apt_package(machine: Machine) -> None:
    machine.missing = {b for b, _ in BASE_TOOLS} | {"docker-compose", "etcd"}
    gaps = local_preflight(load_spec(LAB_YML), None)
    expected = {**dict(BASE_TOOLS), "docker-compose": "docker-compose", "etcd": "etcd-server"}
    assert "ip" in expected and "dockerd" in expected
    for binary, package in expected.items():
        assert fix_for(gaps, f"`{binary}`") == f"apt-get install -y {package}"
    assert len(gaps) == len(expected)


def test_all_gaps_are_reported_at_once(machine: Machine) -> None:
    machine.missing = {"nsenter", "etcd"}
    machine.euid = 1000
    machine.busybox.unlink()
    machine.containerd_socket.touch()
    machine.dockerd = (24, 0)
    machine.modules_missing = {"vxlan"}
    machine.routes += "192.168.0.0/16 dev wlan0 proto kernel scope link\n"
    gaps = local_preflight(load_spec(LAB_YML), HOST)
    text = whats(gaps)
    for needle in (
        "not running as root",
        "`nsenter`",
        "busybox",
        "`etcd`",
        "24.0",
        "containerd",
        "`vxlan`",
        "192.168.0.0/16",
    ):
        assert needle in text, needle
    assert len(gaps) == 8
    assert fix_for(gaps, "busybox") == "apt-get install -y busybox-static"
    assert fix_for(gaps, "`vxlan`") == "modprobe vxlan"
    assert "systemctl stop containerd" in fix_for(gaps, "system containerd")
    # The exception shows every fix too.
    message = str(PreflightError(gaps))
    for _, fix in gaps:
        assert fix in message


def test_stacks_need_compose_only_when_the_spec_has_stacks(machine: Machine) -> None:
    machine.missing = {"docker-compose"}
    assert "`docker-compose`" in whats(local_preflight(load_spec(LAB_YML), None))
    assert local_preflight(load_spec(ZK_YML), None) == []


def test_consul_without_binary_suggests_etcd(machine: Machine) -> None:
    machine.missing = {"consul", "etcd"}
    machine.stores.add("consul")
    gaps = local_preflight(lab_variant(kv={"backend": "consul"}), None)
    assert len(gaps) == 1  # etcd itself is not demanded by a consul spec
    fix = fix_for(gaps, "`consul`")
    assert "kv.backend: etcd" in fix
    assert "etcd-server" in fix


def test_zookeeper_without_its_server_script(machine: Machine) -> None:
    machine.zk_server.unlink()
    gaps = local_preflight(load_spec(ZK_YML), None)
    assert fix_for(gaps, "zookeeper") == "apt-get install -y zookeeper"
    assert len(gaps) == 1


@pytest.mark.parametrize(
    ("version", "spec_path", "reported"),
    [
        ((24, 0), LAB_YML, True),
        ((23, 0), LAB_YML, True),
        ((20, 10), LAB_YML, False),
        ((24, 0), SWARM_YML, False),
        (None, LAB_YML, False),
    ],
)
def test_new_dockerd_refuses_cluster_store(
    machine: Machine, version: tuple[int, int] | None, spec_path: Path, reported: bool
) -> None:
    machine.dockerd = version
    gaps = local_preflight(load_spec(spec_path), None)
    assert ("refuses cluster-store" in whats(gaps)) is reported
    if reported:
        assert version is not None
        assert f"dockerd {version[0]}.{version[1]}" in whats(gaps)
        assert "docker.io=20.10" in fix_for(gaps, "refuses cluster-store")


def test_non_root_is_reported(machine: Machine) -> None:
    machine.euid = 1000
    gaps = local_preflight(load_spec(LAB_YML), None)
    assert len(gaps) == 1
    assert "sudo" in fix_for(gaps, "not running as root")


def test_route_clash_detection(machine: Machine) -> None:
    machine.routes = (
        "default via 192.168.99.254 dev eth0\n"
        "10.0.0.0/8 dev eth0 proto kernel scope link src 10.1.2.3\n"
        "192.168.0.0/16 dev wlan0 proto kernel scope link src 192.168.1.5\n"
        "192.168.99.128/25 dev br-x proto kernel scope link\n"
        "192.168.99.0/24 dev ol-lab proto kernel scope link src 192.168.99.1\n"
        "bogus line\n"
    )
    gaps = local_preflight(load_spec(LAB_YML), HOST)
    assert machine.calls == [["ip", "-4", "route", "show"]]
    clashes = [what for what, _ in gaps if "overlaps" in what]
    assert len(clashes) == 2
    assert "192.168.0.0/16 dev wlan0" in clashes[0]
    assert "192.168.99.128/25 dev br-x" in clashes[1]
    assert all("lab.subnet" in fix for what, fix in gaps if "overlaps" in what)


def test_routes_are_not_checked_without_a_host_link(machine: Machine) -> None:
    machine.routes = "192.168.99.0/24 dev eth7 scope link\n"
    assert local_preflight(load_spec(LAB_YML), None) == []
    assert machine.calls == []


def test_route_of_another_labs_link_is_a_clash(machine: Machine) -> None:
    machine.routes = "192.168.99.0/24 dev ol-lab2 proto kernel scope link src 192.168.99.1\n"
    gaps = local_preflight(load_spec(LAB_YML), HOST)
    assert "overlaps" in whats(gaps)


def test_dockerd_version_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    outputs = {
        "Docker version 20.10.24+dfsg1, build 297e128\n": (20, 10),
        "Docker version 24.0.7, build 311b9ff\n": (24, 0),
        "garbage\n": None,
    }
    for out, expected in outputs.items():

        def fake_run(argv: Sequence[str], _out: str = out, **_: object) -> object:
            assert list(argv) == ["/usr/sbin/dockerd", "--version"]
            return subprocess.CompletedProcess(list(argv), 0, _out, "")

        monkeypatch.setattr(preflight, "which", lambda b: f"/usr/sbin/{b}")
        monkeypatch.setattr(preflight.subprocess, "run", fake_run)
        assert preflight.dockerd_version() == expected
    monkeypatch.setattr(preflight, "which", lambda b: None)
    fail: Callable[..., object] = lambda *a, **k: pytest.fail("ran a missing dockerd")  # noqa: E731
    monkeypatch.setattr(preflight.subprocess, "run", fail)
    assert preflight.dockerd_version() is None


def test_a_dockerd_without_the_consul_store_is_refused_with_the_way_out(machine: Machine) -> None:
    gaps = local_preflight(lab_variant(kv={"backend": "consul"}), None)
    fix = fix_for(gaps, "built without the consul cluster store")
    assert "kv.backend: etcd or zookeeper" in fix and "engine.dockerd" in fix
    assert "/usr/bin/dockerd" in whats(gaps)
    # etcd and zookeeper stores are in Debian's build: nothing to say about them.
    assert "cluster store" not in whats(local_preflight(load_spec(ZK_YML), None))


def test_engine_dockerd_names_the_binary_checked(machine: Machine, tmp_path: Path) -> None:
    other = tmp_path / "dockerd-20.10.24"
    spec = lab_variant(kv={"backend": "consul"}, engine={"dockerd": str(other)})
    assert "is not an executable here" in whats(local_preflight(spec, None))
    other.write_text("#!/bin/sh\n")
    other.chmod(0o755)
    machine.stores.add("consul")
    assert local_preflight(spec, None) == []


def test_classic_swarm_without_any_swarm_image_says_where_to_get_one(
    machine: Machine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(preflight, "_host_engine_has", lambda image: False)
    classic = load_spec(REPO / "tests/testdata/labs/classic.yml")
    assert "swarm" not in whats(local_preflight(classic, None))  # `swarm` is on PATH
    machine.missing.add("swarm")
    fix = fix_for(local_preflight(classic, None), "classic swarm needs the swarm:1.2.9 image")
    assert "docker save" in fix and "binary on PATH" in fix
    monkeypatch.setattr(preflight, "_host_engine_has", lambda image: image == "swarm:1.2.9")
    assert "swarm" not in whats(local_preflight(classic, None))  # side-loaded from the host


def test_a_dockerd_without_cluster_stores_is_one_problem_not_two(machine: Machine) -> None:
    """Docker 28 has no libkv at all: "built without the etcd store, use etcd" on a lab
    that already uses etcd would be a second, false cause beside the true one."""
    machine.dockerd = (28, 5)
    machine.stores = set()
    gaps = local_preflight(load_spec(LAB_YML), None)
    assert whats(gaps) == "dockerd 28.5 refuses cluster-store (removed in 23.0)"


def test_a_20_10_dockerd_without_the_spec_store_is_still_named(machine: Machine) -> None:
    machine.stores = {"zk"}
    gaps = local_preflight(load_spec(LAB_YML), None)
    assert "built without the etcd cluster store; its engines would die" in whats(gaps)
    assert "consul" not in whats(gaps) and "refuses cluster-store" not in whats(gaps)
    assert fix_for(gaps, "built without").startswith("set kv.backend: zookeeper, or ")


def test_a_user_who_may_not_look_for_the_system_containerd_gets_the_gaps_not_a_traceback(
    tmp_path: Path,
) -> None:
    # /run/containerd is root-only: Path.exists() raises PermissionError for others.
    class Unreadable(type(tmp_path)):  # type: ignore[misc]
        def exists(self, *args: object, **kwargs: object) -> bool:
            raise PermissionError(13, "Permission denied", str(self))

    assert local.system_containerd_running(Unreadable(tmp_path / "containerd.sock")) is False
    (tmp_path / "there.sock").write_text("")
    assert local.system_containerd_running(tmp_path / "there.sock") is True
