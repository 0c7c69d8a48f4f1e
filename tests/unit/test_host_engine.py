"""`engine: host`: the save and restore scripts run for real, against a host of shims.

The scripts run in a shell on this machine with `service` and `docker` replaced by
small fakes of a sysv host (the real thing runs on Vagrant machines in
tests/integration/test_vagrant_provider.py); the paths they change are in a temporary
folder. What is asserted is what a host keeps: its daemon.json, its running engine,
and the commands that removed the lab's things from that engine.
"""

from __future__ import annotations

import ipaddress
import os
import subprocess
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

import pytest
import yaml
from fabric import Connection
from lab_specs import LAB_YML, make_ctx

from overlaylab.providers.base import NodePaths
from overlaylab.providers.command import CommandResult
from overlaylab.providers.ssh.host_engine import HostDocker
from overlaylab.providers.ssh.node import SSHNode
from overlaylab.spec.models import ClusterSpec

# A sysv host: `service docker ...` keeps its state in $HOST/running.
SERVICE = """#!/bin/sh
echo "service $*" >> "$HOST/calls"
case "$2" in
  status) [ -e "$HOST/running" ] ;;
  stop) rm -f "$HOST/running" ;;
  start) touch "$HOST/running" ;;
esac
"""
# The engine: lists what $HOST/containers and $HOST/networks hold; `rm` fails when
# $HOST/stuck exists.
DOCKER = """#!/bin/sh
echo "docker $*" >> "$HOST/calls"
case "$1 $2" in
  "ps -aq") case "$*" in *overlaylab.cluster=lab*) cat "$HOST/containers" ;; esac ;;
  "network ls") case "$*" in *overlaylab.cluster=lab*) cat "$HOST/networks" ;; esac ;;
  "network inspect") [ -e "$HOST/gwbridge" ] ;;
  "rm -f") [ ! -e "$HOST/stuck" ] ;;
  "info --format") [ -e "$HOST/swarm" ] && echo active || echo inactive ;;
  "swarm leave") rm -f "$HOST/swarm" ;;
esac
"""


class ShellHost:
    """Runs commands here, with the shims first on PATH (what `HostDocker` needs)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        bin_dir = folder / "bin"
        bin_dir.mkdir()
        for name, text in {"service": SERVICE, "docker": DOCKER}.items():
            (bin_dir / name).write_text(text)
            (bin_dir / name).chmod(0o755)
        self.env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOST": str(folder)}

    def run(
        self,
        argv: Sequence[str],
        *,
        check: bool = True,
        timeout: float | None = 60,
        input: str | None = None,
    ) -> CommandResult:
        done = subprocess.run(argv, env=self.env, capture_output=True, text=True, timeout=timeout)
        result = CommandResult(tuple(argv), done.returncode, done.stdout, done.stderr, "host")
        return result.check() if check else result

    def put_file(self, path: PurePosixPath, data: bytes, mode: int = 0o644) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_bytes(data)
        os.chmod(path, mode)

    def read_file(self, path: PurePosixPath) -> bytes | None:
        return Path(path).read_bytes() if Path(path).exists() else None

    def calls(self) -> list[str]:
        calls = self.folder / "calls"
        return calls.read_text().splitlines() if calls.exists() else []


@pytest.fixture
def host(tmp_path: Path) -> ShellHost:
    return ShellHost(tmp_path)


def engine(host: ShellHost) -> HostDocker:
    etc = PurePosixPath(host.folder / "etc")
    return HostDocker(
        cluster="lab",
        lab_root=PurePosixPath(host.folder / "lab"),
        drop_in="[Service]\n",
        projects=("demo",),
        daemon_json=etc / "daemon.json",
        tls_dir=etc / "overlaylab",
        drop_in_path=etc / "docker.service.d" / "overlaylab.conf",
        sysv_log=PurePosixPath(host.folder / "docker.log"),
    )


def lab_in_engine(host: ShellHost, docker: HostDocker) -> None:
    """What `up` does to the host: its configuration, certificates, a restart, things."""
    host.put_file(docker.daemon_json, b'{"cluster-store": "etcd://10.0.0.1:2379"}')
    host.put_file(docker.tls_dir / "key.pem", b"key", 0o600)
    docker.stop(host)
    docker.start(host)
    (host.folder / "containers").write_text("c1\nc2\n")
    (host.folder / "networks").write_text("n1\n")
    (host.folder / "lab" / "images.loaded").write_text("overlaylab/probe:1\n")
    (host.folder / "calls").unlink()  # from here on, what `down` does


def test_restore_puts_back_a_running_engine_and_its_configuration(host: ShellHost) -> None:
    docker = engine(host)
    host.put_file(docker.daemon_json, b'{"debug": true}\n')
    (host.folder / "running").touch()
    docker.save(host)
    lab_in_engine(host, docker)
    assert docker.alive(host)

    assert docker.restore(host) == []

    assert host.read_file(docker.daemon_json) == b'{"debug": true}\n'
    assert host.read_file(docker.tls_dir / "key.pem") is None
    calls = host.calls()
    assert "docker rm -f -v c1 c2" in calls
    assert "docker network rm n1" in calls
    assert "docker image rm overlaylab/probe:1" in calls
    assert calls.index("docker rm -f -v c1 c2") < calls.index("service docker stop")
    assert calls[-1] == "service docker start"
    assert docker.alive(host), "it ran before the lab: it runs again"
    assert not (host.folder / "lab" / "host-docker").exists()


def test_restore_leaves_a_host_without_docker_as_it_was(host: ShellHost) -> None:
    docker = engine(host)
    docker.save(host)
    lab_in_engine(host, docker)
    (host.folder / "gwbridge").touch()  # made by the engine when the lab used an overlay

    assert docker.restore(host) == []

    assert "docker network rm docker_gwbridge" in host.calls()
    assert host.calls()[-1] == "service docker stop"
    assert host.read_file(docker.daemon_json) is None
    assert not docker.alive(host)


def test_a_second_save_keeps_the_hosts_first_configuration(host: ShellHost) -> None:
    docker = engine(host)
    host.put_file(docker.daemon_json, b"{}\n")
    docker.save(host)
    lab_in_engine(host, docker)
    docker.save(host)  # a second `up`: the lab's daemon.json must not become the backup
    assert docker.restore(host) == []
    assert host.read_file(docker.daemon_json) == b"{}\n"


def test_when_the_lab_cannot_be_removed_the_engine_and_backup_stay(host: ShellHost) -> None:
    docker = engine(host)
    docker.save(host)
    lab_in_engine(host, docker)
    (host.folder / "stuck").touch()

    assert docker.restore(host) == ["cannot remove the lab's containers from the engine"]
    assert host.read_file(docker.daemon_json) is not None  # the next `down` tries again
    assert docker.alive(host)
    (host.folder / "stuck").unlink()
    assert docker.restore(host) == []
    assert host.read_file(docker.daemon_json) is None


def test_restore_without_a_save_changes_nothing(host: ShellHost) -> None:
    docker = engine(host)
    host.put_file(docker.daemon_json, b"{}\n")
    assert docker.restore(host) == []
    assert host.read_file(docker.daemon_json) == b"{}\n" and host.calls() == []
    assert not (host.folder / "lab").exists()


def test_the_log_is_the_one_since_the_labs_start(host: ShellHost) -> None:
    docker = engine(host)
    docker.save(host)
    Path(docker.sysv_log).write_text("an old start\n")
    docker.start(host)
    with Path(docker.sysv_log).open("a") as log:
        log.write("API listen on /var/run/docker.sock\n")
    assert "an old start" not in (docker.log(host) or "")
    assert "API listen on" in (docker.log(host) or "")


def test_an_ssh_node_hands_only_its_engine_to_the_hosts_service(host: ShellHost) -> None:
    """The engine service goes to `HostDocker`; any other service stays the lab's own."""
    docker = engine(host)

    class Recorder(SSHNode):
        def _sh(self, script: str, *args: str, input: str | None = None) -> CommandResult:
            self.scripts.append(args)
            return CommandResult(("sh",), 0, "", "", self.name)

        def run(self, argv: Sequence[str], **kwargs: object) -> CommandResult:
            return host.run(argv, check=bool(kwargs.get("check", True)))

        def read_file(self, path: PurePosixPath) -> bytes | None:
            return host.read_file(path)

    node = Recorder(
        "n1",
        ipaddress.IPv4Address("10.0.0.2"),
        connection=Connection("10.0.0.2", user="root"),
        paths=NodePaths.under(PurePosixPath("/lab")),
        api_port=2376,
        client_cert_dir=Path("/certs"),
        host_docker=docker,
    )
    node.scripts = []
    docker.save(host)
    node.start_service("dockerd", ["dockerd", "--config-file", "/lab/daemon.json"])
    assert node.service_alive("dockerd") and node.scripts == []
    assert node.service_log_location("dockerd") == f"n1:{docker.sysv_log}"
    node.start_service("etcd", ["etcd"])
    assert node.scripts and node.scripts[0][:2] == ("/lab", "etcd")


@pytest.mark.parametrize("choice", ["lab", "host"])
def test_provider_engine_chooses_where_the_engine_lives(tmp_path: Path, choice: str) -> None:
    vagrant_yml = LAB_YML.parent / "vagrant.yml"
    raw = yaml.safe_load(vagrant_yml.read_text())
    raw["provider"]["engine"] = choice
    spec = ClusterSpec.model_validate(raw)
    node = make_ctx(spec, tmp_path / "state", vagrant_yml).provider.node("node1")
    assert isinstance(node, SSHNode)
    root = PurePosixPath("/var/lib/overlaylab/vagrant/nodes/node1")
    assert node.paths.root == root
    if choice == "lab":
        assert node.host_docker is None and node.paths == NodePaths.under(root)
        assert node.cgroup_parent  # its containers under the lab's cgroup
    else:
        assert node.host_docker is not None and node.cgroup_parent is None
        assert node.paths.daemon_config == PurePosixPath("/etc/docker/daemon.json")
        assert not node.paths.private_engine
        assert node.host_docker.projects == ("demo",)


def test_down_leaves_a_swarm_the_lab_made_but_not_one_the_host_had(host: ShellHost) -> None:
    docker = engine(host)
    docker.save(host)
    lab_in_engine(host, docker)
    (host.folder / "swarm").touch()  # swarm mode: the lab's `swarm init` / `join`
    assert docker.restore(host) == []
    assert "docker swarm leave --force" in host.calls()

    docker = engine(host)
    (host.folder / "running").touch()
    (host.folder / "swarm").touch()  # the host was in a swarm before the lab
    docker.save(host)
    lab_in_engine(host, docker)
    assert docker.restore(host) == []
    assert "docker swarm leave --force" not in host.calls()
