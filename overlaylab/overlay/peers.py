"""The legacy overlay's VXLAN peer entries, as each engine's overlay sandbox holds them.

For every container on an overlay, libnetwork programs every other engine's overlay
sandbox (a network namespace the engine keeps at <exec-root>/netns/<epoch>-<network
id>, cut to 12 characters) with a neighbour entry (the container's address -> its
MAC, on vxlan0) and an fdb entry (that MAC -> the VXLAN endpoint of its engine, the
engine's advertised address). Engines learn them from each other over serf, once,
when a container joins: an engine whose serf started after the others' containers
joined holds none, and an entry whose container left while the event was lost stays,
sending the next container to get that address (libnetwork derives the MAC from it)
to the wrong engine. No API shows these entries; the sandbox's kernel tables do, read
through the node handle, so `up` (to repair) and verify (to diagnose) see the same.
"""

from __future__ import annotations

import ipaddress
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import TypeVar

from overlaylab.layout import schedule_address
from overlaylab.providers.base import Node, NodePaths
from overlaylab.spec.models import ClusterSpec

T = TypeVar("T")

READ_SCRIPT = "bridge fdb show dev vxlan0 && echo == && ip neigh show dev vxlan0"
FDB_ENTRY = re.compile(r"^([0-9a-f:]{17}) .*\bdst (\S+)", re.M)
NEIGH_ENTRY = re.compile(r"^(\S+) .*\blladdr ([0-9a-f:]{17})", re.M)
# A peer entry can lag a container that just joined by the gossip's round trip: what
# looks wrong is read again once after this pause, and only what stays wrong counts.
SETTLE = 1.0
# An engine that missed a container's join still learns it on demand: the first packet
# to it misses in vxlan0's tables (l2miss/l3miss) and the engine asks the cluster over
# serf. So a missing entry counts only once a local container has asked for it: one
# ping per missing address, from a container of the network on that engine.
ASK_SCRIPT = 'for a in "$@"; do ping -c 1 -W 1 "$a" >/dev/null 2>&1 & done; wait'

# (node, network) -> the name of a container there that has ping, to ask with.
Asker = Callable[[str, str], str]


@dataclass(frozen=True)
class Member:
    """A running container on an overlay, as its own engine reports it."""

    node: str
    name: str
    address: str
    mac: str


@dataclass
class Table:
    """An overlay sandbox's VXLAN entries: MAC -> destination, address -> MAC."""

    fdb: dict[str, str]
    neigh: dict[str, str]


@dataclass
class Peers:
    """What one engine's sandbox of one overlay holds, against what runs elsewhere."""

    node: str
    network: str
    own_vtep: str
    remote: list[Member]  # containers on this overlay on other engines
    missing: list[Member] = field(default_factory=list)  # no entry for them
    wrong: list[tuple[Member, str]] = field(default_factory=list)  # (member, where it points)
    stale: list[tuple[str, str]] = field(default_factory=list)  # (MAC, its address) sent home
    # The address only this engine's own short-lived containers take (classic swarm's
    # scheduling probe, overlaylab.layout.schedule_address): an entry sending it home
    # is right for the next one, whenever it starts.
    own_reserved: str | None = None
    unread: str = ""  # why the sandbox could not be read ("" when it was)
    command: str = ""

    @property
    def ok(self) -> bool:
        return not (self.missing or self.wrong or self.stale or self.unread)


# libnetwork names the sandbox <epoch>-<network id>, cut to 12 characters, and counts
# the epoch up each time the sandbox is made again (the last local container left, a
# new one joined; an engine restart): find it by the id, whatever the epoch.
FIND_SCRIPT = (
    'for f in "$1"/[0-9]*-"$2"*; do [ -e "$f" ] && exec nsenter --net="$f" sh -c "$3"; done; '
    'echo "no overlay sandbox of $2 in $1" >&2; exit 1'
)


def read_command(paths: NodePaths, network_id: str) -> list[str]:
    netns = str(paths.exec_root / "netns")
    return ["sh", "-c", FIND_SCRIPT, "read", netns, network_id[:9], READ_SCRIPT]


def parse(output: str) -> Table:
    fdb_text, _, neigh_text = output.partition("\n==\n")
    return Table(
        fdb={mac: dst for mac, dst in FDB_ENTRY.findall(fdb_text)},
        neigh={address: mac for address, mac in NEIGH_ENTRY.findall(neigh_text)},
    )


def read_table(node: Node, network_id: str) -> tuple[Table | None, str]:
    """The sandbox's entries, or (None, why not): no sandbox means no local container."""
    result = node.run(read_command(node.paths, network_id), check=False, timeout=10)
    if result.returncode != 0:
        return None, (result.stderr or result.stdout).strip()[-200:] or "nsenter failed"
    return parse(result.stdout), ""


def address_of_mac(mac: str) -> str:
    """The address libnetwork derived a MAC from (02:42 + the IPv4 bytes), else ''."""
    parts = mac.split(":")
    if len(parts) != 6 or parts[:2] != ["02", "42"]:
        return ""
    return str(ipaddress.IPv4Address(bytes(int(p, 16) for p in parts[2:])))


def members(node: Node, name: str, network: str) -> tuple[str, list[Member]]:
    """(network id, running containers on it) from one engine's API."""
    with node.engine(timeout=10) as client:
        found = [n for n in client.api.networks(names=[network]) if n["Name"] == network]
        if not found:
            return "", []
        on = []
        for c in client.containers.list():
            settings = c.attrs["NetworkSettings"]["Networks"].get(network)
            if settings and settings.get("IPAddress") and settings.get("MacAddress"):
                on.append(
                    Member(name, c.name, settings["IPAddress"], settings["MacAddress"].lower())
                )
        return found[0]["Id"], on


def vtep(node: Node) -> str:
    """The address peers send this engine's VXLAN to: the one it advertises."""
    with node.engine(timeout=10) as client:
        advertised = client.info().get("ClusterAdvertise") or ""
    return advertised.rsplit(":", 1)[0] or str(node.address)


def destination(node: Node, network: str, mac: str) -> str | None:
    """Where `node`'s overlay sandbox of `network` sends `mac` (None: no entry, or no
    sandbox to read)."""
    with node.engine(timeout=10) as client:
        found = [n for n in client.api.networks(names=[network]) if n["Name"] == network]
    if not found:
        return None
    table, _ = read_table(node, found[0]["Id"])
    return None if table is None else table.fdb.get(mac.lower())


def _judge(peers: Peers, table: Table, local: list[Member], vteps: dict[str, str]) -> None:
    # Both are needed: the neighbour entry answers the container's ARP for the address,
    # the fdb entry sends the frame to the right engine.
    peers.missing = [
        m for m in peers.remote if m.mac not in table.fdb or table.neigh.get(m.address) != m.mac
    ]
    peers.wrong = [
        (m, table.fdb[m.mac])
        for m in peers.remote
        if m.mac in table.fdb and table.fdb[m.mac] != vteps[m.node]
    ]
    # The engine programs its own containers too when their join echoes back (seen
    # here: harmless, the bridge knows them on their veth); an entry sending a MAC home
    # that no local container holds is one a departed container left behind.
    held = {m.mac for m in local} | {m.mac for m in peers.remote}
    peers.stale = sorted(
        (mac, address_of_mac(mac))
        for mac, dst in table.fdb.items()
        if dst == peers.own_vtep
        and mac not in held
        and (peers.own_reserved is None or address_of_mac(mac) != peers.own_reserved)
    )


def survey(
    spec: ClusterSpec,
    node: Callable[[str], Node],
    engines: list[str],
    networks: list[str] | None = None,
    asker: Asker | None = None,
) -> list[Peers]:
    """Every engine's peer entries of every overlay, against the containers the
    `engines` (those that answer) run. What looks wrong is read again after SETTLE."""
    names = networks if networks is not None else [n.name for n in spec.networks]
    vteps: dict[str, str] = {}
    reserved = partial(schedule_address, spec)
    found = survey_once(node, engines, names, vteps, asker, reserved)
    if all(p.ok for p in found):
        return found
    time.sleep(SETTLE)
    again = {
        (p.node, p.network): p for p in survey_once(node, engines, names, vteps, asker, reserved)
    }
    return [_still(p, again.get((p.node, p.network))) for p in found]


def survey_once(
    node: Callable[[str], Node],
    engines: list[str],
    networks: list[str],
    vteps: dict[str, str],
    asker: Asker | None = None,
    reserved: Callable[[str, str], str | None] | None = None,
) -> list[Peers]:
    """One reading; `vteps` (engine -> advertised address) is filled as needed;
    `reserved(network, engine)` is the address kept for that engine's own probes."""
    found = []
    for network in networks:
        on = dict(zip(engines, _each(partial(_members, node, network), engines), strict=True))
        # Only engines running a container on the network keep a sandbox for it, and
        # only containers of other engines need entries.
        if sum(1 for _, local in on.values() if local) < 2:
            continue
        unknown = [e for e in engines if e not in vteps]
        vteps.update(zip(unknown, _each(lambda e: vtep(node(e)), unknown), strict=True))
        for e in engines:
            net_id, local = on[e]
            if net_id and local:
                remote = [m for other in engines if other != e for m in on[other][1]]
                own = reserved(network, e) if reserved else None
                peers = Peers(e, network, vteps[e], remote, own_reserved=own)
                ask = asker(e, network) if asker else None
                if ask is not None and ask not in {m.name for m in local}:
                    ask = ""  # not running here: no one to ask, so gaps are not judged
                found.append(_read_and_judge(node(e), peers, net_id, local, vteps, ask))
    return found


def _members(node: Callable[[str], Node], network: str, engine: str) -> tuple[str, list[Member]]:
    return members(node(engine), engine, network)


def _each(ask: Callable[[str], T], engines: list[str]) -> list[T]:
    """`ask` of every engine at once: an engine waiting on a hung KV store takes seconds
    per request, and engine after engine, network after network, they added up."""
    if len(engines) < 2:
        return [ask(e) for e in engines]
    with ThreadPoolExecutor(max_workers=len(engines)) as pool:
        return list(pool.map(ask, engines))


def _read_and_judge(
    handle: Node,
    peers: Peers,
    net_id: str,
    local: list[Member],
    vteps: dict[str, str],
    ask: str | None = None,
) -> Peers:
    """Read the sandbox and judge it. `ask` names the local container that asks for what
    is missing; "" when there is none to ask (then gaps, which the engine might fill on
    demand, are not held against it); None to judge gaps as read."""
    table, why = read_table(handle, net_id)
    peers.command = " ".join(read_command(handle.paths, net_id))
    if table is None:
        peers.unread = why
        return peers
    _judge(peers, table, local, vteps)
    if ask == "":
        peers.missing = []
    if peers.missing and ask:
        with handle.engine(timeout=10) as client:
            addresses = [m.address for m in peers.missing]
            client.containers.get(ask).exec_run(["sh", "-c", ASK_SCRIPT, "ask", *addresses])
        table, why = read_table(handle, net_id)
        if table is None:
            peers.unread = why
            return peers
        _judge(peers, table, local, vteps)
    if ask is not None and len(peers.missing) < len(peers.remote):
        # Some entries are there: the engine gossips, and learns the rest on demand (an
        # asked-for entry can take longer than the ask to appear). Only an engine that
        # holds none of the others' containers, even when asked, has lost its peers.
        peers.missing = []
    return peers


def _still(first: Peers, second: Peers | None) -> Peers:
    """Only what both readings found wrong (a container that came or went in between
    is no fault)."""
    if second is None:
        return first
    if first.unread:  # a sandbox that was not there yet (a container starting)
        return second
    first.missing = [m for m in first.missing if m in second.missing]
    first.wrong = [w for w in first.wrong if w in second.wrong]
    first.stale = [s for s in first.stale if s in second.stale]
    return first


def describe(peers: Peers) -> str:
    """One sentence on what is wrong with one sandbox."""
    parts = []
    if peers.missing:
        count = len(peers.remote)
        if len(peers.missing) == count:
            parts.append(
                f"no VXLAN peer entry for any of the {count} container(s) of other engines"
            )
        else:
            parts.append(
                f"no VXLAN peer entry for {len(peers.missing)} of {count} container(s) of "
                "other engines: " + ", ".join(f"{m.address} ({m.node})" for m in peers.missing[:4])
            )
    for member, dst in peers.wrong[:3]:
        parts.append(
            f"{member.address} ({member.name} on {member.node}) is sent to {dst}, not to its engine"
        )
    if peers.stale:
        parts.append(
            "stale entries send "
            + ", ".join(f"{address or mac} ({mac})" for mac, address in peers.stale[:4])
            + f" to {peers.own_vtep} (this node itself), where no container holds them"
        )
    return "; ".join(parts)


def culprits(found: list[Peers]) -> list[str]:
    """The engines to restart. An engine whose sandboxes hold none of the others'
    containers joined late: restarting it brings its containers back with fresh join
    events, which the others learn too, so their gaps for its containers close with it.
    Else, when every problem involves one engine, that one; else each engine whose
    sandbox is wrong."""
    bad = [p for p in found if not p.ok and not p.unread]
    if not bad:
        return []
    empty = {p.node for p in bad if p.missing and len(p.missing) == len(p.remote)}
    empty -= {p.node for p in found if p.node in empty and len(p.missing) < len(p.remote)}
    stale = {p.node for p in bad if p.stale or p.wrong}
    if empty:
        return sorted(empty | stale)
    involved = [{p.node, *(m.node for m in p.missing), *(m.node for m, _ in p.wrong)} for p in bad]
    common = set.intersection(*involved)
    if len(common) == 1:
        return sorted(common | stale)
    return sorted({p.node for p in bad})
