"""The three operations every fault task goes through: inject, heal, list. Each works
from the lab's state file, so a fault injected by one process is healed by another,
and `down` finds it too."""

from __future__ import annotations

from overlaylab.context import LabContext
from overlaylab.faults.catalogue import CATALOGUE
from overlaylab.faults.model import ActiveFault, FaultError, FaultKind, Options
from overlaylab.faults.records import active_faults
from overlaylab.faults.records import save_faults as _save

__all__ = ["active_faults", "heal_faults", "inject_fault", "lookup"]


def _target_names(lab: LabContext, kind: FaultKind) -> list[str]:
    if kind.targets == "network":
        return [n.name for n in lab.spec.networks]
    return [n.name for n in lab.spec.engine_nodes]


def _check_targets(lab: LabContext, kind: FaultKind, targets: list[str]) -> None:
    if kind.targets == "none":
        if targets:
            raise FaultError(f"{kind.name} takes no target (got {', '.join(targets)})")
        return
    known = _target_names(lab, kind)
    what = "overlay network" if kind.targets == "network" else "engine node"
    unknown = [t for t in targets if t not in known]
    if unknown:
        raise FaultError(
            f"no {what} {', '.join(repr(u) for u in unknown)} in lab '{lab.spec.name}'; "
            f"{what}s: {', '.join(known) or '(none)'}"
        )
    if len(set(targets)) != len(targets):
        raise FaultError(f"{kind.name}: a target is named twice ({', '.join(targets)})")
    if not kind.min_targets <= len(targets) <= kind.max_targets:
        wanted = (
            str(kind.min_targets)
            if kind.min_targets == kind.max_targets
            else f"{kind.min_targets} to {kind.max_targets}"
        )
        raise FaultError(f"{kind.name} takes {wanted} {what}(s), got {len(targets)}")


def _check_options(lab: LabContext, kind: FaultKind, options: Options) -> None:
    unknown = sorted(set(options) - set(kind.options))
    if unknown:
        allowed = ", ".join(f"{k} (default {v})" for k, v in kind.options.items()) or "none"
        raise FaultError(f"{kind.name} has no option {', '.join(unknown)}; its options: {allowed}")
    problem = kind.check_options_fn(lab, {**kind.options, **options})
    if problem:
        raise FaultError(f"{kind.name}: {problem}")


def lookup(name: str) -> FaultKind:
    try:
        return CATALOGUE[name]
    except KeyError:
        raise FaultError(
            f"no fault kind '{name}'; `invoke fault --list` shows them: "
            + ", ".join(sorted(CATALOGUE))
        ) from None


def inject_fault(
    lab: LabContext, kind: str, targets: list[str] | None = None, options: Options | None = None
) -> ActiveFault:
    """Inject one fault into a running lab and record it; refuse (FaultError, nothing
    done) an unknown target or option, a fault the lab cannot have, one already active."""
    fault = lookup(kind)
    why_not = fault.applies(lab)
    if why_not:
        raise FaultError(f"{fault.name} cannot be injected into lab '{lab.spec.name}': {why_not}")
    chosen = list(targets) if targets else fault.default_targets(lab)
    _check_targets(lab, fault, chosen)
    _check_options(lab, fault, dict(options or {}))
    current = active_faults(lab)
    if any(f.kind == fault.name for f in current):
        raise FaultError(
            f"{fault.name} is already active in lab '{lab.spec.name}': "
            f"`invoke heal {fault.name}` undoes it first"
        )
    if not lab.provider.exists():
        raise FaultError(f"lab '{lab.spec.name}' is not up: `invoke up` first")
    active = fault.inject(lab, chosen, dict(options or {}))
    _save(lab, [*current, active])
    return active


def heal_faults(lab: LabContext, kind: str | None = None) -> list[ActiveFault]:
    """Undo the active faults (all, or those of `kind`), each verified undone, and drop
    them from the state. A heal that fails keeps its fault recorded and raises."""
    current = active_faults(lab)
    if kind is not None:
        lookup(kind)  # a typo is an error, not "nothing to heal"
    chosen = [f for f in current if kind is None or f.kind == kind]
    healed: list[ActiveFault] = []
    # Newest first: a later fault may sit on top of an earlier one (an engine restarted
    # with another address, then its gossip dropped).
    for active in reversed(chosen):
        lookup(active.kind).heal(lab, active)
        healed.append(active)
        _save(lab, [f for f in active_faults(lab) if f.as_dict() != active.as_dict()])
    return healed
