"""The vagrant provider's own decisions, without Vagrant: which image flavor a lab gets,
what preflight says (virtualbox and libvirt plainly cannot run here), where the lab's
machines file goes, how `vagrant ssh-config` becomes each node's SSH session, and which
of Vagrant's lines become progress. Nothing here starts an engine or a machine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from lab_specs import REPO, lab_variant, make_ctx

from overlaylab.providers.ssh import SSHNode
from overlaylab.providers.vagrant import image, keys, rootfs
from overlaylab.providers.vagrant import provider as vagrant_provider
from overlaylab.providers.vagrant import recipe as image_recipe
from overlaylab.providers.vagrant.machines import SSHTarget
from overlaylab.providers.vagrant.provider import VagrantProvider
from overlaylab.spec import load_spec

VAGRANT_YML = REPO / "inventory" / "vagrant.yml"
KEY = "ssh-rsa AAAAB3NzaC1yc2EAAAABIwAAAQEA6NF8iallvQVp22WDkT vagrant insecure public key"


@pytest.fixture(autouse=True)
def insecure_key(monkeypatch: pytest.MonkeyPatch) -> None:
    # The recipe holds Vagrant's public key; the unit tests must not need vagrant installed.
    monkeypatch.setattr(keys, "vagrant_public_key", lambda *a: KEY)


def provider_for(tmp_path: Path, **sections: object) -> VagrantProvider:
    spec = lab_variant(VAGRANT_YML, **sections) if sections else load_spec(VAGRANT_YML)
    provider = make_ctx(spec, tmp_path / "state", VAGRANT_YML).provider
    assert isinstance(provider, VagrantProvider)
    return provider


# --- the image a lab gets ----------------------------------------------------------------
def test_each_kv_backend_gets_an_image_that_can_run_its_server() -> None:
    etcd, zookeeper = image.recipe_for("etcd"), image.recipe_for("zookeeper")
    assert "etcd-server" in etcd.packages and "zookeeper" not in etcd.packages
    assert "zookeeper" in zookeeper.packages and "etcd-server" not in zookeeper.packages
    assert set(image_recipe.NODE_PACKAGES) <= set(etcd.packages) & set(zookeeper.packages)
    assert len({etcd.digest, zookeeper.digest, image.recipe_for(None).digest}) == 3
    assert image.default_recipe() == etcd  # the substrate test and the etcd labs share it


def test_a_tarball_names_its_flavor(tmp_path: Path) -> None:
    etcd, bare = image.recipe_for("etcd"), image.recipe_for(None)
    assert etcd.tarball(tmp_path).name == f"rootfs-bookworm-etcd-{etcd.digest[:16]}.tar"
    assert bare.tarball(tmp_path).name == f"rootfs-bookworm-{bare.digest[:16]}.tar"
    assert rootfs.tarball_flavor(etcd.tarball(tmp_path)) == "etcd"
    assert rootfs.tarball_flavor(bare.tarball(tmp_path)) == ""


def test_a_build_replaces_only_the_cached_tarballs_of_its_own_flavor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recipe = image.recipe_for("etcd")
    older_etcd = tmp_path / "rootfs-bookworm-etcd-0123456789abcdef.tar"
    zookeeper = image.recipe_for("zookeeper").tarball(tmp_path)
    for path in (older_etcd, zookeeper):
        path.write_bytes(b"tar")

    def fake_run(argv: list[str], *rest: object) -> None:
        if argv[0] == "debootstrap":  # a root filesystem with the init's folder
            (Path(argv[-2]) / "usr/local/sbin").mkdir(parents=True)
        if argv[0] == "tar":  # the packing step: its output is the tarball being made
            Path(argv[argv.index("-cf") + 1]).write_bytes(b"new")

    monkeypatch.setattr(rootfs, "_run_streaming", fake_run)
    monkeypatch.setattr(rootfs, "_run_checked", fake_run)
    rootfs._build(recipe, recipe.tarball(tmp_path), "http://mirror", lambda w, m: None)
    assert sorted(p.name for p in tmp_path.glob("*.tar")) == sorted(
        [recipe.tarball(tmp_path).name, zookeeper.name]
    )


# --- preflight ---------------------------------------------------------------------------
@pytest.mark.parametrize("vm", ["virtualbox", "libvirt"])
def test_vm_providers_that_cannot_run_here_say_so_and_point_to_render(
    tmp_path: Path, vm: str
) -> None:
    provider = provider_for(tmp_path, provider={"type": "vagrant", "vm_provider": vm})
    [(what, fix)] = provider.preflight()
    assert f"Vagrant's {vm} provider cannot run on this machine" in what
    assert "invoke render" in fix and f"vagrant up --provider {vm}" in fix
    assert not provider.exists()


def test_preflight_lists_every_gap_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vagrant_provider, "_which", lambda binary: None)
    monkeypatch.setattr(
        rootfs, "missing_build_tools", lambda: [("debootstrap", "apt-get install debootstrap")]
    )
    provider = provider_for(tmp_path, engine={"tls": False}, kv={"backend": "consul"})
    monkeypatch.setattr(
        image_recipe.ImageRecipe, "tarball", lambda self, cache=None: tmp_path / "none"
    )
    # Nothing of this machine: its containerd folder (root's alone), modules and routes.
    monkeypatch.setattr(vagrant_provider, "SYSTEM_CONTAINERD_SOCKET", tmp_path / "no.sock")
    monkeypatch.setattr(vagrant_provider, "kernel_feature", lambda module: True)
    monkeypatch.setattr(vagrant_provider, "route_clashes", lambda spec: [])
    whats = "\n".join(what for what, _ in provider.preflight())
    assert "`vagrant` is not installed" in whats
    assert "`dockerd` is not installed" in whats and "`nsenter` is not installed" in whats
    assert "debootstrap (to build the Vagrant node image once; it is not cached)" in whats
    assert "engine.tls is false" in whats
    assert "kv.backend consul" in whats


def test_a_cached_image_needs_no_build_tools(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider = provider_for(tmp_path)
    cached = tmp_path / "cached.tar"
    cached.write_bytes(b"tar")
    monkeypatch.setattr(image_recipe.ImageRecipe, "tarball", lambda self, cache=None: cached)
    monkeypatch.setattr(rootfs, "missing_build_tools", lambda: [("debootstrap", "install it")])
    assert provider._image_gaps() == []


# --- machines, nodes and their SSH sessions ----------------------------------------------------
def test_the_lab_has_its_own_machines_file(tmp_path: Path) -> None:
    provider = provider_for(tmp_path)
    provider._write_machines_file()
    machines = json.loads(provider.machines_file.read_text())
    assert provider.machines_file == tmp_path / "state" / "vagrant" / "machines.json"
    assert provider.machines.env()["OVERLAYLAB_MACHINES"] == str(provider.machines_file)
    assert provider.machines.env()["DOCKER_HOST"] == f"unix://{provider.engine.socket}"
    assert machines["default_provider"] == "docker"
    assert [(m["name"], m["ip"], m["vm_name"]) for m in machines["machines"]] == [
        ("kv", "192.168.90.10", "ol-vagrant.kv"),
        ("node1", "192.168.90.11", "ol-vagrant.node1"),
        ("node2", "192.168.90.12", "ol-vagrant.node2"),
    ]
    assert provider.machines.root == REPO  # the top-level Vagrantfile


def test_nodes_are_ssh_nodes_on_what_vagrant_ssh_config_said(tmp_path: Path) -> None:
    provider = provider_for(tmp_path)
    provider.vagrant_dir.mkdir(parents=True)
    key = str(tmp_path / "state/vagrant/dotfile/machines/node1/docker/private_key")
    targets = {
        n.name: SSHTarget(n.name, str(n.address), 22, "vagrant", (key,))
        for n in provider.spec.nodes
    }
    provider._save_targets(targets)
    node = provider.node("node1")
    assert isinstance(node, SSHNode)
    connection = node.connection
    assert (connection.host, connection.port, connection.user) == ("192.168.90.11", 22, "vagrant")
    assert connection.connect_kwargs["key_filename"] == [key]
    assert node.sudo  # user vagrant: every command runs under `sudo -n`
    assert str(node.paths.root) == "/var/lib/overlaylab/vagrant/nodes/node1"
    assert node.cgroup_parent is None  # engine: host keeps its own cgroups
    assert node.host_docker is not None
    assert node.docker_env()["DOCKER_HOST"] == "tcp://192.168.90.11:2376"
    assert str(provider.host_address) == "192.168.90.1"  # this machine, on the host link


def test_before_provision_a_node_is_its_address_as_user_vagrant(tmp_path: Path) -> None:
    node = provider_for(tmp_path).node("kv")
    assert (node.connection.host, node.connection.port) == ("192.168.90.10", 22)
    assert node.connection.user == "vagrant"


def test_ssh_config_without_every_machine_is_an_error(tmp_path: Path) -> None:
    provider = provider_for(tmp_path)
    provider.vagrant_dir.mkdir(parents=True)
    with pytest.raises(vagrant_provider.VagrantError, match="kv, node2"):
        provider._save_targets({"node1": SSHTarget("node1", "192.168.90.11", 22, "vagrant", ())})


def test_only_a_few_vagrant_lines_become_progress() -> None:
    said: list[tuple[str, str]] = []
    report = vagrant_provider._vagrant_lines(lambda where, msg: said.append((where, msg)))
    for line in (
        "Creating the container...",
        "  Volume: /var/lib/docker",
        "Machine booted and ready!",
    ):
        report("node1", line)
    assert said == [("node1", "Creating the container"), ("node1", "Machine booted and ready!")]
