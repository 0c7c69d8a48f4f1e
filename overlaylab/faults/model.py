"""What a fault kind is, and what an injected one leaves in the lab's state.

A fault kind is data (its misery, its parameters, the diagnosis rule verify should name)
plus two small functions: `inject` does the damage through the nodes' handles and
records, as it goes, everything needed to undo it; `heal` undoes exactly that and checks
that nothing of it remains. The record lives in the lab's state file, so a fault
injected by one process is healed by another, and `down` finds it too.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from overlaylab.context import LabContext
from overlaylab.errors import OverlaylabError

STATE_KEY = "faults"
# Orchestration modes (spec `orchestration.mode`): a legacy overlay is "none" (engines
# over a KV store) or classic swarm on top of it; swarm mode has no KV store.
LEGACY = ("none", "classic-swarm")
ALL_MODES = ("none", "classic-swarm", "swarm-mode")

Undo = dict[str, Any]
Options = dict[str, str]


class FaultError(OverlaylabError):
    """A fault cannot be injected or healed as asked: nothing was left half-done."""


@dataclass
class ActiveFault:
    """An injected fault as the lab's state keeps it: enough to undo it from any process."""

    kind: str
    targets: list[str]
    options: Options
    undo: Undo  # what inject did, in the terms its kind's heal reads
    injected_at: float = field(default_factory=time.time)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ActiveFault:
        return cls(
            kind=str(data["kind"]),
            targets=[str(t) for t in data.get("targets", [])],
            options={str(k): str(v) for k, v in (data.get("options") or {}).items()},
            undo=dict(data.get("undo") or {}),
            injected_at=float(data.get("injected_at", 0.0)),
        )

    def heal_command(self, inventory: str) -> str:
        return f"invoke heal {self.kind} -i {inventory}"


InjectFn = Callable[[LabContext, list[str], Options, Undo], None]
HealFn = Callable[[LabContext, ActiveFault], None]
LabFn = Callable[[LabContext], Any]


def _no_reason(lab: LabContext) -> str | None:
    return None


def _one_engine_node(lab: LabContext) -> list[str]:
    """The last engine node: on the default lab the one without a stack service."""
    return [lab.spec.engine_nodes[-1].name]


def _the_targets(lab: LabContext, active: ActiveFault) -> list[str]:
    return list(active.targets)


@dataclass(frozen=True)
class FaultKind:
    """One kind of fault: data, and the functions that inject and heal it.

    `targets` says what TARGET arguments name: "node" (engine nodes), "network" (the
    spec's overlays) or "none"; `min_targets`/`max_targets` bound how many. `options`
    are the names `--option NAME=VALUE` accepts, with their defaults."""

    name: str
    misery: str
    parameters: str
    expected_cause: str  # the id of the diagnosis rule verify should name (Diagnosis.rule)
    modes: tuple[str, ...]
    inject_fn: InjectFn
    heal_fn: HealFn
    targets: str = "node"
    min_targets: int = 1
    max_targets: int = 1
    options: dict[str, str] = field(default_factory=dict)
    unavailable: str | None = None  # why this machine's kernel cannot have it
    causes_by_mode: dict[str, str] = field(default_factory=dict)  # mode -> rule id
    # Other rules that name this very fault from another side, on its nodes (a killed
    # manager is an engine down as well as a lost quorum): no false cause in a drill.
    also_causes: tuple[str, ...] = ()
    applies_fn: Callable[[LabContext], str | None] = _no_reason
    default_targets_fn: Callable[[LabContext], list[str]] = _one_engine_node
    expected_nodes_fn: Callable[[LabContext, ActiveFault], list[str]] = _the_targets
    check_options_fn: Callable[[LabContext, Options], str | None] = lambda lab, o: None

    def applies(self, lab: LabContext) -> str | None:
        """Why this fault cannot happen on `lab` (its mode, its store...), or None."""
        if self.unavailable:
            return self.unavailable
        if lab.spec.orchestration.mode not in self.modes:
            return (
                f"the lab's orchestration mode is {lab.spec.orchestration.mode}; "
                f"{self.name} applies to {', '.join(self.modes)}"
            )
        return self.applies_fn(lab)

    def cause_on(self, lab: LabContext) -> str:
        """The diagnosis rule verify should name on this lab."""
        return self.causes_by_mode.get(lab.spec.orchestration.mode, self.expected_cause)

    def default_targets(self, lab: LabContext) -> list[str]:
        return self.default_targets_fn(lab) if self.targets != "none" else []

    def inject(self, lab: LabContext, targets: list[str], options: Options) -> ActiveFault:
        """Do it. On failure, undo what was done so far and raise FaultError."""
        merged = {**self.options, **options}
        active = ActiveFault(self.name, list(targets), merged, {})
        try:
            self.inject_fn(lab, active.targets, merged, active.undo)
        except Exception as exc:
            try:
                self.heal_fn(lab, active)
            except Exception as undo_exc:  # report both: the first is the cause
                raise FaultError(
                    f"injecting {self.name} failed ({exc}), and undoing what it did failed "
                    f"too ({undo_exc}); `invoke up` restores the lab, `invoke down` removes it"
                ) from exc
            raise FaultError(f"injecting {self.name} failed, nothing is left of it: {exc}") from exc
        return active

    def heal(self, lab: LabContext, active: ActiveFault) -> None:
        self.heal_fn(lab, active)

    def expected_nodes(self, lab: LabContext, active: ActiveFault) -> list[str]:
        return sorted(self.expected_nodes_fn(lab, active))
