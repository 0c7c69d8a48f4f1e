"""Vagrant's insecure key pair, from Debian's vagrant package: the node image authorizes
the public key for user vagrant; the private key logs in before Vagrant re-keys."""

from __future__ import annotations

from pathlib import Path

from overlaylab.providers.vagrant.recipe import ImageBuildError

# Where Debian's vagrant package keeps the gem's insecure key pair.
VAGRANT_GEMS = Path("/usr/share/rubygems-integration/all/gems")


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
