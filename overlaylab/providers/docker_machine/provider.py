"""The docker-machine provider: preflight tells, before anything starts, whether the
machines of machines.sh can be made here, and what to do otherwise.

docker-machine's drivers make VMs (VirtualBox, cloud APIs) or take over hosts over SSH
(`generic`: sshd, sudo and systemd on the target); `--swarm` pulls the swarm image,
so it needs a registry. Where its binary or its driver cannot run, the rendered
machines.sh is the way: run it where they can.
"""

from __future__ import annotations

import ipaddress
import shutil
from collections.abc import Callable, Iterator

from overlaylab.errors import OverlaylabError, PreflightError
from overlaylab.layout import LabLayout
from overlaylab.providers.base import Node
from overlaylab.spec.models import ClusterSpec, DockerMachineSpec

# What each driver needs on this machine besides docker-machine itself.
DRIVER_NEEDS = {
    "virtualbox": ("VBoxManage", "VirtualBox (its VBoxManage command)"),
    "kvm": ("virsh", "libvirt (its virsh command) and docker-machine-driver-kvm"),
}


def render_hint(spec_name: str) -> str:
    return (
        f"`invoke render -i <spec>` writes .overlaylab/render/{spec_name}/machines.sh with "
        "the docker-machine commands for this spec: run it on a machine that has "
        "docker-machine and the driver"
    )


class DockerMachineProvider:
    name = "docker-machine"

    def __init__(self, spec: ClusterSpec, layout: LabLayout) -> None:
        assert isinstance(spec.provider, DockerMachineSpec)
        self.spec = spec
        self.layout = layout
        self.options = spec.provider

    @property
    def host_address(self) -> ipaddress.IPv4Address | None:
        return None

    def preflight(self) -> list[tuple[str, str]]:
        gaps: list[tuple[str, str]] = []
        if shutil.which("docker-machine") is None:
            gaps.append(("`docker-machine` is not on PATH", render_hint(self.spec.name)))
        driver = self.options.driver
        if driver in DRIVER_NEEDS and shutil.which(DRIVER_NEEDS[driver][0]) is None:
            gaps.append(
                (
                    f"the {driver} driver needs {DRIVER_NEEDS[driver][1]}, which this machine "
                    "lacks",
                    f"use a machine that has it, or `provider: {{type: local}}` to run the "
                    f"same topology here; {render_hint(self.spec.name)}",
                )
            )
        if self.spec.orchestration.mode == "classic-swarm":
            gaps.append(
                (
                    "--swarm makes docker-machine pull the swarm image, and no registry is "
                    "reachable from a lab without one",
                    "side-load the swarm image on every machine first, or run machines.sh "
                    "where a registry is reachable",
                )
            )
        return gaps

    def _unavailable(self) -> OverlaylabError:
        gaps = self.preflight() or [
            (
                "running machines.sh through this provider is not supported yet",
                render_hint(self.spec.name),
            )
        ]
        return PreflightError(gaps)

    def provision(self, on_item: Callable[[str, str], None] | None = None) -> None:
        raise self._unavailable()

    def destroy(self) -> list[str]:
        # Nothing was made here by this provider: `up` stops at preflight.
        return []

    def exists(self) -> bool:
        return False

    def node(self, name: str) -> Node:
        raise self._unavailable()

    def nodes(self) -> Iterator[Node]:
        raise self._unavailable()
