"""The Vagrant substrate's pure parts: the image recipe and its cache, apt sources, the
command lines it runs, `vagrant ssh-config` parsing, the environment Vagrant gets, and
the outer engine's names, configuration and addresses. Nothing here runs debootstrap,
dockerd or vagrant."""

from __future__ import annotations

import ipaddress
import json
import re
import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from lab_specs import LAB_YML

from overlaylab.layout import LabLayout
from overlaylab.providers.local import teardown
from overlaylab.providers.vagrant import host_apt, image, outer, recipe, rootfs
from overlaylab.providers.vagrant import keys as vagrant_keys
from overlaylab.providers.vagrant import machines as machines_module
from overlaylab.providers.vagrant.machines import (
    VagrantError,
    VagrantMachines,
    machine_selector,
    parse_ssh_config,
)
from overlaylab.providers.vagrant.provider import machine_pids
from overlaylab.spec import load_spec

KEY = "ssh-rsa AAAAB3NzaC1yc2EAAAABIwAAAQEA6NF8iallvQVp22WDkT vagrant insecure public key"
RECIPE = recipe.ImageRecipe(public_key=KEY)


# --- the recipe -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "change",
    [
        {"packages": (*recipe.NODE_PACKAGES, "curl")},
        {"init_script": recipe.INIT_SCRIPT + "echo more\n"},
        {"configure_script": recipe.CONFIGURE_SCRIPT + "true\n"},
        {"public_key": KEY.replace("vagrant", "other")},
        {"suite": "trixie"},
        {"cmd": ("/bin/sh",)},
    ],
    ids=lambda change: next(iter(change)),
)
def test_recipe_hash_changes_with_every_input(change: dict[str, Any]) -> None:
    changed = replace(RECIPE, **change)
    assert changed.digest != RECIPE.digest
    assert changed.tarball(Path("/c")) != RECIPE.tarball(Path("/c"))


def test_recipe_hash_is_stable_and_ignores_package_order_and_key_whitespace() -> None:
    same = recipe.ImageRecipe(
        public_key=f"  {KEY}\n", packages=tuple(reversed(recipe.NODE_PACKAGES))
    )
    assert same.digest == RECIPE.digest == recipe.ImageRecipe(public_key=KEY).digest
    assert re.fullmatch(r"[0-9a-f]{64}", RECIPE.digest)
    assert RECIPE.tarball(Path("/c")) == Path(f"/c/rootfs-bookworm-{RECIPE.digest[:16]}.tar")


def test_import_changes_set_the_init_as_cmd_and_label_the_recipe() -> None:
    cmd, label = RECIPE.changes()
    assert json.loads(cmd.removeprefix("CMD ")) == ["/usr/bin/tini", "--", recipe.INIT_PATH]
    assert label == f"LABEL {recipe.RECIPE_LABEL}={RECIPE.digest}"


def test_the_init_makes_cgroups_writable_and_starts_sshd_but_not_dockerd() -> None:
    commands = [line for line in recipe.INIT_SCRIPT.splitlines() if not line.startswith("#")]
    text = "\n".join(commands)
    assert "remount,bind,rw" in text and "/usr/sbin/sshd" in text
    assert "dockerd" not in text and "docker start" not in text


# --- apt sources --------------------------------------------------------------------------
DEB822 = """\
Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main

Types: deb-src
URIs: http://src.example/debian
Suites: bookworm

Types: deb
URIs: http://off.example/debian
Suites: bookworm
Enabled: no

Types: deb
# a comment inside the stanza
URIs: http://mirror.example/debian/
Suites: bookworm bookworm-updates
Components: main
"""


def test_mirror_from_deb822_takes_the_enabled_binary_stanza_of_the_suite() -> None:
    assert host_apt.mirror_from_sources(DEB822, "bookworm") == "http://mirror.example/debian"
    assert host_apt.mirror_from_sources(DEB822, "trixie") is None


def test_mirror_from_one_line_sources_skips_options_comments_and_other_suites() -> None:
    text = (
        "# deb http://commented.example/debian bookworm main\n"
        "deb http://security.example/debian-security bookworm-security main\n"
        "deb [signed-by=/usr/share/keyrings/k.gpg arch=amd64] http://one.example/debian "
        "bookworm main\n"
    )
    assert host_apt.mirror_from_sources(text, "bookworm") == "http://one.example/debian"


def test_apt_mirror_reads_the_source_folders_and_falls_back_to_debian(tmp_path: Path) -> None:
    folder = tmp_path / "sources.list.d"
    folder.mkdir()
    (folder / "debian.sources").write_text(DEB822)
    (folder / "ignored.list.disabled").write_text("deb http://no.example/debian bookworm main\n")
    assert host_apt.apt_mirror("bookworm", (tmp_path / "none.list", folder)) == (
        "http://mirror.example/debian"
    )
    assert host_apt.apt_mirror("bookworm", (tmp_path / "none.list",)) == host_apt.DEFAULT_MIRROR


def test_vagrant_keys_come_from_the_gem_folder_or_name_the_package(tmp_path: Path) -> None:
    keys = tmp_path / "vagrant-2.3.4" / "keys"
    keys.mkdir(parents=True)
    (keys / "vagrant.pub").write_text(KEY + "\n")
    (keys / "vagrant").write_text("private")
    assert vagrant_keys.vagrant_public_key(tmp_path) == KEY
    assert vagrant_keys.vagrant_private_key(tmp_path) == keys / "vagrant"
    with pytest.raises(recipe.ImageBuildError, match="apt-get install -y --no-install-recommends"):
        vagrant_keys.vagrant_public_key(tmp_path / "empty")


# --- command lines --------------------------------------------------------------------------
def test_debootstrap_argv_is_minbase_with_the_sorted_packages() -> None:
    argv = rootfs.debootstrap_argv(RECIPE, Path("/w/rootfs"), "http://m.example/debian")
    assert argv == [
        "debootstrap",
        "--variant=minbase",
        "--include=" + ",".join(sorted(recipe.NODE_PACKAGES)),
        "bookworm",
        "/w/rootfs",
        "http://m.example/debian",
    ]


def test_the_key_reaches_the_configure_script_as_an_argument_not_as_script_text() -> None:
    argv = rootfs.configure_argv(Path("/w/rootfs"), RECIPE)
    assert argv[:4] == ["chroot", "/w/rootfs", "/bin/sh", "-c"]
    assert argv[4] == recipe.CONFIGURE_SCRIPT and KEY not in argv[4]
    assert argv[5:] == ["configure", KEY]
    other = replace(RECIPE, configure_script="true\n")
    assert rootfs.configure_argv(Path("/w/rootfs"), other)[4] == "true\n"


def test_tar_keeps_numeric_owners() -> None:
    assert rootfs.tar_argv(Path("/r"), Path("/o.tar")) == [
        "tar",
        "--numeric-owner",
        "--xattrs",
        "-C",
        "/r",
        "-cf",
        "/o.tar",
        ".",
    ]


@pytest.mark.parametrize(
    ("line", "phase"),
    [
        ("I: Retrieving InRelease \n", "reading the release"),
        ("I: Retrieving Packages \n", "reading the package lists"),
        ("I: Retrieving libc6 2.36-9\n", "downloading packages"),
        ("I: Unpacking the base system...\n", "unpacking the other packages"),
        ("I: Base system installed successfully.\n", "done"),
        ("I: Validating libc6 2.36-9\n", None),
    ],
)
def test_debootstrap_lines_become_phases(line: str, phase: str | None) -> None:
    assert rootfs._debootstrap_phase(line) == phase


# --- the cache and the import ----------------------------------------------------------------
def test_a_cached_tarball_is_reused_without_building(tmp_path: Path) -> None:
    tarball = RECIPE.tarball(tmp_path)
    tarball.write_bytes(b"tar")
    reported: list[str] = []
    found, built = rootfs.ensure_rootfs(RECIPE, tmp_path, on_item=lambda w, m: reported.append(m))
    assert (found, built) == (tarball, False)
    assert reported == [f"reusing cached root filesystem {tarball}"]


def test_clear_cache_removes_every_tarball_and_build_folder(tmp_path: Path) -> None:
    cache = tmp_path / "overlaylab" / "vagrant-node"
    (cache / "build-0123").mkdir(parents=True)
    RECIPE.tarball(cache).write_bytes(b"tar")
    assert rootfs.clear_cache(cache) == [RECIPE.tarball(cache)]
    assert not cache.exists() and not cache.parent.exists()


class FakeImages:
    def __init__(self, labels: dict[str, str] | None) -> None:
        self.labels = labels

    def get(self, tag: str) -> Any:
        if self.labels is None:
            import docker

            raise docker.errors.ImageNotFound(tag)
        return type("Image", (), {"attrs": {"Config": {"Labels": self.labels}}})()


class FakeClient:
    def __init__(self, labels: dict[str, str] | None) -> None:
        self.images = FakeImages(labels)
        self.imports: list[dict[str, Any]] = []
        self.api = self

    def import_image_from_file(self, filename: str, **kwargs: Any) -> None:
        self.imports.append({"filename": filename, **kwargs})
        self.images.labels = {recipe.RECIPE_LABEL: RECIPE.digest}


def test_an_engine_holding_the_recipe_is_left_alone(tmp_path: Path) -> None:
    client = FakeClient({recipe.RECIPE_LABEL: RECIPE.digest})
    result = image.ensure_image(client, "overlaylab/vagrant-node:1", RECIPE, tmp_path)  # type: ignore[arg-type]
    assert (result.built, result.imported, client.imports) == (False, False, [])


def test_an_engine_with_another_recipe_imports_the_cached_tarball(tmp_path: Path) -> None:
    RECIPE.tarball(tmp_path).write_bytes(b"tar")
    client = FakeClient({recipe.RECIPE_LABEL: "older"})
    result = image.ensure_image(client, "overlaylab/vagrant-node:1", RECIPE, tmp_path)  # type: ignore[arg-type]
    assert (result.built, result.imported) == (False, True)
    assert client.imports == [
        {
            "filename": str(RECIPE.tarball(tmp_path)),
            "repository": "overlaylab/vagrant-node",
            "tag": "1",
            "changes": RECIPE.changes(),
        }
    ]


def test_installing_nothing_missing_runs_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(host_apt, "missing_packages", lambda packages: [])
    assert host_apt.install_host_packages(["vagrant", "debootstrap"]) == []


# --- vagrant ssh-config ------------------------------------------------------------------------
SSH_CONFIG = """\
Host a
  HostName 192.168.93.11
  User vagrant
  Port 22
  UserKnownHostsFile /dev/null
  StrictHostKeyChecking no
  PasswordAuthentication no
  IdentityFile "/var/lib/overlaylab/vgs/vagrant/dotfile/machines/a/docker/private key"
  IdentityFile /var/lib/overlaylab/vgs/vagrant/home/insecure_private_key
  IdentitiesOnly yes
  LogLevel FATAL

# another machine
Host b
  HostName 192.168.93.12
  User vagrant
  Port 2200
"""


def test_ssh_config_gives_each_machine_its_host_port_user_and_keys() -> None:
    targets = parse_ssh_config(SSH_CONFIG)
    assert set(targets) == {"a", "b"}
    a, b = targets["a"], targets["b"]
    assert (a.host, a.port, a.user) == ("192.168.93.11", 22, "vagrant")
    assert a.key_files == (
        "/var/lib/overlaylab/vgs/vagrant/dotfile/machines/a/docker/private key",
        "/var/lib/overlaylab/vgs/vagrant/home/insecure_private_key",
    )
    assert a.options["stricthostkeychecking"] == "no"
    assert (b.host, b.port, b.key_files) == ("192.168.93.12", 2200, ())


def test_ssh_config_without_a_hostname_is_an_error_showing_the_output() -> None:
    with pytest.raises(VagrantError, match="no HostName for a"):
        parse_ssh_config("Host a\n  User vagrant\n")


def test_fabric_gets_the_key_alone_and_not_the_users_ssh_config() -> None:
    target = parse_ssh_config(SSH_CONFIG)["a"]
    kwargs = target.connect_kwargs()
    assert kwargs == {
        "key_filename": list(target.key_files),
        "look_for_keys": False,
        "allow_agent": False,
    }
    conn = target.connection()  # builds the object only: nothing connects
    assert (conn.host, conn.port, conn.user) == ("192.168.93.11", 22, "vagrant")
    assert conn.connect_kwargs["key_filename"] == list(target.key_files)
    assert conn.config.load_ssh_configs is False


@pytest.mark.parametrize(
    ("names", "selector"),
    [([], None), (["a"], "a"), (["a", "node-1"], "/^(a|node\\-1)$/")],
)
def test_machine_selector_is_one_vagrant_argument(names: list[str], selector: str | None) -> None:
    assert machine_selector(names) == selector


def test_a_selector_for_several_machines_matches_exactly_them() -> None:
    selector = machine_selector(["a", "b"])
    assert selector is not None
    pattern = re.compile(selector.strip("/"))
    assert [n for n in ("a", "b", "ab", "kv", "a1") if pattern.search(n)] == ["a", "b"]


def test_vagrant_runs_against_the_lab_engine_with_its_files_in_the_lab_folder(
    tmp_path: Path,
) -> None:
    machines = VagrantMachines(
        root=Path("/repo"),
        state_dir=tmp_path / "vagrant",
        docker_host="unix:///x/docker.sock",
        machines_file=tmp_path / "machines.json",
        base_env={
            "PATH": "/usr/bin",
            "DOCKER_HOST": "tcp://elsewhere:2376",
            "DOCKER_TLS_VERIFY": "1",
            "DOCKER_CERT_PATH": "/certs",
            "DOCKER_CONTEXT": "remote",
        },
    )
    env = machines.env()
    assert env["DOCKER_HOST"] == "unix:///x/docker.sock"
    assert not {"DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_CONTEXT"} & set(env)
    assert env["VAGRANT_HOME"] == str(tmp_path / "vagrant" / "home")
    assert env["VAGRANT_DOTFILE_PATH"] == str(tmp_path / "vagrant" / "dotfile")
    assert env["VAGRANT_DEFAULT_PROVIDER"] == "docker"
    assert env["VAGRANT_CHECKPOINT_DISABLE"] == "1"
    assert env["OVERLAYLAB_MACHINES"] == str(tmp_path / "machines.json")
    assert env["PATH"] == "/usr/bin"


# --- the outer engine -------------------------------------------------------------------------
def engine(tmp_path: Path) -> outer.OuterEngine:
    spec = load_spec(LAB_YML)
    return outer.OuterEngine.for_spec(spec, LabLayout.for_cluster(spec.name, tmp_path / "lab"))


def test_the_engine_enters_the_labs_namespace_with_nsenter_not_ip_netns_exec(
    tmp_path: Path,
) -> None:
    eng = engine(tmp_path)
    argv = eng.dockerd_argv()
    assert argv[:5] == ["nsenter", f"--net=/run/netns/{eng.netns}", "unshare", "--uts", "--"]
    assert argv[-3:] == ["dockerd", "--config-file", str(eng.config_file)]
    assert "netns" not in argv[5:]
    assert eng.netns == f"ol-{eng.layout.cluster}._vagrant"
    assert eng.layout.owns_ns(eng.netns)


def test_the_engine_keeps_everything_under_the_lab_folder_and_cgroup(tmp_path: Path) -> None:
    eng = engine(tmp_path)
    config = eng.daemon_config()
    state = str(eng.layout.state_dir) + "/"
    for key in ("data-root", "exec-root", "pidfile", "deprecated-key-path"):
        assert str(config[key]).startswith(state), key
    assert config["hosts"] == [eng.docker_host] and eng.docker_host.startswith("unix://" + state)
    assert str(config["cgroup-parent"]).startswith(eng.layout.cgroup_prefix)
    assert config["bip"] == outer.NAT_BRIDGE_IP
    assert eng.env() == {"DOCKER_HOST": eng.docker_host}


def test_the_lab_network_is_the_spec_subnet_on_the_lab_bridge(tmp_path: Path) -> None:
    eng = engine(tmp_path)
    options = eng.lab_network_options()
    pool = options["ipam"]["Config"][0]
    assert pool == {"Subnet": str(eng.subnet), "Gateway": str(eng.gateway)} | {
        k: v for k, v in pool.items() if k not in ("Subnet", "Gateway")
    }
    assert options["options"]["com.docker.network.bridge.name"] == outer.LAB_BRIDGE
    assert eng.network_name == f"ol-{eng.layout.cluster}"
    assert ipaddress.IPv4Address(pool["Gateway"]) in eng.subnet


def test_host_and_bridge_addresses_avoid_the_nodes() -> None:
    subnet = ipaddress.IPv4Network("192.168.93.0/24")
    taken = [ipaddress.IPv4Address("192.168.93.1"), ipaddress.IPv4Address("192.168.93.254")]
    host, gateway = outer.lab_addresses(subnet, taken)
    assert (str(host), str(gateway)) == ("192.168.93.2", "192.168.93.253")
    assert outer.lab_addresses(subnet, []) == (
        ipaddress.IPv4Address("192.168.93.1"),
        ipaddress.IPv4Address("192.168.93.254"),
    )


def test_a_full_subnet_is_a_clear_error() -> None:
    subnet = ipaddress.IPv4Network("10.0.0.0/30")
    with pytest.raises(outer.OuterEngineError, match="use a larger subnet"):
        outer.lab_addresses(subnet, [ipaddress.IPv4Address("10.0.0.1")])


def test_nested_lab_cgroups_are_found_below_a_namespaced_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(teardown, "CGROUP_ROOT", tmp_path)
    layout = LabLayout.for_cluster("vgs")
    nested = tmp_path / "memory" / "process_api" / "42" / "overlaylab-vgs._vagrant"
    (nested / "c0ffee").mkdir(parents=True)
    (tmp_path / "memory" / "overlaylab-vgs._vagrant").mkdir()  # top level: teardown's
    (tmp_path / "memory" / "process_api" / "42" / "overlaylab-vgs2._vagrant").mkdir()
    (tmp_path / "cpu" / "docker" / "abc").mkdir(parents=True)
    assert outer.nested_lab_cgroups(layout) == [nested]
    assert outer.remove_nested_cgroups(layout) == 1
    assert not nested.exists()
    assert (tmp_path / "memory" / "process_api" / "42" / "overlaylab-vgs2._vagrant").exists()


def test_machine_processes_are_found_at_the_top_of_a_hierarchy_and_below_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At the root of every hierarchy (a machine without a sandbox, or a cgroup namespace
    whose root is the lab's), the machines' containers sit under the engine's cgroup
    parent at the top; in a sandbox, below it. Both count; a neighbour lab's do not."""
    monkeypatch.setattr(teardown, "CGROUP_ROOT", tmp_path)
    layout = LabLayout.for_cluster("vgs")

    def procs(group: Path, *pids: int) -> None:
        group.mkdir(parents=True)
        (group / "cgroup.procs").write_text("".join(f"{pid}\n" for pid in pids))

    procs(tmp_path / "cpu" / "overlaylab-vgs._vagrant" / "c0ffee", 101, 102)
    procs(tmp_path / "memory" / "process_api" / "42" / "overlaylab-vgs._vagrant" / "c0ffee", 103)
    procs(tmp_path / "cpu" / "overlaylab-vgs.kv", 104)  # the lab's, but no machine's
    procs(tmp_path / "cpu" / "overlaylab-vgs2._vagrant" / "beef", 105)
    assert machine_pids(layout) == {101, 102, 103}


def test_the_outer_engine_keeps_its_temporary_files_in_its_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its containerd writes a stack dump to $TMPDIR when the engine finds it unhealthy
    (seen under load): left to /tmp, that file outlived `down`."""
    started: list[dict[str, str]] = []
    monkeypatch.setattr(
        outer.subprocess, "Popen", lambda argv, **options: started.append(options["env"])
    )
    outer_engine = engine(tmp_path)
    outer_engine._spawn()
    [env] = started
    assert Path(env["TMPDIR"]).is_relative_to(outer_engine.dir)
    assert Path(env["TMPDIR"]).is_dir()


def test_vagrant_status_is_asked_again_until_it_lists_every_machine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Right after `vagrant up`, Vagrant listed `b` twice and `a` not at all, even when
    asked for `a` by name; a moment later it lists both."""
    machines_file = tmp_path / "machines.json"
    machines_file.write_text(json.dumps({"machines": [{"name": "a"}, {"name": "b"}]}))
    machines = VagrantMachines(
        root=Path("/repo"),
        state_dir=tmp_path / "vagrant",
        docker_host="unix:///x/docker.sock",
        machines_file=machines_file,
    )

    def listed(*names: str) -> list[Any]:
        return [SimpleNamespace(name=n, state="running", provider="docker") for n in names]

    answers = iter([listed("b", "b"), listed("b"), listed("a", "b")])
    client = SimpleNamespace(status=lambda vm_name=None: next(answers))
    monkeypatch.setattr(machines, "client", lambda quiet=True: client)
    monkeypatch.setattr(time, "sleep", lambda _seconds: None)
    assert sorted(s.name for s in machines.status()) == ["a", "b"]


def test_a_machine_vagrant_never_lists_is_asked_of_the_labs_engine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`vagrant status` kept listing `b` twice and `a` not at all for 10 s: the engine that
    runs the machines says whether `a`'s container runs."""
    machines_file = tmp_path / "machines.json"
    listed_machines = [{"name": "a", "vm_name": "vgs-a"}, {"name": "b", "vm_name": "vgs-b"}]
    machines_file.write_text(json.dumps({"machines": listed_machines}))
    machines = VagrantMachines(
        root=Path("/repo"),
        state_dir=tmp_path / "vagrant",
        docker_host="unix:///x/docker.sock",
        machines_file=machines_file,
    )
    wrong = [SimpleNamespace(name="b", state="running", provider="docker")] * 2
    client = SimpleNamespace(status=lambda vm_name=None: wrong)
    monkeypatch.setattr(machines, "client", lambda quiet=True: client)
    asked: list[dict[str, str]] = []

    class Engine:
        def __init__(self, base_url: str, timeout: int) -> None:
            assert base_url == "unix:///x/docker.sock"
            self.containers = self

        def __enter__(self) -> Engine:
            return self

        def __exit__(self, *_: object) -> None:
            pass

        def list(self, all: bool, filters: dict[str, str]) -> list[SimpleNamespace]:
            asked.append(filters)
            return [SimpleNamespace(status="running")] if "vgs\\-a" in filters["name"] else []

    monkeypatch.setattr(machines_module.docker, "DockerClient", Engine)
    found = {(s.name, s.state, s.provider) for s in machines.status(settle=0)}
    assert found == {("a", "running", "docker"), ("b", "running", "docker")}
    assert asked == [{"name": "^/?vgs\\-a$"}]
