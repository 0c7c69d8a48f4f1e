"""The containers of a node cut from their DNS: every container on a lab overlay there
drops what it sends to the engine's embedded DNS server (127.0.0.11), so names stop
resolving while every address still answers. It is what a DNS plugin that does not
work, or a firewall inside the containers, leaves a user with.

The rule goes into each container's own network namespace (nsenter by its pid, through
the node handle): a container started later, or restarted, has its DNS back. Heal
deletes the rules and checks that none is left."""

from __future__ import annotations

from typing import Any

from overlaylab.context import LabContext
from overlaylab.faults.model import LEGACY, ActiveFault, FaultError, FaultKind, Options, Undo
from overlaylab.faults.netfilter import tag

DNS_ADDRESS = "127.0.0.11"  # the engine's embedded DNS server, inside every container


def _rule() -> list[str]:
    return ["OUTPUT", "-d", DNS_ADDRESS, "-m", "comment", "--comment", tag("dns"), "-j", "DROP"]


def _on_overlays(lab: LabContext, node: str) -> list[tuple[str, str, int]]:
    """(id, name, pid) of every running container on one of the lab's overlays."""
    overlays = {n.name for n in lab.spec.networks}
    found = []
    with lab.node(node).engine() as client:
        for container in client.containers.list():
            attrs: dict[str, Any] = container.attrs
            attached = set((attrs.get("NetworkSettings") or {}).get("Networks") or {})
            if attached & overlays:
                found.append((container.id, container.name, int(attrs["State"]["Pid"])))
    return found


def _inject_dns(lab: LabContext, targets: list[str], options: Options, undo: Undo) -> None:
    # verify looks names up from its probes: they must be there to be cut with the rest.
    from overlaylab.verify.probes import ensure_probes

    ensure_probes(lab, targets)
    for node in targets:
        handle = lab.node(node)
        containers = _on_overlays(lab, node)
        if not containers:
            raise FaultError(f"no container on a lab overlay runs on {node}")
        for container_id, name, pid in containers:
            enter = ["nsenter", "-t", str(pid), "-n"]
            handle.run([*enter, "iptables", "-w", "-I", *_rule()])
            undo.setdefault("containers", []).append(
                {"node": node, "id": container_id, "name": name, "pid": pid}
            )


def _still_cut(lab: LabContext, entry: dict[str, Any]) -> bool:
    """Is the rule still in the container's namespace? A container gone, or restarted
    (a new namespace), has none."""
    handle = lab.node(entry["node"])
    with handle.engine() as client:
        try:
            pid = int(client.api.inspect_container(entry["id"])["State"]["Pid"])
        except Exception:  # removed: its namespace, and the rule, went with it
            return False
    if pid != entry["pid"] or pid == 0:
        return False
    saved = handle.run(["nsenter", "-t", str(pid), "-n", "iptables-save"], check=False).stdout
    return tag("dns") in saved


def _heal_dns(lab: LabContext, active: ActiveFault) -> None:
    for entry in active.undo.get("containers", []):
        handle = lab.node(entry["node"])
        enter = ["nsenter", "-t", str(entry["pid"]), "-n"]
        handle.run([*enter, "iptables", "-w", "-D", *_rule()], check=False)
    left = [e["name"] for e in active.undo.get("containers", []) if _still_cut(lab, e)]
    if left:
        raise FaultError(f"dns: the rule is still in {', '.join(left)}")


KINDS = [
    FaultKind(
        name="dns",
        misery="a node's containers cut from their DNS (127.0.0.11, the engine's embedded "
        "server): names stop resolving while every address answers (a DNS plugin that "
        "does not work, a firewall inside the containers)",
        parameters="NODE (default: the last engine node)",
        expected_cause="probe_names_wrong",
        modes=LEGACY,
        inject_fn=_inject_dns,
        heal_fn=_heal_dns,
    ),
]
