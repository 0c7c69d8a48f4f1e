"""The machines file the top-level Vagrantfile reads (`.overlaylab/machines.json`).

One entry per node (the KV node included: it is a machine too) with the lab address
Vagrant gives it as a `private_network` (eth1, beside the provider's own eth0), and
the settings of the three provider blocks the Vagrantfile has: virtualbox and libvirt
(a VM from a box) and docker (a container from the offline node image, running sshd
and dockerd). Which one runs is the spec's `provider.vm_provider`; a spec of another
provider type renders the vagrant defaults, so any topology can be taken to VMs.
"""

from __future__ import annotations

import json
import shlex
from typing import Any

from overlaylab.spec.loader import LoadedSpec
from overlaylab.spec.models import ClusterSpec, DockerMachineSpec, VagrantProviderSpec
from overlaylab.templates import render

# `docker run` arguments that let a node container run its own dockerd in this
# sandbox (LAB-NOTES, "Vagrant - verified"): `--privileged` fails here for want of
# CAP_SYS_RESOURCE, so every other capability is granted by hand, the seccomp,
# AppArmor and /sys,/proc masks are lifted, every device may be created, and
# /var/lib/docker is a volume (overlayfs cannot sit on the container's overlayfs).
DOCKER_CREATE_ARGS_TEXT = (
    "--cap-add=ALL --cap-drop=SYS_RESOURCE --security-opt seccomp=unconfined "
    "--security-opt apparmor=unconfined --security-opt systempaths=unconfined "
    '--device-cgroup-rule "a *:* rwm" -v /var/lib/docker'
)
# Vagrant appends create_args to its `docker run` argv as they are (no shell), so
# each element is one argument: `a *:* rwm` without its quotes.
DOCKER_CREATE_ARGS: list[str] = shlex.split(DOCKER_CREATE_ARGS_TEXT)
SSH_USERNAME = "vagrant"
MACHINES_TEMPLATE = "machines.json.j2"


# docker-machine drivers and the Vagrant provider that makes the same kind of machine.
VM_PROVIDER_OF_DRIVER = {"virtualbox": "virtualbox", "kvm": "libvirt", "docker": "docker"}


def vagrant_options(spec: ClusterSpec) -> VagrantProviderSpec:
    """The spec's vagrant settings, or the defaults for a spec of another provider.

    A docker-machine spec already says which hypervisor its machines run on: its
    driver picks the Vagrant provider (the article's `driver: virtualbox` renders
    VirtualBox machines, not the model's libvirt default).
    """
    if isinstance(spec.provider, VagrantProviderSpec):
        return spec.provider
    if isinstance(spec.provider, DockerMachineSpec):
        vm_provider = VM_PROVIDER_OF_DRIVER.get(spec.provider.driver)
        if vm_provider is not None:
            return VagrantProviderSpec(type="vagrant", vm_provider=vm_provider)  # type: ignore[arg-type]
    return VagrantProviderSpec(type="vagrant")


def machine_name(spec: ClusterSpec, node: str) -> str:
    """The VM or container name: carries the lab's name, as every lab resource does
    (the same `ol-<cluster>.<node>` as the local provider's namespaces)."""
    return f"ol-{spec.name}.{node}"


def machines_data(loaded: LoadedSpec) -> dict[str, Any]:
    """machines.json as data (what the template lays out)."""
    spec = loaded.spec
    options = vagrant_options(spec)
    subnet = spec.lab.subnet
    return {
        "cluster": spec.name,
        "source": loaded.path.as_posix(),
        "spec_provider": spec.provider.type,
        "default_provider": options.vm_provider,
        "lab": {
            "subnet": str(subnet),
            "netmask": str(subnet.netmask),
            "prefix": subnet.prefixlen,
            "mtu": spec.lab.mtu,
            "network_name": f"ol-{spec.name}",
        },
        "ssh": {"username": SSH_USERNAME},
        "providers": {
            "virtualbox": {"box": options.box},
            "libvirt": {"box": options.box, "driver": "kvm", "prefix": f"ol-{spec.name}."},
            "docker": {
                "image": options.docker_image,
                "create_args": DOCKER_CREATE_ARGS,
                "has_ssh": True,
                "remains_running": True,
            },
        },
        "machines": [
            {
                "name": node.name,
                "hostname": node.name,
                "vm_name": machine_name(spec, node.name),
                "ip": str(node.address),
                "roles": list(node.roles),
                "box": options.box,
                "image": options.docker_image,
                "cpus": options.cpus,
                "memory": options.memory,
            }
            for node in spec.nodes
        ],
    }


def machines_json(loaded: LoadedSpec) -> str:
    text = render(MACHINES_TEMPLATE, **machines_data(loaded))
    json.loads(text)  # the template must lay out valid JSON; fail here, not in Ruby
    return text
