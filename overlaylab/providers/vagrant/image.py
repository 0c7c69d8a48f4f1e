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

By job: recipe.py (what the image holds, and its hash), keys.py (Vagrant's insecure
keys), host_apt.py (apt's mirror, and Debian packages this machine lacks), rootfs.py
(debootstrap, the tarball cache); this module makes an engine hold the image.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import docker

from overlaylab.providers.vagrant import keys
from overlaylab.providers.vagrant.recipe import (
    DEFAULT_KV,
    IMAGE_CACHE,
    KV_PACKAGES,
    NODE_PACKAGES,
    RECIPE_LABEL,
    ImageBuildError,
    ImageRecipe,
    OnItem,
)
from overlaylab.providers.vagrant.rootfs import ensure_rootfs


def recipe_for(kv_backend: str | None) -> ImageRecipe:
    """The image every machine of a lab starts from: the node packages, plus the server of
    the lab's KV backend (the KV node is a machine of the same image)."""
    extra = KV_PACKAGES.get(kv_backend, ()) if kv_backend else ()
    return ImageRecipe(
        public_key=keys.vagrant_public_key(),
        packages=(*NODE_PACKAGES, *extra),
        flavor=kv_backend if extra else "",
    )


def default_recipe() -> ImageRecipe:
    return recipe_for(DEFAULT_KV)


@dataclass(frozen=True)
class ImageResult:
    tag: str
    digest: str
    tarball: Path
    built: bool  # False when the cached tarball was reused
    imported: bool  # False when the engine already held this recipe's image
    build_seconds: float
    import_seconds: float


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
