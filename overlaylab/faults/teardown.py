"""What `down` does about active faults: take their traces off the nodes before the
lab goes, since a remote host keeps its firewall rules, MTU and addresses after its
lab is removed (a local lab's namespaces take them along anyway)."""

from __future__ import annotations

from overlaylab.context import LabContext
from overlaylab.errors import OverlaylabError
from overlaylab.faults.model import STATE_KEY, ActiveFault
from overlaylab.faults.records import active_faults
from overlaylab.providers.command import CommandResult


def _undo_on_nodes(lab: LabContext, active: ActiveFault) -> list[CommandResult]:
    """The node-level undo of every kind at once, read from the record (no waiting for
    gossip or services: the lab is about to go)."""
    undo, done = active.undo, []
    for entry in undo.get("rules", []):
        argv = ["iptables", "-w", "-t", entry["table"], "-D", *entry["rule"]]
        done.append(lab.node(entry["node"]).run(argv, check=False))
    for entry in undo.get("links", []):
        argv = ["ip", "link", "set", "dev", entry["interface"], "mtu", str(entry["mtu"])]
        done.append(lab.node(entry["node"]).run(argv, check=False))
    for entry in undo.get("addresses", []):
        argv = ["ip", "addr", "del", f"{entry['address']}/32", "dev", "lo"]
        done.append(lab.node(entry["node"]).run(argv, check=False))
    if "stopped_pid" in undo:  # a stopped process ignores the TERM `down` sends it
        entry = undo["stopped_pid"]
        done.append(lab.node(entry["node"]).run(["kill", "-CONT", str(entry["pid"])], check=False))
    return done


def remove_faults(lab: LabContext) -> list[str]:
    """Undo what every active fault left on the nodes, forget them; say what was done."""
    said = []
    faults = active_faults(lab)
    for active in faults:
        try:
            _undo_on_nodes(lab, active)
            said.append(
                f"fault {active.kind} removed from {', '.join(active.targets) or 'the lab'}"
            )
        except (OverlaylabError, OSError) as exc:  # an unreachable host: destroy says more
            said.append(f"fault {active.kind}: could not undo it ({exc})")
    if faults:
        lab.state.set(STATE_KEY, [])
    return said
