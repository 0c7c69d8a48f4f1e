"""Images, without a registry: the probe image is built here from Debian's static
busybox; every other image is side-loaded from a tarball or the host's own engine."""

from __future__ import annotations

import functools
import hashlib
import io
import subprocess
import tarfile
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import docker
import docker.errors

from overlaylab import probe_tools
from overlaylab.context import LabContext
from overlaylab.errors import OverlaylabError, on_node
from overlaylab.host_programs import BUSYBOX, HOST_TOOLS
from overlaylab.spec.compose import UNREADABLE as COMPOSE_UNREADABLE
from overlaylab.spec.compose import read_compose_file, read_regular_bytes
from overlaylab.spec.models import PROBE_IMAGE, Stack
from overlaylab.up import app_image
from overlaylab.up.classic_swarm import IMAGE_CHANGES, swarm_binary, swarm_nodes, swarm_rootfs
from overlaylab.up.rootfs import shared_libraries
from overlaylab.up.run import UpRun

PROBE_PAGE = b"overlaylab probe\n"
# Where the host tools (HOST_TOOLS) sit in the probe image, called by absolute path.
HOST_TOOLS_DIR = "opt/host/bin"


def _add_file(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), mode
    tar.addfile(info, io.BytesIO(data))


def _add_dir(tar: tarfile.TarFile, name: str) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.mode = tarfile.DIRTYPE, 0o755
    tar.addfile(info)


def build_probe_rootfs(busybox: Path = BUSYBOX) -> bytes:
    """A rootfs tarball: static busybox, one symlink per applet, a page for httpd and
    the probe tools (`wget` and `curl` are the probe's own HTTP client, not busybox's).

    Deterministic (no timestamps), so the same busybox always gives the same image.
    """
    applets = subprocess.run(
        [str(busybox), "--list"], capture_output=True, text=True, check=True
    ).stdout.split()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for folder in ("bin", "etc", "tmp", "www", "proc", "sys", "dev"):
            _add_dir(tar, folder)
        _add_file(tar, "bin/busybox", busybox.read_bytes(), 0o755)
        for applet in sorted(set(applets) - {"busybox"} - set(probe_tools.COMMANDS)):
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type, link.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(link)
        for command, tool in sorted(probe_tools.COMMANDS.items()):
            link = tarfile.TarInfo(f"bin/{command}")
            link.type, link.linkname = tarfile.SYMTYPE, tool
            tar.addfile(link)
        _add_file(tar, "etc/passwd", b"root:x:0:0:root:/:/bin/sh\n")
        _add_file(tar, "etc/group", b"root:x:0:\n")
        _add_file(tar, "www/index.html", PROBE_PAGE)
        _add_host_tools(tar)
        _add_dir(tar, probe_tools.IMAGE_DIR)
        for tool in probe_tools.TOOLS:
            _add_file(tar, f"{probe_tools.IMAGE_DIR}/{tool}", probe_tools.source(tool), 0o755)
    return buffer.getvalue()


def _add_host_tools(tar: tarfile.TarFile) -> None:
    added: set[str] = set()

    def add_path(name: str, source: Path, mode: int) -> None:
        parts = name.strip("/").split("/")
        for depth in range(1, len(parts)):
            folder = "/".join(parts[:depth])
            if folder not in added:
                _add_dir(tar, folder)
                added.add(folder)
        if name.strip("/") not in added:
            _add_file(tar, name.strip("/"), source.resolve().read_bytes(), mode)
            added.add(name.strip("/"))

    for folder in ("bin", "etc", "tmp", "www", "proc", "sys", "dev"):
        added.add(folder)
    for tool, binary in HOST_TOOLS.items():
        add_path(f"{HOST_TOOLS_DIR}/{tool}", binary, 0o755)
        for library in shared_libraries(binary):
            add_path(library, Path(library), 0o755)


_ROOTFS_BUILD = threading.Lock()


def _probe_rootfs() -> bytes:
    """The probe rootfs, built once per process. The images step and verify's probe start
    ask for it from a thread per engine at once: without the lock each thread built its
    own 11 MB tarball (ten at once on ten engines, each holding the GIL)."""
    with _ROOTFS_BUILD:
        return _built_probe_rootfs()


@functools.cache
def _built_probe_rootfs() -> bytes:
    return build_probe_rootfs()


# The probe image's tag stays overlaylab/probe:1 (stacks name it); this label tells
# which rootfs it holds, so a changed one (new tools, a host upgrade) is imported again.
ROOTFS_LABEL = "overlaylab.probe-rootfs"


def _rootfs_digest() -> str:
    return _digest(_probe_rootfs())


@functools.lru_cache(maxsize=4)
def _digest(data: bytes) -> str:
    """Hashed once per rootfs, not once per engine and image check (it is 11 MB)."""
    return hashlib.sha256(data).hexdigest()[:16]


def _has_image(client: docker.DockerClient, name: str) -> bool:
    try:
        image = client.images.get(name)
    except docker.errors.ImageNotFound:
        return False
    if name != PROBE_IMAGE:
        return True
    return (image.labels or {}).get(ROOTFS_LABEL) == _rootfs_digest()


def ensure_probe_image(ctx: LabContext, node: str, client: docker.DockerClient) -> None:
    """The probe image as this overlaylab builds it, on `node`: verify calls this before it
    starts a probe, since a lab made by an older overlaylab holds an older image."""
    if import_probe_image(client):
        _record_loaded(ctx, node, [PROBE_IMAGE])


def import_probe_image(client: docker.DockerClient) -> bool:
    """Import the probe image unless the engine holds this very rootfs; True if it did."""
    if _has_image(client, PROBE_IMAGE):
        return False
    _import_probe_rootfs(client)
    return True


def _import_probe_rootfs(client: docker.DockerClient) -> None:
    repo, tag = PROBE_IMAGE.rsplit(":", 1)
    labels = [f"LABEL overlaylab.role=probe {ROOTFS_LABEL}={_rootfs_digest()}"]
    client.api.import_image_from_data(
        _probe_rootfs(), repository=repo, tag=tag, changes=["ENV PATH=/bin", 'CMD ["sh"]', *labels]
    )


def _image_tarball(ctx: LabContext, name: str, tarball: str | None) -> bytes:
    """`docker save` bytes for a spec image, from its tarball or the host's engine."""
    if tarball:
        path = ctx.resolve_spec_path(tarball)
        try:
            return read_regular_bytes(path)
        except OSError as exc:
            raise OverlaylabError(f"image {name}: cannot read tarball {path}: {exc}") from exc
    cache = ctx.layout.images_dir / (name.replace("/", "_").replace(":", "_") + ".tar")
    if cache.exists():
        return cache.read_bytes()
    try:
        host = docker.from_env()
        data = b"".join(host.images.get(name).save(named=True))
    except docker.errors.DockerException as exc:
        raise OverlaylabError(
            f"image {name}: no tarball given and the host's engine cannot provide it ({exc}). "
            f"Nothing is pulled in a lab: `docker save -o FILE {name}` somewhere it exists "
            "and set images[].tarball to that file."
        ) from exc
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_bytes(data)
    return data


def _record_loaded(ctx: LabContext, node: str, names: list[str]) -> None:
    """Add to the node's record of images the lab loaded (see NodePaths.images_record)."""
    handle = ctx.node(node)
    known = (handle.read_file(handle.paths.images_record) or b"").decode().split()
    names = sorted(set(known) | set(names))
    handle.put_file(handle.paths.images_record, "".join(f"{n}\n" for n in names).encode())


def _compose_text(ctx: LabContext, stack: Stack) -> str:
    try:
        return read_compose_file(ctx.resolve_spec_path(stack.file)).text
    except COMPOSE_UNREADABLE:
        return ""  # the stacks step reports a missing file


def ensure_images(ctx: LabContext, run: UpRun) -> bool:
    spec = ctx.spec
    engine_nodes = [n.name for n in spec.engine_nodes]
    wanted: list[tuple[str, str, str | None]] = [(n, PROBE_IMAGE, None) for n in engine_nodes]
    for image in spec.images:
        for node in image.nodes or engine_nodes:
            wanted.append((node, image.name, image.tarball))
    if app_image.stacks_use_app_image([_compose_text(ctx, stack) for stack in spec.stacks]):
        wanted += [(n, app_image.APP_IMAGE, None) for n in engine_nodes]
    swarm_image = spec.orchestration.swarm_image
    if spec.orchestration.mode == "classic-swarm" and swarm_image not in {
        i.name for i in spec.images
    }:
        wanted += [(n.name, swarm_image, None) for n in swarm_nodes(spec)]

    def saved_from_a_holder(name: str) -> bytes | None:
        """`docker save` of `name` from an engine that holds it as it should be, if any
        does: an engine added to the lab later gets the id the others have."""
        for node in dict.fromkeys(where for where, image, _ in wanted if image == name):
            with on_node(node), ctx.node(node).engine() as client:
                if _has_image(client, name):
                    return b"".join(client.images.get(name).save(named=True))
        return None

    one_id = (
        _OneIdEverywhere(saved_from_a_holder)
        if spec.orchestration.mode == "classic-swarm"
        else None
    )

    def load(item: tuple[str, str, str | None]) -> bool:
        node, name, tarball = item
        with on_node(node), ctx.node(node).engine() as client:
            if _has_image(client, name):
                return False
            if one_id is not None and tarball is None:
                one_id.load(client, name, make=lambda: _make_or_load(ctx, client, name, None))
            else:
                _make_or_load(ctx, client, name, tarball)
            if not _has_image(client, name):
                raise OverlaylabError(f"image {name} did not appear on {node} after loading it")
        ctx.progress.item(node, f"loaded {name}")
        return True

    with ThreadPoolExecutor(max_workers=max(1, len(engine_nodes))) as pool:
        changed = list(pool.map(load, wanted))
    loaded = [item for item, made in zip(wanted, changed, strict=True) if made]
    for node in sorted({node for node, _, _ in loaded}):
        _record_loaded(ctx, node, [name for where, name, _ in loaded if where == node])
    if not any(changed):
        ctx.progress.item("images", f"{len(wanted)} present already")
    return any(changed)


class _OneIdEverywhere:
    """Each image made once, on the first engine that needs it, and `docker save`d from
    there into every other: one image id on every engine.

    Imports on each engine gave each its own id (import stamps the time). A classic swarm
    master shows one engine's id for a name, and which one changed when an engine
    restarted; docker-compose compares that id with its containers', so `up` through the
    master re-created the stack's containers after a restart, and the master's port
    filter refused the new web container while the old one still held port 80."""

    def __init__(self, saved_elsewhere: Callable[[str], bytes | None]) -> None:
        # An engine of the lab may hold the image already (a node added to a running
        # lab): its copy is the one to spread, not a newly made one with another id.
        self._saved_elsewhere = saved_elsewhere
        self._archives: dict[str, bytes] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def load(self, client: docker.DockerClient, name: str, make: Callable[[], None]) -> None:
        with self._guard:
            lock = self._locks.setdefault(name, threading.Lock())
        with lock:
            archive = self._archives.get(name)
            if archive is None:
                archive = self._saved_elsewhere(name)
            if archive is None:
                make()
                self._archives[name] = b"".join(client.images.get(name).save(named=True))
                return
            self._archives[name] = archive
        client.images.load(archive)


def _make_or_load(
    ctx: LabContext, client: docker.DockerClient, name: str, tarball: str | None
) -> None:
    """Put `name` on the engine: built here (the probe, the app image, classic swarm's
    image from a `swarm` binary) or loaded from its tarball or the host's engine."""
    if name == PROBE_IMAGE:
        _import_probe_rootfs(client)  # _has_image just found it missing or older
    elif name == app_image.APP_IMAGE:
        repo, tag = name.rsplit(":", 1)
        client.api.import_image_from_data(
            app_image.app_rootfs(), repository=repo, tag=tag, changes=app_image.IMAGE_CHANGES
        )
    elif name == ctx.spec.orchestration.swarm_image and tarball is None and swarm_binary():
        repo, tag = name.rsplit(":", 1) if ":" in name else (name, "latest")
        binary = swarm_binary()
        assert binary is not None
        client.api.import_image_from_data(
            swarm_rootfs(binary), repository=repo, tag=tag, changes=IMAGE_CHANGES
        )
    else:
        client.images.load(_image_tarball(ctx, name, tarball))
