"""Classic swarm's own misery: an agent replaced while its engine's overlay kept what it
had learned. A node whose swarm agent came back (docker-machine re-provisioned it, or its
container was made again) missed the leave of a container elsewhere; its overlay sandbox
still sends that container's MAC to the node itself, and the next container the master
starts with the recycled address is unreachable from there.

The stale entry is planted the way the engine leaves it (`bridge fdb` in the node's
overlay sandbox, through the node handle); heal deletes it and checks it is gone. The
fault needs a classic swarm lab (orchestration.mode classic-swarm), which needs a
`swarm` binary on this machine to build the agents' image.
"""

from __future__ import annotations

import contextlib
import ipaddress

import docker.errors

from overlaylab.context import LabContext
from overlaylab.faults.model import ActiveFault, FaultError, FaultKind, Options, Undo
from overlaylab.layout import schedule_address
from overlaylab.up.classic_swarm import AGENT, ensure_classic_swarm

VXLAN_DEVICE = "vxlan0"


def mac_of(address: str) -> str:
    """The MAC libnetwork gives a container: 02:42 and its IPv4 address's bytes."""
    return "02:42:" + ":".join(f"{b:02x}" for b in ipaddress.IPv4Address(address).packed)


def overlay_sandbox(lab: LabContext, node: str, network: str) -> str:
    """The path of `node`'s overlay sandbox of `network` (<exec-root>/netns/<n>-<id>)."""
    handle = lab.node(node)
    with handle.engine(timeout=10) as client:
        found = client.api.networks(names=[network])
    if not found:
        raise FaultError(f"the engine on {node} does not show overlay {network}")
    netns_dir = handle.paths.exec_root / "netns"
    listed = handle.run(["ls", str(netns_dir)], check=False).stdout.split()
    mine = [
        n for n in listed if n.split("-", 1)[-1] and found[0]["Id"].startswith(n.split("-", 1)[-1])
    ]
    if len(mine) != 1:
        raise FaultError(f"{node} has {len(mine)} sandboxes of overlay {network} (wanted one)")
    return str(netns_dir / mine[0])


def _bridge(netns: str) -> list[str]:
    return ["nsenter", f"--net={netns}", "bridge", "fdb"]


def _fdb(lab: LabContext, node: str, netns: str) -> str:
    return lab.node(node).run([*_bridge(netns), "show", "dev", VXLAN_DEVICE], check=False).stdout


def plant_stale_peer_entry(lab: LabContext, node: str, network: str, undo: Undo) -> str:
    """An entry in `node`'s overlay sandbox that sends the overlay's highest free address
    to `node` itself, as a missed leave leaves it. Returns that address. The addresses
    kept for verify's scheduling probes (overlaylab.layout.schedule_address) are passed
    over: the node's own would be right to send home, and another's is rewritten by the
    join of that node's next probe, so verify itself would mend the fault."""
    subnet = next(n.subnet for n in lab.spec.networks if n.name == network)
    netns = overlay_sandbox(lab, node, network)
    known = _fdb(lab, node, netns)
    kept = {schedule_address(lab.spec, network, n.name) for n in lab.spec.engine_nodes}
    address = next(
        str(a)
        for a in reversed(list(ipaddress.IPv4Network(str(subnet)).hosts()))
        if mac_of(str(a)) not in known and str(a) not in kept
    )
    mac = mac_of(address)
    own = str(lab.node(node).address)
    lab.node(node).run(
        [*_bridge(netns), "add", mac, "dev", VXLAN_DEVICE, "dst", own, "self", "permanent"]
    )
    undo.setdefault("fdb", []).append({"node": node, "netns": netns, "mac": mac})
    return address


def remove_stale_peer_entries(lab: LabContext, active: ActiveFault) -> None:
    for entry in active.undo.get("fdb", []):
        node, netns, mac = entry["node"], entry["netns"], entry["mac"]
        if lab.node(node).run(["test", "-e", netns], check=False).returncode != 0:
            continue  # the sandbox went with its last container, the entry with it
        lab.node(node).run(
            [*_bridge(netns), "del", mac, "dev", VXLAN_DEVICE, "self"],
            check=False,
        )
        if mac in _fdb(lab, node, netns):
            raise FaultError(f"the stale peer entry {mac} is still in {node}'s sandbox")


def replace_agent(lab: LabContext, node: str) -> None:
    """The node's swarm agent container removed and made again, as `up` makes it."""
    with (
        lab.node(node).engine(timeout=30) as client,
        contextlib.suppress(docker.errors.NotFound),
    ):
        client.containers.get(AGENT).remove(force=True)
    ensure_classic_swarm(lab)


def _inject(lab: LabContext, targets: list[str], options: Options, undo: Undo) -> None:
    network = options.get("network") or lab.spec.networks[0].name
    for node in targets:
        replace_agent(lab, node)
        plant_stale_peer_entry(lab, node, network, undo)


def _options(lab: LabContext, options: Options) -> str | None:
    names = [n.name for n in lab.spec.networks]
    wanted = options.get("network") or (names[0] if names else "")
    return None if wanted in names else f"no overlay {wanted!r} in the spec ({', '.join(names)})"


def _agents(lab: LabContext) -> list[str]:
    """An agent that is not the master's node: the spec's last engine node."""
    return [lab.spec.engine_nodes[-1].name]


KINDS = [
    FaultKind(
        name="classic-agent",
        misery="classic swarm: an agent replaced while its engine kept its overlay's peer "
        "entries: a recycled address still goes to the node itself (needs a classic swarm "
        "lab, and so a `swarm` binary to build its image)",
        parameters="NODE (default: the last engine node); --option network=OVERLAY "
        "(default: the spec's first)",
        expected_cause="stale_peer_entries",
        modes=("classic-swarm",),
        inject_fn=_inject,
        heal_fn=remove_stale_peer_entries,
        options={"network": ""},
        check_options_fn=_options,
        default_targets_fn=_agents,
    ),
]
