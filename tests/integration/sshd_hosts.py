"""Real sshd on bare hosts, for the ssh provider's tests: the hosts are a local lab's
node namespaces (network + UTS, on one lab switch), each running its own sshd."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from lab_cli import ROOT

from overlaylab.context import LabContext, open_lab
from overlaylab.waiting import wait_until

HOSTS_SPEC = ROOT / "tests/testdata/labs/ssh-hosts.yml"
SSHD = Path("/usr/sbin/sshd")
PRIVSEP_DIR = Path("/run/sshd")  # sshd refuses to start without it


@dataclass
class Hosts:
    addresses: dict[str, str]  # host name -> address
    key: Path  # the client's private key, authorised on every host


def _sshd_config(folder: Path, address: str, host: str) -> Path:
    host_key = folder / f"host-{host}"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host_key)], check=True)
    config = folder / f"sshd-{host}.conf"
    config.write_text(
        f"ListenAddress {address}\nPort 22\nHostKey {host_key}\n"
        f"AuthorizedKeysFile {folder / 'authorized_keys'}\nPidFile {folder / f'sshd-{host}.pid'}\n"
        "PermitRootLogin prohibit-password\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
    )
    return config


# Run sshd in a mount namespace of its own where each file named is an empty one: a
# program there cannot run, so the host "has" only what an SSH session there can find.
_HIDING_SSHD = (
    'empty="$1"; shift; '
    'while [ "$1" != -- ]; do mount --bind "$empty" "$1"; shift; done; shift; exec "$@"'
)


# This machine's own start-up files for root's shell, which sshd's sessions run before
# every command: a bare host has none of this machine's set-up (here, root's .bashrc
# starts pyenv, a dozen processes and a lock per SSH command).
SHELL_RC = [Path.home() / name for name in (".bashrc", ".bash_profile", ".profile")]


def _sshd_argv(folder: Path, config: Path, hidden: Sequence[str]) -> list[str]:
    sshd = [str(SSHD), "-D", "-e", "-f", str(config)]
    empty = folder / "not-installed"
    empty.write_bytes(b"")
    empty.chmod(0o644)
    paths = [shutil.which(program) or f"/usr/bin/{program}" for program in hidden]
    paths += [str(rc) for rc in SHELL_RC if rc.is_file()]
    if not paths:
        return sshd
    return ["unshare", "--mount", "sh", "-c", _HIDING_SSHD, "sh", str(empty), *paths, "--", *sshd]


@contextlib.contextmanager
def sshd_hosts(folder: Path, hidden: Sequence[str] = ()) -> Iterator[Hosts]:
    """Bring the bare hosts up with sshd on each; take every trace away afterwards.

    `hidden`: programs of this machine that the hosts do not have (the hosts share this
    machine's files: sshd and what runs under it see each one as an empty file)."""
    if not SSHD.exists():
        pytest.skip(f"{SSHD} is missing (./lab test installs openssh-server)")
    ctx: LabContext = open_lab(HOSTS_SPEC)
    made_privsep = not PRIVSEP_DIR.exists()
    PRIVSEP_DIR.mkdir(mode=0o755, exist_ok=True)
    key = folder / "id_ed25519"
    try:
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        (folder / "authorized_keys").write_text(key.with_suffix(".pub").read_text())
        ctx.provider.provision()
        addresses = {}
        for node in ctx.provider.nodes():
            config = _sshd_config(folder, str(node.address), node.name)
            node.start_service("sshd", _sshd_argv(folder, config, hidden))
            addresses[node.name] = str(node.address)
        for node in ctx.provider.nodes():
            assert wait_until(lambda n=node: n.tcp_connect(str(n.address), 22)[0], 10), (
                f"sshd on {node.name} did not listen: {node.service_log('sshd')}"
            )
        yield Hosts(addresses, key)
    finally:
        ctx.provider.destroy()
        if made_privsep:
            with contextlib.suppress(OSError):
                PRIVSEP_DIR.rmdir()


HOST_OF = {"kv": "h0", "n1": "h1", "n2": "h2"}


def ssh_spec(folder: Path, hosts: Hosts) -> Path:
    spec = {
        "apiVersion": "overlaylab/v1",
        "kind": "Cluster",
        "name": "ss",
        "provider": {
            "type": "ssh",
            "key_file": hosts.key.name,  # relative: next to the spec, as compose resolves
            "hosts": {
                node: {"host": hosts.addresses[host], "user": "root"}
                for node, host in HOST_OF.items()
            },
        },
        "lab": {"subnet": "192.168.91.0/24"},
        "kv": {"backend": "etcd", "node": "kv"},
        "nodes": [
            {"name": "kv", "address": hosts.addresses["h0"], "roles": ["kv"]},
            {"name": "n1", "address": hosts.addresses["h1"]},
            {"name": "n2", "address": hosts.addresses["h2"]},
        ],
        "networks": [{"name": "dn", "subnet": "10.0.39.0/24"}],  # the demo stack's network
        "stacks": [
            {
                "name": "demo",
                "file": str(ROOT / "stacks/demo/docker-compose.yml"),
                "services": {"web": "n1", "mongo": "n2"},
            }
        ],
    }
    path = folder / "ssh-lab.yml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path
