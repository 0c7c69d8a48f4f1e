"""The legacy overlay's gossip (serf) membership, as an engine's own log tells it."""

from __future__ import annotations

import re

SERF_EVENT = re.compile(
    r"serf: Event(Member(?:Join|Leave|Failed|Reap)): (\S+)(?: ([0-9]+(?:\.[0-9]+){3}))?"
)


def serf_view(log_text: str, node_at: dict[str, str] | None = None) -> set[str]:
    """Members an engine's serf agent believes in, from its own log lines.

    libnetwork exposes no API for it; the serf library logs every membership event,
    so replaying them gives the node's view of the gossip cluster. Serf names members
    by hostname, which on real hosts is not the spec's node name: `node_at` (address ->
    node) names them by the address they advertise instead.
    """
    members: set[str] = set()
    for event, name, address in SERF_EVENT.findall(log_text):
        member = (node_at or {}).get(address, name)
        if event == "MemberJoin":
            members.add(member)
        else:
            members.discard(member)
    return members
