"""The Vagrant substrate, for real: the offline node image, the lab's own docker engine in
a namespace, two machines brought up by python-vagrant with Vagrant's docker provider,
reached by fabric over the host link, each able to run its own dockerd, one pinging the
other on the lab network; then destroyed, and the host is as it was.

The node image is built once (60-100 s) and cached under /var/cache/overlaylab by the
hash of its recipe, so a second run imports the cached tarball. Timings and memory are
printed (`pytest -s`) for the notes.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
import yaml
from hostsnap import HostSnapshot, wait_until_clean
from lab_cli import ROOT

from overlaylab import cgroups
from overlaylab.layout import LabLayout
from overlaylab.providers.vagrant import host_apt, image, outer, recipe, rootfs
from overlaylab.providers.vagrant.machines import VagrantError, VagrantMachines
from overlaylab.spec import load_spec_file
from overlaylab.spec.models import VagrantProviderSpec
from overlaylab.vagrant_machines import machines_json

# A name and subnet no other test lab uses (tests/testdata/labs: sm .95, fn .96, fl .97,
# zk .98; the default lab .99; test_new_layout's t3 .94).
CLUSTER = "vgs"
SUBNET = "192.168.93.0/24"
MACHINES = {"a": "192.168.93.11", "b": "192.168.93.12"}
HOST_PACKAGES = ("vagrant", "debootstrap")


def spec_file(folder: Path) -> Path:
    """A vagrant/docker spec whose engine nodes are the two machines."""
    data = {
        "apiVersion": "overlaylab/v1",
        "kind": "Cluster",
        "name": CLUSTER,
        "lab": {"subnet": SUBNET},
        "provider": {"type": "vagrant", "vm_provider": "docker"},
        "kv": {"backend": "etcd", "node": "kv"},
        "nodes": [
            {"name": "kv", "roles": ["kv"], "address": "192.168.93.10"},
            *({"name": n, "address": a} for n, a in MACHINES.items()),
        ],
    }
    path = folder / f"{CLUSTER}.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def host_tools_or_skip() -> None:
    try:
        host_apt.install_host_packages(HOST_PACKAGES)
    except recipe.ImageBuildError as exc:
        pytest.skip(f"the Vagrant substrate needs {', '.join(HOST_PACKAGES)}: {exc}")
    cached = image.default_recipe().tarball().is_file()
    if not cached and rootfs.missing_build_tools():
        pytest.skip(f"cannot build the node image: {rootfs.missing_build_tools()}")


def machine_memory_mib(engine: outer.OuterEngine) -> dict[str, float]:
    """Memory charged to each machine's cgroup (its processes, page cache included)."""
    usage = {}
    with engine.client() as client:
        for container in client.containers.list():
            usage[container.name] = cgroups.memory_mib(container.attrs["State"]["Pid"])
    return usage


def test_two_vagrant_machines_on_the_lab_network(tmp_path: Path) -> None:
    host_tools_or_skip()
    loaded = load_spec_file(spec_file(tmp_path))
    machines_file = tmp_path / "machines.json"
    machines_file.write_text(machines_json(loaded))
    layout = LabLayout.for_cluster(CLUSTER)
    engine = outer.OuterEngine.for_spec(loaded.spec, layout)
    vagrant = VagrantMachines(
        root=ROOT,  # the top-level Vagrantfile, reading OVERLAYLAB_MACHINES
        state_dir=layout.state_dir / "vagrant",
        docker_host=engine.docker_host,
        machines_file=machines_file,
    )
    timings: dict[str, float] = {}
    memory: dict[str, float] = {}
    before = HostSnapshot.take()
    try:
        started = time.monotonic()
        engine.start()
        timings["engine start"] = time.monotonic() - started
        provider = loaded.spec.provider
        assert isinstance(provider, VagrantProviderSpec)
        with engine.client() as client:
            built = image.ensure_image(client, provider.docker_image)
        timings["image build" if built.built else "image (cached)"] = built.build_seconds
        timings["image import"] = built.import_seconds

        timings["vagrant up (2)"] = vagrant.up(MACHINES)
        statuses = {s.name: s for s in vagrant.status()}
        for name in MACHINES:
            assert statuses[name].provider == "docker" and statuses[name].state == "running"
        assert statuses["kv"].state == "not_created"

        targets = vagrant.ssh_targets(MACHINES)
        for name, address in MACHINES.items():
            target = targets[name]
            assert (target.host, target.port, target.user) == (address, 22, "vagrant")
            assert all(Path(key).is_file() for key in target.key_files)
            with target.connection() as conn:
                assert conn.run("hostname", hide=True, in_stream=False).stdout.strip() == name
                shown = conn.run("ip -4 -o addr show eth1", hide=True, in_stream=False)
                assert address in shown.stdout
                # dockerd is the lab's to start (as on a host without systemd).
                started = time.monotonic()
                conn.run("sudo service docker start", hide=True, in_stream=False)
                version = ""
                while time.monotonic() - started < 30 and not version:
                    answer = conn.run(
                        "sudo docker version --format '{{.Server.Version}}'",
                        hide=True,
                        warn=True,
                        in_stream=False,  # pytest's captured stdin cannot be read
                    )
                    version = answer.stdout.strip() if answer.ok else ""
                    time.sleep(0 if version else 0.3)
                assert version.startswith("20.10"), answer.stderr
                timings[f"dockerd ready on {name}"] = time.monotonic() - started

        with targets["a"].connection() as conn:
            ping = conn.run(
                f"ping -c 2 -W 2 {MACHINES['b']}", hide=True, warn=True, in_stream=False
            )
        assert ping.ok, ping.stdout + ping.stderr
        memory = machine_memory_mib(engine)
        assert set(memory) == {f"ol-{CLUSTER}.{n}" for n in MACHINES}
        with engine.client() as client:  # SSH goes to the lab address: nothing published
            assert [c.ports for c in client.containers.list() if any(c.ports.values())] == []
    finally:
        try:
            timings["vagrant destroy (2)"] = vagrant.destroy(MACHINES)
        finally:
            started = time.monotonic()
            engine.remove()
            timings["engine remove"] = time.monotonic() - started
    print("\nvagrant substrate:", {k: round(v, 1) for k, v in timings.items()})
    print("memory per machine (MiB, inner dockerd running):", memory)
    assert wait_until_clean(before) == []
    assert not layout.state_dir.exists()
    assert image.default_recipe().tarball().is_file(), "the image cache must survive down"


@pytest.mark.skipif(shutil.which("vagrant") is None, reason="vagrant is not installed")
def test_up_with_the_engine_down_names_the_engine(tmp_path: Path) -> None:
    """With no engine answering, Vagrant must not silently pick another provider."""
    loaded = load_spec_file(spec_file(tmp_path))
    machines_file = tmp_path / "machines.json"
    machines_file.write_text(machines_json(loaded))
    layout = LabLayout.for_cluster(CLUSTER, tmp_path / "state")
    vagrant = VagrantMachines(
        ROOT, layout.state_dir / "vagrant", f"unix://{tmp_path}/none.sock", machines_file
    )
    with pytest.raises(VagrantError) as failure:
        vagrant.up(["a"])
    assert "none.sock" in str(failure.value)
    assert "isn't usable" in str(failure.value)  # Vagrant's own words for the docker provider
    # No machine under any provider: Vagrant keeps a machine's id under its provider's name.
    machine_dir = vagrant.dotfile_path / "machines" / "a"
    assert not machine_dir.exists() or not list(machine_dir.glob("*/id"))
