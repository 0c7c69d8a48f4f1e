"""Faults the catalogue names but cannot inject here, and why: `--list` says so rather
than pretend."""

from __future__ import annotations

import os
from pathlib import Path

from overlaylab.context import LabContext
from overlaylab.faults.model import ALL_MODES, ActiveFault, FaultError, FaultKind, Options, Undo


def netem_missing() -> str:
    """Why delay and loss cannot be had: this kernel's lack of netem, or verify's."""
    release = os.uname().release
    module = Path("/lib/modules") / release / "kernel/net/sched"
    if not Path("/sys/module/sch_netem").exists() and not any(module.glob("sch_netem.ko*")):
        return (
            f"this kernel ({release}) has no netem queueing discipline (sch_netem), which "
            "tc needs for delay and loss ('Specified qdisc kind is unknown'); iptables can "
            "only drop everything or nothing"
        )
    return "not built: verify has no check that measures delay or loss, so no cause to expect"


def _refuse(lab: LabContext, targets: list[str], options: Options, undo: Undo) -> None:
    raise FaultError("this fault cannot be injected on this machine")


def _nothing(lab: LabContext, active: ActiveFault) -> None:
    return None


WHY = netem_missing()

KINDS = [
    FaultKind(
        name="delay",
        misery="added latency on a node's lab link (tc netem delay): slow gossip, timeouts",
        parameters="NODE; --option ms=N",
        expected_cause="",
        modes=ALL_MODES,
        inject_fn=_refuse,
        heal_fn=_nothing,
        options={"ms": "200"},
        unavailable=WHY,
    ),
    FaultKind(
        name="loss",
        misery="random packet loss on a node's lab link (tc netem loss): flapping paths",
        parameters="NODE; --option percent=N",
        expected_cause="",
        modes=ALL_MODES,
        inject_fn=_refuse,
        heal_fn=_nothing,
        options={"percent": "10"},
        unavailable=WHY,
    ),
]
