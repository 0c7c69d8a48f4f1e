"""Every fault kind, by name: the catalogue `invoke fault --list` shows."""

from __future__ import annotations

from overlaylab.faults import classic, containers, dns, network, services, swarm, unavailable
from overlaylab.faults.model import FaultKind

# Add a module's KINDS here to add its faults: names must be unique.
CATALOGUE: dict[str, FaultKind] = {
    kind.name: kind
    for kind in (
        *network.KINDS,
        *services.KINDS,
        *containers.KINDS,
        *dns.KINDS,
        *swarm.KINDS,
        *classic.KINDS,
        *unavailable.KINDS,
    )
}
