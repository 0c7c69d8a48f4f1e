"""Firewall rules and links as faults: put in through a node's handle, taken out again,
and checked gone.

Every rule a fault inserts carries the comment `overlaylab-fault:<kind>`, so heal can
prove that none of its rules is left (one `iptables-save` per node), whatever the
undo record says.
"""

from __future__ import annotations

import re

from overlaylab.context import LabContext
from overlaylab.faults.model import ActiveFault, FaultError, Undo

TAG = "overlaylab-fault"


def tag(kind: str) -> str:
    return f"{TAG}:{kind}"


def add_rule(
    lab: LabContext,
    undo: Undo,
    node: str,
    kind: str,
    chain: str,
    matchers: list[str],
    table: str = "filter",
    target: str = "DROP",
) -> None:
    """`iptables -I CHAIN MATCHERS -j DROP` on the node, tagged, and recorded in `undo`
    once it is in (so a failed injection undoes exactly what went in)."""
    rule = [chain, *matchers, "-m", "comment", "--comment", tag(kind), "-j", target]
    # -w: the node's dockerd edits the same tables; wait for its lock, never fail on it.
    lab.node(node).run(["iptables", "-w", "-t", table, "-I", *rule])
    undo.setdefault("rules", []).append({"node": node, "table": table, "rule": rule})


def remove_rules(lab: LabContext, active: ActiveFault) -> None:
    """Delete every rule the fault inserted, then check that none of its tagged rules is
    left on any node it touched."""
    rules = list(active.undo.get("rules", []))
    for entry in rules:
        lab.node(entry["node"]).run(
            ["iptables", "-w", "-t", entry["table"], "-D", *entry["rule"]], check=False
        )
    left = {
        node: found
        for node in sorted({e["node"] for e in rules})
        if (found := tagged_rules(lab, node, active.kind))
    }
    if left:
        raise FaultError(
            f"{active.kind}: rules still in place after deleting them: "
            + "; ".join(f"on {n}: {' | '.join(r)}" for n, r in left.items())
        )


def tagged_rules(lab: LabContext, node: str, kind: str | None = None) -> list[str]:
    """The lines of `iptables-save` on the node that a fault (of `kind`) put there."""
    marker = tag(kind) if kind else TAG + ":"
    saved = lab.node(node).run(["iptables-save"], check=False).stdout
    return [line for line in saved.splitlines() if marker in line and line.startswith("-A")]


def lab_interface(lab: LabContext, node: str) -> str:
    """The node's interface that holds its lab address (eth1 on local labs)."""
    handle = lab.node(node)
    shown = handle.run(["ip", "-o", "-4", "addr", "show"]).stdout
    for line in shown.splitlines():
        match = re.match(r"\d+:\s+(\S+?)(?:@\S+)?\s+inet\s+([0-9.]+)/", line)
        if match and match.group(2) == str(handle.address):
            return match.group(1)
    raise FaultError(f"no interface on {node} holds its lab address {handle.address}")


def link_mtu(lab: LabContext, node: str, interface: str) -> int:
    shown = lab.node(node).run(["ip", "-o", "link", "show", "dev", interface]).stdout
    match = re.search(r"\bmtu (\d+)", shown)
    if not match:
        raise FaultError(f"cannot read the MTU of {interface} on {node}: {shown.strip()!r}")
    return int(match.group(1))
