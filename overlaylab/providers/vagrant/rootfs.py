"""The node image's root filesystem: built with debootstrap and configured in a chroot,
packed as a tarball cached under IMAGE_CACHE by its recipe's digest (a build killed
midway leaves nothing a later run would take for complete)."""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from overlaylab.logtail import tail
from overlaylab.providers.vagrant.host_apt import apt_mirror
from overlaylab.providers.vagrant.recipe import (
    IMAGE_CACHE,
    INIT_PATH,
    ImageBuildError,
    ImageRecipe,
    OnItem,
)


def tarball_flavor(tarball: Path) -> str:
    """The flavor a tarball's name carries: rootfs-<suite>-[<flavor>-]<digest>.tar."""
    parts = tarball.name.removesuffix(".tar").split("-")
    return "-".join(parts[2:-1])


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
        said = tail(proc.stderr or proc.stdout, 15)
        raise ImageBuildError(
            f"building the Vagrant node image failed (exit {proc.returncode}):\n"
            f"  $ {' '.join(argv[:6])}{' ...' if len(argv) > 6 else ''}\n{said}"
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
        last = "\n".join(lines[-15:])
        hint = ""
        if any("Failed getting release file" in x or "Couldn't download" in x for x in lines):
            hint = (
                f"\nThe mirror ({argv[-1]}) did not answer: check that apt can reach it "
                "(`apt-get update`), or pass another mirror."
            )
        raise ImageBuildError(
            f"debootstrap failed (exit {proc.returncode}):\n  $ {' '.join(argv)}\n{last}{hint}"
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
