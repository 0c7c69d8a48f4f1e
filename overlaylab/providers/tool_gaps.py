"""What a lab needs from a machine, as gaps: (what is missing, the command that fixes it).

Each provider's preflight (local/preflight.py, ssh/, vagrant/) puts these together for its
hosts. All gaps are reported at once, so a user on a fresh machine fixes everything in
one go instead of one error per attempt.
"""

from __future__ import annotations

import mmap
import os
import re
import shutil
import subprocess
from pathlib import Path

import docker
import docker.errors

from overlaylab.host_programs import BUSYBOX, HOST_TOOL_PACKAGES, HOST_TOOLS
from overlaylab.spec.models import ClusterSpec

APT = "apt-get install -y"


def which(binary: str) -> str | None:
    return shutil.which(binary, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")


def dockerd_binary(spec: ClusterSpec) -> str | None:
    """The dockerd the lab's engines would run on this machine (None: not found)."""
    wanted = spec.engine.dockerd or "dockerd"
    if "/" in wanted:
        return wanted if os.access(wanted, os.X_OK) else None
    return which(wanted)


# libkv registers each store from its own package; a dockerd built without one (Debian
# patches consul out) does not hold that package's path anywhere in its binary.
_STORE_PACKAGES = {
    "consul": b"libkv/store/consul",
    "etcd": b"libkv/store/etcd",
    "zk": b"libkv/store/zookeeper",
}


def binary_has_store(binary: str, scheme: str) -> bool:
    """Is libkv's `scheme` store (consul, etcd, zk) compiled into this dockerd?"""
    with open(binary, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
        return data.find(_STORE_PACKAGES[scheme]) != -1


def store_gaps(spec: ClusterSpec) -> list[tuple[str, str]]:
    """The engines' dockerd must exist, accept a cluster store at all (before 23.0) and
    have the store's backend compiled in."""
    binary = dockerd_binary(spec)
    if binary is None:
        if spec.engine.dockerd:
            return [
                (
                    f"engine.dockerd {spec.engine.dockerd} is not an executable here",
                    "point engine.dockerd at a dockerd binary (absolute path or a name on PATH)",
                )
            ]
        return []  # BASE_TOOLS reports a missing dockerd
    version = dockerd_version(binary)
    if version and spec.engine.uses_cluster_store and version >= (23, 0):
        # One cause, not two: from 23.0 dockerd has no cluster store at all, so a libkv
        # store missing from its binary is no news (and "use etcd" no fix).
        return [
            (
                f"dockerd {version[0]}.{version[1]} refuses cluster-store (removed in 23.0)",
                f"{APT} docker.io=20.10.* (Debian 12 ships 20.10), "
                "or use swarm mode with cluster-store: null",
            )
        ]
    url = spec.cluster_store_url() or ""
    scheme = url.split("://", 1)[0]
    if scheme in _STORE_PACKAGES and not binary_has_store(binary, scheme):
        why = (
            " (Debian's docker.io leaves consul out: 'avoid dependencies on consul')"
            if scheme == "consul"
            else ""
        )
        others = [
            backend
            for backend, package in (("etcd", "etcd"), ("zookeeper", "zk"))
            if package != scheme and binary_has_store(binary, package)
        ]
        instead = f"set kv.backend: {' or '.join(others)}, or " if others else ""
        return [
            (
                f"{binary} is built without the {scheme} cluster store{why}; its engines "
                f"would die with 'discovery service not supported' on {url}",
                f"{instead}set engine.dockerd to a dockerd that has it "
                "(Docker CE's static 20.10 binaries, or one built from moby 20.10)",
            )
        ]
    return []


def dockerd_version(binary: str | None = None) -> tuple[int, int] | None:
    binary = binary or which("dockerd")
    if not binary:
        return None
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False).stdout
    match = re.search(r"version (\d+)\.(\d+)", out)
    return (int(match[1]), int(match[2])) if match else None


def kernel_feature(module: str) -> bool:
    if Path(f"/sys/module/{module}").exists():
        return True
    return (
        subprocess.run(["modprobe", "-q", module], capture_output=True, check=False).returncode == 0
    )


def _host_engine_has(image: str) -> bool:
    try:
        client = docker.from_env(timeout=3)
        try:
            client.images.get(image)
            return True
        finally:
            client.close()
    except docker.errors.DockerException:
        return False


def swarm_image_gaps(spec: ClusterSpec) -> list[tuple[str, str]]:
    """Classic swarm runs from an image nothing can pull here: it must come from somewhere."""
    image = spec.orchestration.swarm_image
    if spec.orchestration.mode != "classic-swarm" or image in {i.name for i in spec.images}:
        return []
    if which("swarm") or _host_engine_has(image):
        return []
    return [
        (
            f"classic swarm needs the {image} image, and there is none to load: not in the "
            "spec's images, not in this machine's engine, no `swarm` binary on PATH",
            f"`docker pull {image} && docker save -o swarm.tar {image}` where a registry "
            "answers, then list it under images: with tarball: swarm.tar; or put a static "
            "classic swarm 1.2.9 binary on PATH as `swarm` (the lab builds the image from it)",
        )
    ]


def host_tool_gaps(spec: ClusterSpec) -> list[tuple[str, str]]:
    """What this machine itself needs whatever the provider: the probe image is built
    here, and compose runs here against the nodes' engines."""
    gaps: list[tuple[str, str]] = []
    if not BUSYBOX.exists():
        gaps.append(
            (
                f"{BUSYBOX} (static busybox for the offline probe image) is missing",
                f"{APT} busybox-static",
            )
        )
    for tool, path in HOST_TOOLS.items():
        if not path.exists():
            gaps.append(
                (
                    f"{path} (for the probe image's {tool}) is missing",
                    f"{APT} {HOST_TOOL_PACKAGES[tool]}",
                )
            )
    gaps += swarm_image_gaps(spec)
    if spec.stacks and not which("docker-compose"):
        gaps.append(
            ("`docker-compose` is not installed (the spec deploys stacks)", f"{APT} docker-compose")
        )
    return gaps
