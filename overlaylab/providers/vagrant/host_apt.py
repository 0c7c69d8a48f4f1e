"""What the node image needs of this machine's apt: the Debian mirror it uses (debootstrap
reads the same), and Debian packages installed when missing (debootstrap, vagrant)."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
from collections.abc import Iterable, Iterator
from pathlib import Path

from overlaylab.logtail import tail
from overlaylab.providers.vagrant.recipe import SUITE, ImageBuildError, OnItem

DEFAULT_MIRROR = "http://deb.debian.org/debian"


APT_SOURCES = (Path("/etc/apt/sources.list"), Path("/etc/apt/sources.list.d"))


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
                said = tail(proc.stderr or proc.stdout, 10)
                raise ImageBuildError(
                    f"could not install {', '.join(missing)} (exit {proc.returncode}):\n"
                    f"  $ {' '.join(argv)}\n{said}"
                )
    finally:
        if made_policy:
            POLICY_RC_D.unlink(missing_ok=True)
    return missing
