"""The node image of Vagrant's docker provider, built offline and cached.

No registry is reachable here and no Vagrant box can be downloaded, so every machine
starts from an image made on this machine: Debian bookworm (`debootstrap
--variant=minbase`, from the mirror apt already uses) with sshd, sudo, dockerd and the
network tools, the server of the lab's KV backend (etcd-server or zookeeper: one image
flavor per backend, `recipe_for`), a user `vagrant` with passwordless sudo and Vagrant's
insecure public key, and a small init (`INIT_SCRIPT`).

Building takes 60-100 s, so the root filesystem tarball is cached under
/var/cache/overlaylab/vagrant-node/, named by the sha256 of its recipe (package list,
init, configuration script, public key): a second run only imports the cached tarball
(6-13 s), and any change to the recipe builds a new one (the older one of its flavor goes). The
cache lives outside every lab's state folder, so `down` keeps it. Clear it with `clear_cache()` or
`rm -rf /var/cache/overlaylab/vagrant-node` (OVERLAYLAB_CACHE moves the root).

The init starts sshd only. dockerd inside a machine is the lab's business, as on any
real host without systemd: with `engine: host` the lab writes /etc/docker/daemon.json
and runs `service docker start` (docker.io ships /etc/init.d/docker); with `engine: lab`
it runs a dockerd of its own from the lab folder. The init only makes the cgroup
hierarchies writable so that dockerd can start at all.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import docker

from overlaylab.errors import OverlaylabError

CACHE_ROOT = Path(os.environ.get("OVERLAYLAB_CACHE", "/var/cache/overlaylab"))
IMAGE_CACHE = CACHE_ROOT / "vagrant-node"
SUITE = "bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
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
APT_SOURCES = (Path("/etc/apt/sources.list"), Path("/etc/apt/sources.list.d"))
# Where Debian's vagrant package keeps the gem's insecure key pair.
VAGRANT_GEMS = Path("/usr/share/rubygems-integration/all/gems")
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


@dataclass(frozen=True)
class ImageResult:
    tag: str
    digest: str
    tarball: Path
    built: bool  # False when the cached tarball was reused
    imported: bool  # False when the engine already held this recipe's image
    build_seconds: float
    import_seconds: float


# --- where the inputs come from ---------------------------------------------------------
def apt_mirror(suite: str = SUITE, sources: tuple[Path, ...] = APT_SOURCES) -> str:
    """The Debian mirror apt uses for `suite` (deb822 .sources or one-line .list files)."""
    for text in _source_texts(sources):
        found = mirror_from_sources(text, suite)
        if found:
            return found
    return DEFAULT_MIRROR


def _source_texts(sources: tuple[Path, ...]) -> Iterator[str]:
    for source in sources:
        files = sorted(source.glob("*")) if source.is_dir() else [source]
        for path in files:
            if path.suffix in (".list", ".sources") or path == source:
                with contextlib.suppress(OSError):
                    yield path.read_text()


def mirror_from_sources(text: str, suite: str) -> str | None:
    """The first `deb` URI serving exactly `suite` (not `-security`, `-updates`)."""
    # One-line format: deb [options] URI SUITE COMPONENTS...
    for line in text.splitlines():
        words = re.sub(r"\[[^]]*\]", " ", line.split("#", 1)[0]).split()
        if len(words) >= 3 and words[0] == "deb" and words[2] == suite:
            return words[1].rstrip("/")
    # deb822 format: stanzas separated by blank lines.
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if line.startswith("#") or ":" not in line or line[0].isspace():
                continue
            key, value = line.split(":", 1)
            fields[key.strip().lower()] = value.strip()
        enabled = fields.get("enabled", "yes").lower() != "no"
        serves = "deb" in fields.get("types", "").split()
        if enabled and serves and suite in fields.get("suites", "").split() and fields.get("uris"):
            return fields["uris"].split()[0].rstrip("/")
    return None


def vagrant_public_key(gems: Path = VAGRANT_GEMS) -> str:
    """Vagrant's insecure public key, from Debian's vagrant package."""
    found = sorted(gems.glob("vagrant-*/keys/vagrant.pub"))
    if not found:
        raise ImageBuildError(
            f"Vagrant's insecure public key was not found under {gems}/vagrant-*/keys/: "
            "the node image authorizes it for user vagrant. Install Debian's vagrant: "
            "`apt-get install -y --no-install-recommends vagrant`."
        )
    return found[-1].read_text().strip()


def vagrant_private_key(gems: Path = VAGRANT_GEMS) -> Path:
    """The insecure private key: logs in to a machine Vagrant has not re-keyed (the node
    image started as a plain host, e.g. as an SSH provider's "existing machine")."""
    found = sorted(gems.glob("vagrant-*/keys/vagrant"))
    if not found:
        raise ImageBuildError(
            f"Vagrant's insecure private key was not found under {gems}/vagrant-*/keys/; "
            "install Debian's vagrant: `apt-get install -y --no-install-recommends vagrant`."
        )
    return found[-1]


def recipe_for(kv_backend: str | None) -> ImageRecipe:
    """The image every machine of a lab starts from: the node packages, plus the server of
    the lab's KV backend (the KV node is a machine of the same image)."""
    extra = KV_PACKAGES.get(kv_backend, ()) if kv_backend else ()
    return ImageRecipe(
        public_key=vagrant_public_key(),
        packages=(*NODE_PACKAGES, *extra),
        flavor=kv_backend if extra else "",
    )


def default_recipe() -> ImageRecipe:
    return recipe_for(DEFAULT_KV)


def tarball_flavor(tarball: Path) -> str:
    """The flavor a tarball's name carries: rootfs-<suite>-[<flavor>-]<digest>.tar."""
    parts = tarball.name.removesuffix(".tar").split("-")
    return "-".join(parts[2:-1])


# --- building ---------------------------------------------------------------------------
def debootstrap_argv(recipe: ImageRecipe, target: Path, mirror: str) -> list[str]:
    return [
        "debootstrap",
        "--variant=minbase",
        f"--include={','.join(sorted(recipe.packages))}",
        recipe.suite,
        str(target),
        mirror,
    ]


def configure_argv(target: Path, recipe: ImageRecipe) -> list[str]:
    # The key travels as an argument ("$1"), never inside the script text.
    script = recipe.configure_script
    return ["chroot", str(target), "/bin/sh", "-c", script, "configure", recipe.public_key]


def tar_argv(rootfs: Path, out: Path) -> list[str]:
    return ["tar", "--numeric-owner", "--xattrs", "-C", str(rootfs), "-cf", str(out), "."]


POLICY_RC_D = Path("/usr/sbin/policy-rc.d")


def missing_packages(packages: Iterable[str]) -> list[str]:
    """Debian packages of `packages` not installed on this machine."""
    missing = []
    for package in packages:
        proc = subprocess.run(
            ["dpkg-query", "-W", "-f=${Status}", package],
            capture_output=True,
            text=True,
            check=False,
        )
        if "install ok installed" not in proc.stdout:
            missing.append(package)
    return missing


def install_host_packages(packages: Iterable[str], on_item: OnItem | None = None) -> list[str]:
    """apt-get install what is missing of `packages` (no recommends: vagrant would pull
    libvirt); returns what was installed. A policy-rc.d that refuses every start keeps
    the packages' services from starting on the host; it is removed afterwards unless
    it was there before."""
    say = on_item or (lambda where, msg: None)
    missing = missing_packages(packages)
    if not missing:
        return []
    if os.geteuid() != 0:
        raise ImageBuildError(
            f"missing Debian packages {', '.join(missing)}; run as root to install them, "
            f"or `apt-get install -y --no-install-recommends {' '.join(missing)}`"
        )
    say("host", f"apt-get install {' '.join(missing)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    made_policy = not POLICY_RC_D.exists()
    if made_policy:
        POLICY_RC_D.write_text("#!/bin/sh\nexit 101\n")
        POLICY_RC_D.chmod(0o755)
    try:
        for argv in (
            ["apt-get", "update", "-qq"],
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
        ):
            proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
            if proc.returncode != 0:
                tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-10:])
                raise ImageBuildError(
                    f"could not install {', '.join(missing)} (exit {proc.returncode}):\n"
                    f"  $ {' '.join(argv)}\n{tail}"
                )
    finally:
        if made_policy:
            POLICY_RC_D.unlink(missing_ok=True)
    return missing


def missing_build_tools() -> list[tuple[str, str]]:
    gaps = []
    if os.geteuid() != 0:
        gaps.append(("root", "debootstrap and chroot need root: run as root"))
    for tool, package in (("debootstrap", "debootstrap"), ("chroot", "coreutils")):
        if not shutil.which(tool):
            gaps.append((tool, f"`apt-get install -y --no-install-recommends {package}` (Debian)"))
    return gaps


def ensure_rootfs(
    recipe: ImageRecipe,
    cache: Path = IMAGE_CACHE,
    mirror: str | None = None,
    on_item: OnItem | None = None,
) -> tuple[Path, bool]:
    """The recipe's root filesystem tarball: cached, or built now. Returns (path, built)."""
    say = on_item or (lambda where, msg: None)
    tarball = recipe.tarball(cache)
    if tarball.is_file():
        say("image", f"reusing cached root filesystem {tarball}")
        return tarball, False
    gaps = missing_build_tools()
    if gaps:
        detail = "; ".join(f"{what}: {fix}" for what, fix in gaps)
        raise ImageBuildError(f"cannot build the Vagrant node image: {detail}")
    cache.mkdir(parents=True, exist_ok=True)
    with _build_lock(cache):
        if tarball.is_file():  # another process built it while we waited
            say("image", f"reusing cached root filesystem {tarball}")
            return tarball, False
        _build(recipe, tarball, mirror or apt_mirror(recipe.suite), say)
    return tarball, True


@contextlib.contextmanager
def _build_lock(cache: Path) -> Iterator[None]:
    with open(cache / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _build(recipe: ImageRecipe, tarball: Path, mirror: str, say: OnItem) -> None:
    work = tarball.parent / f"build-{recipe.digest[:16]}"
    rootfs = work / "rootfs"
    _remove_build_dir(work)  # a build killed midway left it
    rootfs.mkdir(parents=True)
    partial = tarball.with_suffix(".partial")
    try:
        say("image", f"debootstrap {recipe.suite} from {mirror} (60-100 s)")
        _run_streaming(debootstrap_argv(recipe, rootfs, mirror), say)
        say("image", "adding user vagrant, sudo, sshd settings")
        _run_checked(configure_argv(rootfs, recipe))
        init = rootfs / INIT_PATH.lstrip("/")
        init.write_text(recipe.init_script)
        init.chmod(0o755)
        say("image", f"packing {tarball.name}")
        _run_checked(tar_argv(rootfs, partial))
        partial.rename(tarball)  # atomic: a cached tarball is always complete
        for old in tarball.parent.glob(f"rootfs-{recipe.suite}-*.tar"):
            # An older recipe of this flavor: 400 MB nothing will import again.
            if old != tarball and tarball_flavor(old) == recipe.flavor:
                old.unlink(missing_ok=True)
    finally:
        partial.unlink(missing_ok=True)
        _remove_build_dir(work)


def _run_checked(argv: list[str]) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise ImageBuildError(
            f"building the Vagrant node image failed (exit {proc.returncode}):\n"
            f"  $ {' '.join(argv[:6])}{' ...' if len(argv) > 6 else ''}\n{tail}"
        )


def _run_streaming(argv: list[str], say: OnItem) -> None:
    """Run debootstrap, reporting its phases (not its hundreds of lines) as progress."""
    lines: list[str] = []
    phase = ""
    started = time.monotonic()
    with subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip())
            current = _debootstrap_phase(line)
            if current and current != phase:
                phase = current
                say("image", f"debootstrap: {phase} ({time.monotonic() - started:.0f}s)")
    if proc.returncode != 0:
        tail = "\n".join(lines[-15:])
        hint = ""
        if any("Failed getting release file" in x or "Couldn't download" in x for x in lines):
            hint = (
                f"\nThe mirror ({argv[-1]}) did not answer: check that apt can reach it "
                "(`apt-get update`), or pass another mirror."
            )
        raise ImageBuildError(
            f"debootstrap failed (exit {proc.returncode}):\n  $ {' '.join(argv)}\n{tail}{hint}"
        )


# debootstrap's "I: ..." lines, most specific first, and the phase each one starts.
_PHASES = (
    ("Retrieving InRelease", "reading the release"),
    ("Retrieving Release", "reading the release"),
    ("Resolving dependencies", "resolving dependencies"),
    ("Retrieving Packages", "reading the package lists"),
    ("Retrieving ", "downloading packages"),
    ("Extracting ", "extracting the base system"),
    ("Installing core packages", "installing core packages"),
    ("Unpacking required packages", "unpacking required packages"),
    ("Configuring required packages", "configuring required packages"),
    ("Unpacking the base system", "unpacking the other packages"),
    ("Configuring the base system", "configuring the other packages"),
    ("Base system installed successfully", "done"),
)


def _debootstrap_phase(line: str) -> str | None:
    text = line.strip().removeprefix("I: ")
    for prefix, phase in _PHASES:
        if text.startswith(prefix):
            return phase
    return None


MNT_DETACH = 2
_libc = ctypes.CDLL(None, use_errno=True)


def _mounts_under(path: Path) -> list[str]:
    root = str(path)
    with open("/proc/self/mountinfo") as handle:
        points = [line.split()[4].replace("\\040", " ") for line in handle]
    return [p for p in points if p == root or p.startswith(root + "/")]


def _remove_build_dir(work: Path) -> None:
    # debootstrap mounts /proc and /sys inside the target; a killed build leaves them.
    for point in sorted(_mounts_under(work), key=len, reverse=True):
        _libc.umount2(point.encode(), MNT_DETACH)
    shutil.rmtree(work, ignore_errors=True)


def clear_cache(cache: Path = IMAGE_CACHE) -> list[Path]:
    """Remove every cached node image tarball (the next build starts from debootstrap)."""
    removed = sorted(cache.glob("rootfs-*.tar")) if cache.is_dir() else []
    for work in cache.glob("build-*") if cache.is_dir() else []:
        _remove_build_dir(work)
    shutil.rmtree(cache, ignore_errors=True)
    with contextlib.suppress(OSError):
        cache.parent.rmdir()  # /var/cache/overlaylab, when nothing else is cached
    return removed


# --- importing --------------------------------------------------------------------------
def engine_has_recipe(client: docker.DockerClient, tag: str, digest: str) -> bool:
    try:
        image = client.images.get(tag)
    except docker.errors.ImageNotFound:
        return False
    labels = (image.attrs.get("Config") or {}).get("Labels") or {}
    return bool(labels.get(RECIPE_LABEL) == digest)


def ensure_image(
    client: docker.DockerClient,
    tag: str,
    recipe: ImageRecipe | None = None,
    cache: Path = IMAGE_CACHE,
    mirror: str | None = None,
    on_item: OnItem | None = None,
) -> ImageResult:
    """Make `tag` on the engine `client` talks to hold this recipe's image.

    Idempotent: an engine already holding the recipe's image (by its label) is left as
    it is; a cached tarball is imported without building.
    """
    say = on_item or (lambda where, msg: None)
    recipe = recipe or default_recipe()
    started = time.monotonic()
    if engine_has_recipe(client, tag, recipe.digest):
        say("image", f"{tag} already holds recipe {recipe.digest[:16]}")
        return ImageResult(tag, recipe.digest, recipe.tarball(cache), False, False, 0.0, 0.0)
    tarball, built = ensure_rootfs(recipe, cache, mirror, on_item)
    build_seconds = time.monotonic() - started
    started = time.monotonic()
    say("image", f"docker import {tarball.name} as {tag}")
    repository, _, version = tag.rpartition(":") if ":" in tag.split("/")[-1] else (tag, "", "")
    client.api.import_image_from_file(
        str(tarball), repository=repository, tag=version or "latest", changes=recipe.changes()
    )
    if not engine_has_recipe(client, tag, recipe.digest):
        raise ImageBuildError(f"docker import of {tarball} did not produce {tag}")
    return ImageResult(
        tag, recipe.digest, tarball, built, True, build_seconds, time.monotonic() - started
    )
