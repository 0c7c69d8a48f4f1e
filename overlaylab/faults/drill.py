"""The drill: the diagnosis's self-test, one real fault at a time.

On a green lab, for each fault of the catalogue that applies to it: inject it, run
verify until the diagnosis names the fault's cause (or a window passes), heal it, and
run verify until the lab is green again. Each fault gives a row: what verify should
name and on which nodes, what it named, the checks that failed, and how long the
diagnosis and the return to green took. A miss, a wrong node, or any cause the fault
does not explain fails the drill: verify must never blame what is not broken.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from overlaylab.context import LabContext
from overlaylab.errors import OverlaylabError
from overlaylab.faults.catalogue import CATALOGUE
from overlaylab.faults.core import active_faults, heal_faults, inject_fault
from overlaylab.faults.model import FaultKind
from overlaylab.verify.diagnosis import Diagnosis
from overlaylab.verify.run import VerifyReport, run_verify, select_checks

Outcome = Literal[
    "right", "missed", "wrong nodes", "false cause", "not green", "error", "not applicable"
]
# How long a fault's evidence may take to show: serf and the swarm's heartbeats declare
# a silent member failed after a few seconds, raft elections take longer.
DIAGNOSIS_WINDOW = 60.0
# How long the lab may take to be green again after heal: engines restarted by `up`
# register at their next heartbeat, a merged gossip cluster passes names on again.
GREEN_WINDOW = 120.0
PAUSE = 1.0  # between two verifies of one fault: let the network move on


@dataclass
class DrillRow:
    fault: str
    expected: str  # the diagnosis rule verify should name
    outcome: Outcome
    expected_nodes: list[str] = field(default_factory=list)
    diagnosed: list[str] = field(default_factory=list)  # rule ids named, in report order
    causes: list[str] = field(default_factory=list)  # their sentences
    nodes: list[str] = field(default_factory=list)  # the nodes the expected rule named
    false_causes: list[str] = field(default_factory=list)
    failed_checks: list[str] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)
    to_diagnosis: float | None = None  # seconds from the fault in place to its diagnosis
    to_green: float | None = None  # seconds from heal's start to a green verify
    verifies: int = 0
    note: str = ""

    @property
    def counted(self) -> bool:
        return self.outcome != "not applicable"

    @property
    def ok(self) -> bool:
        return self.outcome in ("right", "not applicable")


@dataclass
class DrillReport:
    cluster: str
    rows: list[DrillRow] = field(default_factory=list)
    seconds: float = 0.0
    stopped: str = ""  # why the drill ended early, if it did

    @property
    def ok(self) -> bool:
        return not self.stopped and all(r.ok for r in self.rows)

    @property
    def counted(self) -> list[DrillRow]:
        return [r for r in self.rows if r.counted]


Progress = Callable[[str], None]


def choose(only: Sequence[str] = ()) -> list[FaultKind]:
    """The faults to drill: every one, or those named (refusing names it does not know)."""
    if not only:
        return list(CATALOGUE.values())
    unknown = [name for name in only if name not in CATALOGUE]
    if unknown:
        raise OverlaylabError(
            f"no fault kind {', '.join(repr(u) for u in unknown)}; "
            f"`invoke fault --list` shows them: {', '.join(CATALOGUE)}"
        )
    return [CATALOGUE[name] for name in dict.fromkeys(only)]


def run_drill(
    lab: LabContext,
    kinds: Sequence[FaultKind],
    timeout: float = 5.0,
    progress: Progress = lambda line: None,
) -> DrillReport:
    """Drill every fault of `kinds` on `lab`; refuse a lab that is not green, or one
    with faults already in it."""
    started = time.monotonic()
    report = DrillReport(cluster=lab.spec.name)
    _refuse_unless_green(lab, timeout)
    for kind in kinds:
        why = kind.applies(lab)
        if why:
            report.rows.append(_not_applicable(lab, kind, why))
            progress(f"{kind.name}: does not apply: {why}")
            continue
        if report.stopped:
            report.rows.append(_not_run(lab, kind, report.stopped))
            continue
        progress(f"{kind.name}: injecting ({kind.misery})")
        row = drill_one(lab, kind, timeout, progress)
        report.rows.append(row)
        progress(f"{kind.name}: {_summary(row)}")
        if (row.outcome == "not green" or active_faults(lab)) and not _repaired(
            lab, timeout, progress
        ):
            report.stopped = f"the lab did not come back green after {kind.name}"
    report.seconds = time.monotonic() - started
    return report


def _repaired(lab: LabContext, timeout: float, progress: Progress) -> bool:
    """After a heal that left the lab failing (the row says so), `up` as a person would
    run it: green again, the drill goes on with the next fault; else it stops there."""
    if active_faults(lab):
        return False  # a fault still recorded: up does not undo it
    from overlaylab.up.pipeline import up  # only when a heal fell short

    progress("the lab is not green after heal: running `up` to go on with the drill")
    try:
        up(lab)
    except Exception as exc:
        progress(f"`up` failed: {exc}")
        return False
    return _verify(lab, timeout).ok


def _refuse_unless_green(lab: LabContext, timeout: float) -> None:
    active = active_faults(lab)
    if active:
        raise OverlaylabError(
            f"lab '{lab.spec.name}' has active faults ({', '.join(f.kind for f in active)}): "
            "`invoke heal --all` first"
        )
    first = _verify(lab, timeout)
    if not first.ok:
        causes = "; ".join(d.cause for d in first.diagnosis) or "verify fails"
        raise OverlaylabError(
            f"lab '{lab.spec.name}' is not green, so a drill could not tell its faults from "
            f"what is already broken: {causes}. `invoke verify` shows it; `invoke up` "
            "repairs most of it"
        )


def _verify(lab: LabContext, timeout: float) -> VerifyReport:
    return run_verify(lab, select_checks(), timeout=timeout)


def drill_one(lab: LabContext, kind: FaultKind, timeout: float, progress: Progress) -> DrillRow:
    """Inject one fault, wait for its diagnosis, heal it, wait for green."""
    row = DrillRow(fault=kind.name, expected=kind.cause_on(lab), outcome="missed")
    try:
        active = inject_fault(lab, kind.name)
    except Exception as exc:
        row.outcome, row.note = "error", f"inject failed: {exc}"
        _heal_quietly(lab, kind, row)
        return row
    row.targets = list(active.targets)
    row.expected_nodes = kind.expected_nodes(lab, active)
    try:
        _wait_for_diagnosis(lab, kind, row, timeout, progress)
    finally:
        _heal_and_wait(lab, kind, row, timeout, progress)
    return row


def _wait_for_diagnosis(
    lab: LabContext, kind: FaultKind, row: DrillRow, timeout: float, progress: Progress
) -> None:
    allowed = {row.expected, *kind.also_causes}
    placed = time.monotonic()
    deadline = placed + DIAGNOSIS_WINDOW
    seen_false: dict[str, Diagnosis] = {}
    while True:
        report = _verify(lab, timeout)
        row.verifies += 1
        named = [d for d in report.diagnosis if d.rule == row.expected]
        for d in report.diagnosis:
            if d.rule not in allowed:
                seen_false.setdefault(d.cause, d)
        if named or time.monotonic() >= deadline:
            break
        progress(
            f"{kind.name}: verify {row.verifies} names "
            + (", ".join(d.rule for d in report.diagnosis) or "nothing yet")
            + f" ({time.monotonic() - placed:.0f}s)"
        )
        time.sleep(PAUSE)
    row.diagnosed = [d.rule for d in report.diagnosis]
    row.causes = [d.cause for d in report.diagnosis]
    row.failed_checks = sorted({r.check for r in report.results if r.failed})
    row.false_causes = [f"{d.cause} [{d.rule}]" for d in seen_false.values()]
    if not named:
        row.outcome = "missed"
        return
    row.to_diagnosis = time.monotonic() - placed
    row.nodes = sorted({n for d in named for n in d.nodes})
    if row.false_causes:
        row.outcome = "false cause"
    elif row.nodes != row.expected_nodes:
        row.outcome = "wrong nodes"
    else:
        row.outcome = "right"


def _heal_and_wait(
    lab: LabContext, kind: FaultKind, row: DrillRow, timeout: float, progress: Progress
) -> None:
    started = time.monotonic()
    progress(f"{kind.name}: healing")
    try:
        heal_faults(lab, kind.name)
    except Exception as exc:
        row.note = f"heal failed: {exc}"
        row.outcome = "not green"
        return
    deadline = started + GREEN_WINDOW
    while True:
        report = _verify(lab, timeout)
        row.verifies += 1
        if report.ok:
            row.to_green = time.monotonic() - started
            return
        if time.monotonic() >= deadline:
            row.outcome = "not green"
            row.note = "still failing after heal: " + "; ".join(d.cause for d in report.diagnosis)
            return
        progress(
            f"{kind.name}: not green yet ({time.monotonic() - started:.0f}s): "
            + "; ".join(d.cause for d in report.diagnosis)
        )
        time.sleep(PAUSE)


def _heal_quietly(lab: LabContext, kind: FaultKind, row: DrillRow) -> None:
    """A failed injection undid itself; if its record stayed, heal it."""
    if any(f.kind == kind.name for f in active_faults(lab)):
        try:
            heal_faults(lab, kind.name)
        except Exception as exc:
            row.note += f"; heal failed: {exc}"


def _not_applicable(lab: LabContext, kind: FaultKind, why: str) -> DrillRow:
    return DrillRow(
        fault=kind.name, expected=kind.cause_on(lab), outcome="not applicable", note=why
    )


def _not_run(lab: LabContext, kind: FaultKind, why: str) -> DrillRow:
    return DrillRow(
        fault=kind.name, expected=kind.cause_on(lab), outcome="error", note=f"not run: {why}"
    )


def _summary(row: DrillRow) -> str:
    timing = ""
    if row.to_diagnosis is not None:
        timing += f", diagnosed in {row.to_diagnosis:.1f}s"
    if row.to_green is not None:
        timing += f", green again {row.to_green:.1f}s after heal"
    named = ", ".join(row.diagnosed) or "nothing"
    return f"{row.outcome} (named {named}{timing})" + (f": {row.note}" if row.note else "")
