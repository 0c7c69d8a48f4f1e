"""The lab's record of its active faults, in its state file. Kept apart from the
catalogue: `status` and `down` read the record without loading every fault kind (and
the SDKs under them)."""

from __future__ import annotations

from overlaylab.context import LabContext
from overlaylab.faults.model import STATE_KEY, ActiveFault


def active_faults(lab: LabContext) -> list[ActiveFault]:
    return [ActiveFault.from_dict(d) for d in lab.state.get(STATE_KEY, []) or []]


def save_faults(lab: LabContext, faults: list[ActiveFault]) -> None:
    lab.state.set(STATE_KEY, [f.as_dict() for f in faults])
