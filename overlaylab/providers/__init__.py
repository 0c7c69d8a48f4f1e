"""Providers make hosts. The registry maps a spec's `provider.type` to its provider."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING

from overlaylab.errors import OverlaylabError

if TYPE_CHECKING:
    from overlaylab.layout import LabLayout
    from overlaylab.providers.base import Provider
    from overlaylab.spec.models import ClusterSpec

# provider.type -> "module:class", imported on demand so that a provider's own
# dependencies (fabric, python-vagrant) load only when a spec asks for it.
REGISTRY: dict[str, str] = {
    "local": "overlaylab.providers.local:LocalProvider",
    "ssh": "overlaylab.providers.ssh:SSHProvider",
    "vagrant": "overlaylab.providers.vagrant.provider:VagrantProvider",
    "docker-machine": "overlaylab.providers.docker_machine:DockerMachineProvider",
}
# Providers that read files named in the spec (keys) or name it in what they write
# (the vagrant machines file) get the spec's folder too.
TAKES_SPEC_DIR = {"ssh", "vagrant"}


def get_provider(spec: ClusterSpec, layout: LabLayout, spec_dir: Path | None = None) -> Provider:
    kind = spec.provider.type
    if kind not in REGISTRY:
        raise OverlaylabError(
            f"provider '{kind}' cannot bring a lab up yet: the providers that can are "
            f"{', '.join(sorted(REGISTRY))}. `invoke render` writes what the {kind} provider "
            "would run; `provider: {type: local}` runs the same topology on this machine."
        )
    module, name = REGISTRY[kind].split(":")
    kind_class = getattr(importlib.import_module(module), name)
    if kind in TAKES_SPEC_DIR:
        provider: Provider = kind_class(spec, layout, spec_dir)
    else:
        provider = kind_class(spec, layout)
    return provider
