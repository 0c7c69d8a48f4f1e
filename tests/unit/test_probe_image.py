"""The offline probe image's rootfs, built from a static busybox."""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

import pytest

from overlaylab import probe_tools
from overlaylab.host_programs import BUSYBOX
from overlaylab.up.steps.images import PROBE_PAGE, build_probe_rootfs


def members(data: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        infos = tar.getmembers()
    names = [i.name for i in infos]
    assert len(names) == len(set(names)), "duplicate tar members"
    return {i.name: i for i in infos}


def read(data: bytes, name: str) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        handle = tar.extractfile(name)
        assert handle is not None
        return handle.read()


@pytest.fixture(scope="module")
def rootfs() -> bytes:
    if not BUSYBOX.exists():
        pytest.skip(f"{BUSYBOX} is not installed")
    return build_probe_rootfs()


def test_busybox_binary_is_executable_and_intact(rootfs: bytes) -> None:
    info = members(rootfs)["bin/busybox"]
    assert info.isreg()
    assert info.mode == 0o755
    assert read(rootfs, "bin/busybox") == BUSYBOX.read_bytes()


@pytest.mark.parametrize("applet", ["sh", "nc", "httpd", "ping", "nslookup"])
def test_applets_are_symlinks_to_busybox(rootfs: bytes, applet: str) -> None:
    info = members(rootfs)[f"bin/{applet}"]
    assert info.issym()
    assert info.linkname == "busybox"


@pytest.mark.parametrize("command", ["wget", "curl"])
def test_wget_and_curl_are_the_probes_http_client(rootfs: bytes, command: str) -> None:
    """Not busybox's wget, which segfaults on Debian 12 (exit 139)."""
    info = members(rootfs)[f"bin/{command}"]
    assert info.issym() and info.linkname == probe_tools.HTTP_GET
    assert members(rootfs)[probe_tools.HTTP_GET.lstrip("/")].mode == 0o755


def test_every_listed_applet_has_a_link(rootfs: bytes) -> None:
    applets = set(
        subprocess.run([str(BUSYBOX), "--list"], capture_output=True, text=True).stdout.split()
    )
    links = {n.removeprefix("bin/") for n, i in members(rootfs).items() if i.issym()}
    assert links == (applets - {"busybox"}) | set(probe_tools.COMMANDS)


def test_files_for_httpd_and_users(rootfs: bytes) -> None:
    infos = members(rootfs)
    assert read(rootfs, "www/index.html") == PROBE_PAGE
    assert read(rootfs, "etc/passwd").startswith(b"root:x:0:0:")
    assert b"/bin/sh" in read(rootfs, "etc/passwd")
    assert read(rootfs, "etc/group") == b"root:x:0:\n"
    for folder in ("bin", "etc", "tmp", "www", "proc", "sys", "dev"):
        assert infos[folder].isdir(), folder


def test_deterministic(rootfs: bytes) -> None:
    assert build_probe_rootfs() == rootfs
    assert all(i.mtime == 0 and i.uid == 0 and i.gid == 0 for i in members(rootfs).values())


def test_fake_busybox_listing_itself_does_not_replace_the_binary(tmp_path: Path) -> None:
    fake = tmp_path / "busybox"
    fake.write_text("#!/bin/sh\nprintf 'sh\\nbusybox\\nls\\nsh\\n'\n")
    fake.chmod(0o755)
    data = build_probe_rootfs(fake)
    infos = members(data)
    assert infos["bin/busybox"].isreg()
    assert read(data, "bin/busybox") == fake.read_bytes()
    links = sorted(n for n, i in infos.items() if i.issym())
    assert links == ["bin/curl", "bin/ls", "bin/sh", "bin/wget"]
    assert build_probe_rootfs(fake) == data


def test_threads_asking_at_once_build_the_rootfs_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The images step and verify's probe start ask from a thread per engine at once."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from overlaylab.up.steps import images

    builds: list[int] = []
    inside = threading.Event()

    def build() -> bytes:
        builds.append(1)
        inside.wait(0.5)  # the other threads ask while this build runs
        return b"rootfs"

    monkeypatch.setattr(images, "build_probe_rootfs", build)
    images._built_probe_rootfs.cache_clear()
    try:
        with ThreadPoolExecutor(max_workers=10) as pool:
            asked = [pool.submit(images._rootfs_digest) for _ in range(10)]
            inside.set()
            digests = {f.result() for f in asked}
        assert builds == [1]
        assert len(digests) == 1
    finally:
        images._built_probe_rootfs.cache_clear()
