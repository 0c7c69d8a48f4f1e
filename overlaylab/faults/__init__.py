"""The fault catalogue: the miseries verify diagnoses, injected on demand and healed.

    from overlaylab.faults import CATALOGUE, inject_fault, heal_faults, active_faults

    active = inject_fault(lab, "vxlan", ["node3"])      # refuses clearly, or does it
    kind = CATALOGUE["vxlan"]
    kind.cause_on(lab), kind.expected_nodes(lab, active)  # what verify should name
    heal_faults(lab, "vxlan")                             # or None: every active one

Beyond the planned API: `FaultKind.cause_on(lab)` is the rule id verify should name on
that lab (`expected_cause`, unless `causes_by_mode` has one for the lab's mode: gossip
blocked is `swarm_gossip_blocked` in swarm mode); the id is `Diagnosis.rule` in verify's
report (a rule function's name, or a check id for the one-cause-per-check rules).
`FaultKind.options` holds the `--option NAME=VALUE` names with their defaults, and
`targets` says what TARGET names ("node", "network" or "none"). A module adds faults by
listing its `KINDS` in `catalogue.py`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from overlaylab.faults.model import ActiveFault, FaultError, FaultKind
from overlaylab.faults.records import active_faults

if TYPE_CHECKING:
    from overlaylab.faults.catalogue import CATALOGUE
    from overlaylab.faults.core import heal_faults, inject_fault

# Loaded on first use: the catalogue brings every fault kind and the SDKs under them
# (0.1 s), which `status` and `down` (they read only the record) do without.
_LAZY = {"CATALOGUE": "catalogue", "heal_faults": "core", "inject_fault": "core"}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)


__all__ = [
    "CATALOGUE",
    "ActiveFault",
    "FaultError",
    "FaultKind",
    "active_faults",
    "heal_faults",
    "inject_fault",
]
