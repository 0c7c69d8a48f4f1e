"""The vagrant provider end to end with Vagrant's docker provider: `invoke up -i
inventory/vagrant.yml` makes three machines from the offline node image, the pipeline
runs over SSH as user vagrant, verify is green, a second up changes nothing, and down
leaves the host as it found it (the image cache stays). The node contract holds for
Vagrant machines too.

Timings (up, verify, down) and memory (the host's peak over the whole run, each
machine's peak) are printed for the notes (`pytest -s`). A cold image build adds
60-100 s to the first up; the cache under /var/cache/overlaylab makes later runs import.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import pytest
from hostsnap import HostSnapshot, wait_until_clean
from lab_cli import ROOT, failures, invoke, verify_json
from vagrant_tools import UP_TIMEOUT, host_tools_or_skip

from overlaylab import lab
from overlaylab.context import LabContext
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
            pid = container.attrs["State"]["Pid"]
            lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
            path = next(line.split(":", 2)[2] for line in lines if ":memory:" in line)
            peak = Path("/sys/fs/cgroup/memory", path.lstrip("/"), "memory.max_usage_in_bytes")
            peaks[container.name] = round(int(peak.read_text()) / 2**20, 1)
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
        ctx = lab.open_lab(SPEC)
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


def test_a_second_up_changes_nothing(vagrant_lab: LabContext, measures: Measures) -> None:
    started = time.monotonic()
    again = invoke("up", "-i", str(SPEC))
    measures.seconds["second up"] = time.monotonic() - started
    assert "is up to date: nothing changed" in again.stderr


def test_vagrant_machines_keep_the_node_contract(vagrant_lab: LabContext) -> None:
    node, kv = vagrant_lab.node("node1"), vagrant_lab.node("kv")
    assert node.run(["hostname"]).stdout.strip() == "node1"  # a session on that machine
    assert node.run(["id", "-un"]).stdout.strip() == "root"  # as vagrant, through sudo -n
    path = node.paths.root / "contract" / "key.pem"
    node.put_file(path, b"\x00binary\xffkey\n", 0o600)
    assert node.read_file(path) == b"\x00binary\xffkey\n"
    assert node.run(["stat", "-c", "%a", str(path)]).stdout.strip() == "600"
    assert node.read_file(path.with_suffix(".missing")) is None
    node.start_service("contract", ["sh", "-c", "echo started-$(hostname); exec sleep 60"])
    try:
        assert wait_for(lambda: node.service_alive("contract", "sleep"))
        assert "started-node1" in wait_for(lambda: node.service_log("contract") or "")
    finally:
        node.stop_service("contract", "sleep")
    assert not node.service_alive("contract")
    assert node.engine_ping()
    with node.engine() as client:
        assert client.info()["ClusterAdvertise"] == f"{node.address}:2376"
    ok, why = node.tcp_connect(str(kv.address), 2379)
    assert ok, why
    closed, why = node.tcp_connect(str(kv.address), 2)
    assert not closed and why
    status, body = node.http_get(str(kv.address), 2379, "/version")
    assert status == 200 and "etcdserver" in body
    assert "API listen on" in (node.service_log("dockerd") or "")


def test_the_lab_engine_runs_from_the_lab_folder_inside_the_machine(
    vagrant_lab: LabContext,
) -> None:
    """Not the image's /etc/init.d/docker: the lab's own dockerd, its containers grouped
    under the lab's cgroup parent inside the machine's cgroup."""
    node = vagrant_lab.node("node2")
    assert node.read_file(node.paths.daemon_config) is not None
    with node.engine() as client:
        info = client.info()
        assert info["DockerRootDir"] == str(node.paths.root / "data")
        [mongo] = client.containers.list(filters={"name": "mongo"})
        pid = mongo.attrs["State"]["Pid"]
    groups = node.run(["cat", f"/proc/{pid}/cgroup"]).stdout
    assert f"/{node.cgroup_parent}/" in groups
    rules = node.run(["iptables", "-t", "nat", "-S", "DOCKER"], check=False)
    assert rules.returncode == 0, rules.stderr  # dockerd's NAT rules, in the machine's netns


def wait_for(read: Callable[[], T], timeout: float = 5.0) -> T:
    return wait_until(read, timeout, interval=0.05)
