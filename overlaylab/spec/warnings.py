"""Warnings: a valid spec that will not do what its author expects.

Problems (semantic.py) stop a spec from loading. Warnings do not: the lab comes up,
then misbehaves in a way `verify` would only show afterwards. Each warning names the
YAML path (and its line, when the spec came from a file) and the exact change that
fixes it. `validate` and `up` print them; neither stops on them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

from overlaylab.spec.models import DRIVER_MTU_OPTION, ClusterSpec, OverlayNetwork
from overlaylab.spec.semantic import Loc, Locate, format_path

# VXLAN wraps every frame in inner Ethernet (14) + outer IPv4 (20) + UDP (8) + VXLAN (8).
VXLAN_OVERHEAD = 50
# libnetwork's overlay driver (drivers/overlay, the same in 20.10 for the legacy KV
# overlay and swarm mode) sizes a network for the MTU of the links it runs over:
# `com.docker.network.driver.mtu` when set, else 1500. Its VXLAN device and container
# interfaces get that minus the 50 bytes above (`maxMTU()`), so 1450 by default. The
# daemon's own `mtu` setting reaches only the default bridge, never an overlay.
OVERLAY_DEFAULT_LINK_MTU = 1500
ENCRYPTED_OPTION = "encrypted"
_WHOLE_NUMBER = re.compile(r"[0-9]+")


@dataclass(frozen=True)
class SpecWarning:
    loc: Loc
    message: str
    fix: str
    line: int | None = None

    @property
    def path(self) -> str:
        return format_path(self.loc)

    @property
    def where(self) -> str:
        return f"line {self.line}, {self.path}" if self.line is not None else self.path

    def __str__(self) -> str:
        return f"{self.where}: {self.message}; fix: {self.fix}"


Warn = Callable[[ClusterSpec], Iterator[SpecWarning]]


def spec_warnings(spec: ClusterSpec, locate: Locate | None = None) -> list[SpecWarning]:
    """Every warning for a loaded spec, in file order when `locate` gives lines."""
    found = [warning for warn in WARNINGS for warning in warn(spec)]
    if locate is None:
        return found
    located = [replace(w, line=locate(w.loc)[0]) for w in found]
    return sorted(located, key=lambda w: w.line or 0)


def overlay_link_mtu(network: OverlayNetwork) -> int:
    """The link MTU libnetwork sizes an overlay for (its containers get 50 bytes less)."""
    value = network.options.get(DRIVER_MTU_OPTION, "")
    # "0" and an absent option both mean the driver's default (`if n.mtu != 0`).
    if _WHOLE_NUMBER.fullmatch(value) and int(value) > 0:
        return int(value)
    return OVERLAY_DEFAULT_LINK_MTU


def overlay_mtu_too_large(spec: ClusterSpec) -> Iterator[SpecWarning]:
    """An overlay sized for links larger than the lab's: full-size packets are dropped.

    Small packets (ping, DNS, a TCP handshake) cross, so the lab looks healthy until an
    application sends a full-size packet; `verify` reports it as `mtu.df` failures.
    """
    lab_mtu = spec.lab.mtu
    for index, network in enumerate(spec.networks):
        if network.driver != "overlay":
            continue
        link_mtu = overlay_link_mtu(network)
        if link_mtu <= lab_mtu:
            continue
        if DRIVER_MTU_OPTION in network.options:
            loc: Loc = ("networks", index, "options", DRIVER_MTU_OPTION)
            told = (
                f'{DRIVER_MTU_OPTION}: "{network.options[DRIVER_MTU_OPTION]}" tells the '
                f"driver the links carry {link_mtu} bytes"
            )
        else:
            loc = ("networks", index)
            told = (
                f"Docker's overlay driver assumes {link_mtu}-byte links unless told "
                f"otherwise (containers get {link_mtu - VXLAN_OVERHEAD} bytes, {link_mtu} "
                "with the VXLAN headers)"
            )
        yield SpecWarning(
            loc=loc,
            message=(
                f"overlay {network.name} will drop full-size packets between nodes: "
                f"{told}, but lab.mtu is {lab_mtu}"
            ),
            fix=(
                f"{_set_option(network, str(lab_mtu))} (the driver takes it as the links' "
                f"MTU and gives containers {_container_mtu(network, lab_mtu)}), or raise "
                f"lab.mtu to {link_mtu} if the links carry that much"
            ),
        )


def _container_mtu(network: OverlayNetwork, link_mtu: int) -> str:
    inner = f"{link_mtu - VXLAN_OVERHEAD}"
    # An encrypted overlay also makes room for ESP (libnetwork's pktExpansion).
    return f"{inner} minus the IPsec overhead" if ENCRYPTED_OPTION in network.options else inner


def _set_option(network: OverlayNetwork, value: str) -> str:
    if network.options:
        return f'set `{DRIVER_MTU_OPTION}: "{value}"` in the options of network {network.name}'
    return f'set `options: {{{DRIVER_MTU_OPTION}: "{value}"}}` on network {network.name}'


WARNINGS: tuple[Warn, ...] = (overlay_mtu_too_large,)
