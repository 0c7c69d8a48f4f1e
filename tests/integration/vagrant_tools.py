"""What the vagrant provider's integration tests need of this machine, for their modules
to share (no test module imports another)."""

from __future__ import annotations

import pytest

from overlaylab.providers.vagrant import host_apt, image, recipe, rootfs

HOST_PACKAGES = ("vagrant", "debootstrap")
UP_TIMEOUT = 600  # a cold image build is 60-100 s of it


def host_tools_or_skip() -> None:
    """Install vagrant and debootstrap when missing (as CI does), else skip with why."""
    try:
        host_apt.install_host_packages(HOST_PACKAGES)
    except recipe.ImageBuildError as exc:
        pytest.skip(f"the vagrant provider needs {', '.join(HOST_PACKAGES)}: {exc}")
    cached = image.default_recipe().tarball().is_file()
    if not cached and rootfs.missing_build_tools():
        pytest.skip(f"cannot build the node image: {rootfs.missing_build_tools()}")
