"""What the Vagrant node image holds: packages, init, configuration script and key, as
one recipe whose sha256 names the cached root filesystem and labels the image."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from overlaylab.errors import OverlaylabError

CACHE_ROOT = Path(os.environ.get("OVERLAYLAB_CACHE", "/var/cache/overlaylab"))


IMAGE_CACHE = CACHE_ROOT / "vagrant-node"


SUITE = "bookworm"


NODE_PACKAGES: tuple[str, ...] = (
    "openssh-server",
    "sudo",
    "docker.io",
    "iproute2",
    "iputils-ping",
    "procps",
    "ca-certificates",
)


# What a KV node runs its server from (steps/kv.py): one flavor of the image per backend,
# so an etcd lab does not carry zookeeper's Java. Consul is not packaged in Debian 12.
KV_PACKAGES: dict[str, tuple[str, ...]] = {
    "etcd": ("etcd-server",),
    "zookeeper": ("zookeeper",),
    "consul": (),
}


DEFAULT_KV = "etcd"


# /usr/local/sbin is a real folder (/sbin is a symlink): writing the init from outside
# the chroot never follows a link out of the root filesystem.
INIT_PATH = "/usr/local/sbin/overlaylab-init"


# tini (a dependency of docker.io) is PID 1: it reaps the orphans sshd sessions leave.
IMAGE_CMD = ["/usr/bin/tini", "--", INIT_PATH]


RECIPE_LABEL = "overlaylab.recipe"


# Bump when the build changes in a way the recipe text does not show.
RECIPE_FORMAT = 1


OnItem = Callable[[str, str], None]


INIT_SCRIPT = """#!/bin/sh
# overlaylab machine init (under tini): what a VM's boot does, and no more.
# Docker bind-mounts the cgroup hierarchies read-only; a dockerd inside the machine
# then fails on `mkdir /sys/fs/cgroup/cpuset/docker: read-only file system`. Only a
# bind remount changes a bind mount's flag (a plain remount says "busy").
for fs in /sys/fs/cgroup /sys/fs/cgroup/*; do
  if mountpoint -q "$fs"; then mount -o remount,bind,rw "$fs" 2>/dev/null || true; fi
done
# Host keys of this machine, not of the image every machine shares.
ssh-keygen -A >/dev/null
mkdir -p /run/sshd
/usr/sbin/sshd
# dockerd is started by the lab (`service docker start`) once daemon.json is in place.
trap 'service docker stop >/dev/null 2>&1; exit 0' TERM INT
while :; do sleep 3600 & wait $!; done
"""


# Runs inside the fresh root filesystem (chroot), with the public key as "$1".
CONFIGURE_SCRIPT = """set -eu
useradd --create-home --shell /bin/bash --user-group vagrant
usermod --password '*' vagrant   # no password, yet not locked: key logins only
echo 'vagrant ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/vagrant
chmod 0440 /etc/sudoers.d/vagrant
install -d -m 0700 -o vagrant -g vagrant /home/vagrant/.ssh
printf '%s\\n' "$1" > /home/vagrant/.ssh/authorized_keys
chown vagrant:vagrant /home/vagrant/.ssh/authorized_keys
chmod 0600 /home/vagrant/.ssh/authorized_keys
# A container cannot set its login uid: a required pam_loginuid ends every session.
sed -i 's/^session\\s\\+required\\s\\+pam_loginuid.so/session optional pam_loginuid.so/' \\
  /etc/pam.d/sshd
sed -i 's/^#\\?UseDNS.*/UseDNS no/' /etc/ssh/sshd_config
rm -f /etc/ssh/ssh_host_*
# /etc/init.d/docker raises its limits with `ulimit` under `set -e`; where the machine
# may not raise them (no CAP_SYS_RESOURCE, as in some sandboxes) it must not abort.
sed -i -E 's#^([[:space:]]*ulimit -[a-z] [a-z0-9]+)$#\\1 2>/dev/null || true#' \\
  /etc/init.d/docker
if grep -Eq '^[[:space:]]*ulimit -[a-z] [a-z0-9]+$' /etc/init.d/docker; then
  echo "/etc/init.d/docker: a ulimit line was left unguarded" >&2; exit 1
fi
rm -f /usr/sbin/policy-rc.d
apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/debconf/*-old /var/log/*.log
"""


class ImageBuildError(OverlaylabError):
    """The node image could not be built or imported; says what is missing and the fix."""


@dataclass(frozen=True)
class ImageRecipe:
    """Everything that decides the image's content; its hash names the cached tarball."""

    public_key: str
    packages: tuple[str, ...] = NODE_PACKAGES
    suite: str = SUITE
    init_script: str = INIT_SCRIPT
    configure_script: str = CONFIGURE_SCRIPT
    cmd: tuple[str, ...] = field(default=tuple(IMAGE_CMD))
    # Names the tarball beside its digest ("etcd", "zookeeper"; "" for the bare image): a
    # new build replaces the cached tarballs of its own flavor only.
    flavor: str = ""

    def text(self) -> str:
        # The mirror is not part of it: every Debian mirror serves the same suite.
        return json.dumps(
            {
                "format": RECIPE_FORMAT,
                "suite": self.suite,
                "variant": "minbase",
                "packages": sorted(self.packages),
                "init": self.init_script,
                "configure": self.configure_script,
                "public_key": self.public_key.strip(),
                "cmd": list(self.cmd),
            },
            sort_keys=True,
        )

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.text().encode()).hexdigest()

    def tarball(self, cache: Path = IMAGE_CACHE) -> Path:
        flavor = f"{self.flavor}-" if self.flavor else ""
        return cache / f"rootfs-{self.suite}-{flavor}{self.digest[:16]}.tar"

    def changes(self) -> list[str]:
        """`docker import --change` instructions: the init as CMD, the recipe as label."""
        return [f"CMD {json.dumps(list(self.cmd))}", f"LABEL {RECIPE_LABEL}={self.digest}"]
