"""The vagrant provider end to end with Vagrant's docker provider: `invoke up -i
inventory/vagrant.yml` makes three machines from the offline node image, the pipeline
runs over SSH as user vagrant, verify is green, a second up changes nothing, and down
leaves the host as it found it (the image cache stays). The node contract holds for
Vagrant machines too. The machines run the lab's engine as their own Docker service
(`engine: host`), and `down` restores it.

Timings (up, verify, down) and memory (the host's peak over the whole run, each
machine's peak) are printed for the notes (`pytest -s`). A cold image build adds
60-100 s to the first up; the cache under /var/cache/overlaylab makes later runs import.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TypeVar

import pytest
from hostsnap import HostSnapshot, wait_until_clean
from lab_cli import ROOT, evidence, failures, forwarding_per_engine, invoke, verify_json
from node_contract import (  # noqa: F401 - collected here, with this module's fixtures
    test_a_program_sized_file_round_trips,
    test_a_service_starts_logs_and_stops,
    test_files_round_trip_with_their_mode,
    test_run_sees_the_node_network_and_reports_failures,
    test_the_engine_answers_through_the_handle,
    test_the_lab_network_seen_from_the_node,
)
from vagrant_tools import UP_TIMEOUT, host_tools_or_skip

from overlaylab import cgroups
from overlaylab.context import LabContext, open_lab
from overlaylab.providers.base import Node
from overlaylab.providers.ssh.node import SSHNode
from overlaylab.providers.vagrant import image
from overlaylab.providers.vagrant.provider import VagrantProvider
from overlaylab.waiting import wait_until

T = TypeVar("T")

SPEC = ROOT / "inventory/vagrant.yml"


class MemoryPeak:
    """The host's peak of used memory (MemTotal - MemAvailable) above where it started."""

    def __init__(self) -> None:
        self.baseline = self.used_mib()
        self.peak = self.baseline
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    @staticmethod
    def used_mib() -> float:
        fields = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
        total, available = (int(fields[k].split()[0]) for k in ("MemTotal", "MemAvailable"))
        return (total - available) / 1024

    def _sample(self) -> None:
        while not self._stop.wait(0.25):
            self.peak = max(self.peak, self.used_mib())

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return round(self.peak - self.baseline, 1)


@dataclass
class Measures:
    seconds: dict[str, float] = field(default_factory=dict)
    machine_peak_mib: dict[str, float] = field(default_factory=dict)


def machine_peaks_mib(provider: VagrantProvider) -> dict[str, float]:
    """Each machine's peak memory (its cgroup's max_usage_in_bytes, page cache included)."""
    peaks = {}
    with provider.engine.client() as client:
        for container in client.containers.list():
            peaks[container.name] = cgroups.memory_mib(container.attrs["State"]["Pid"], peak=True)
    return peaks


@pytest.fixture(scope="module")
def measures() -> Measures:
    return Measures()


@pytest.fixture(scope="module")
def vagrant_lab(measures: Measures) -> Iterator[LabContext]:
    host_tools_or_skip()
    before = HostSnapshot.take()
    memory = MemoryPeak()
    try:
        started = time.monotonic()
        up = invoke("up", "-i", str(SPEC), timeout=UP_TIMEOUT)
        measures.seconds["up"] = time.monotonic() - started
        assert "lab 'vagrant' is up" in up.stderr
        ctx = open_lab(SPEC)
        yield ctx
        assert isinstance(ctx.provider, VagrantProvider)
        measures.machine_peak_mib = machine_peaks_mib(ctx.provider)
    finally:
        started = time.monotonic()
        down = invoke("down", "-i", str(SPEC), check=False)
        measures.seconds["down"] = time.monotonic() - started
        host_peak = memory.stop()
        print(f"\nvagrant provider: { ({k: round(v, 1) for k, v in measures.seconds.items()}) } s")
        print(f"host memory peak over the run: +{host_peak} MiB")
        print(f"machine memory peaks (MiB): {measures.machine_peak_mib}")
        assert down.returncode == 0, down.stderr
    assert wait_until_clean(before) == []
    assert image.default_recipe().tarball().is_file(), "the image cache must survive down"


def test_up_on_vagrant_machines_verifies_green(vagrant_lab: LabContext, measures: Measures) -> None:
    started = time.monotonic()
    report = verify_json(str(SPEC))
    measures.seconds["verify"] = time.monotonic() - started
    assert report["ok"], failures(report)
    ran = {c["id"] for c in report["checks"] if c["status"] == "pass"}
    assert {"engines.advertise", "kv.registered", "connectivity.tcp", "names.resolve"} <= ran


def test_every_engine_believes_forwarding_is_on_right_after_up(vagrant_lab: LabContext) -> None:
    seen = forwarding_per_engine(vagrant_lab)
    assert seen and set(seen.values()) == {("1", True)}


def test_logs_collects_every_machines_evidence(vagrant_lab: LabContext, tmp_path: Path) -> None:
    archive = tmp_path / "vagrant-evidence.tar.gz"
    invoke("logs", "-i", str(SPEC), "--no-verify", "-o", str(archive))
    manifest, files = evidence(archive)
    assert manifest["not_collected"] == []
    for node in (n.name for n in vagrant_lab.spec.engine_nodes):
        assert json.loads(files[f"{node}/engine/info.json"])["Name"] == node
        assert files[f"{node}/net/iptables-save.txt"] and files[f"{node}/engine/dockerd.log"]
    assert b"PRIVATE KEY" not in b"".join(files.values())


def test_a_second_up_changes_nothing(vagrant_lab: LabContext, measures: Measures) -> None:
    started = time.monotonic()
    again = invoke("up", "-i", str(SPEC))
    measures.seconds["second up"] = time.monotonic() - started
    assert "is up to date: nothing changed" in again.stderr


@pytest.fixture
def node(vagrant_lab: LabContext) -> Node:
    """The node contract's engine node (node_contract.py), on a Vagrant machine."""
    return vagrant_lab.node("node1")


@pytest.fixture
def kv_node(vagrant_lab: LabContext) -> Node:
    return vagrant_lab.node("kv")


def test_commands_run_on_the_machine_as_root_through_sudo(vagrant_lab: LabContext) -> None:
    node = vagrant_lab.node("node1")
    assert node.run(["hostname"]).stdout.strip() == "node1"  # a session on that machine
    assert node.run(["id", "-un"]).stdout.strip() == "root"  # as vagrant, through sudo -n
    with node.engine() as client:
        assert client.info()["ClusterAdvertise"] == f"{node.address}:2376"


def test_the_engine_is_the_machines_own_docker_service(vagrant_lab: LabContext) -> None:
    """`engine: host`: the image's /etc/init.d/docker runs dockerd with the lab's
    /etc/docker/daemon.json, as docker-machine set engines up; no drop-in without systemd."""
    node = vagrant_lab.node("node2")
    config = json.loads(node.read_file(PurePosixPath("/etc/docker/daemon.json")) or b"{}")
    assert config["cluster-store"] == "etcd://192.168.90.10:2379"
    assert "data-root" not in config  # the host's own /var/lib/docker
    assert node.run(["service", "docker", "status"], check=False).returncode == 0
    assert (
        node.read_file(PurePosixPath("/etc/systemd/system/docker.service.d/overlaylab.conf"))
        is None
    )
    with node.engine() as client:
        assert client.info()["DockerRootDir"] == "/var/lib/docker"
        [mongo] = client.containers.list(filters={"name": "mongo"})
        pid = mongo.attrs["State"]["Pid"]
    groups = node.run(["cat", f"/proc/{pid}/cgroup"]).stdout
    assert "/docker/" in groups  # the engine's own cgroup parent, not the lab's
    assert vagrant_lab.layout.cgroup_parent("node2") not in groups
    assert "API listen on" in (node.service_log("dockerd") or "")
    assert node.service_log_location("dockerd") == "node2:/var/log/docker.log"


def test_down_restores_the_machines_docker_as_it_was(vagrant_lab: LabContext) -> None:
    """What `down` does first on every host with `engine: host`, run here on one machine
    so that the machine can still be looked at afterwards: the image had no daemon.json
    and no running dockerd, so both must be gone again, with the lab's containers,
    networks and images. Last in this module: node1's engine is stopped afterwards."""
    node = vagrant_lab.node("node1")
    assert isinstance(node, SSHNode) and node.host_docker is not None
    with node.engine() as client:
        assert client.containers.list(all=True)  # the web service and the probe
        assert client.images.list(name="overlaylab/probe")
    assert node.host_docker.restore(node) == []
    assert node.read_file(PurePosixPath("/etc/docker/daemon.json")) is None
    assert node.run(["test", "-e", "/etc/docker/overlaylab"], check=False).returncode == 1
    assert node.run(["service", "docker", "status"], check=False).returncode != 0
    assert node.read_file(node.paths.root / "host-docker" / "saved") is None
    # Started by hand with no configuration, the engine holds nothing of the lab.
    node.run(["service", "docker", "start"])
    try:
        listed = wait_for(lambda: node.run(["docker", "ps", "-aq"], check=False), timeout=20)
        assert listed.stdout.strip() == ""
        images = node.run(["docker", "image", "ls", "-q"]).stdout.split()
        networks = node.run(["docker", "network", "ls", "--format", "{{.Name}}"]).stdout.split()
        assert images == [] and sorted(networks) == ["bridge", "host", "none"]
    finally:
        node.run(["service", "docker", "stop"], check=False)


def wait_for(read: Callable[[], T], timeout: float = 5.0) -> T:
    return wait_until(read, timeout, interval=0.05)
