"""overlaylab.overlay.peers: reading an overlay sandbox's tables, and whom `up` restarts."""

from __future__ import annotations

from overlaylab.overlay.peers import Member, Peers, address_of_mac, culprits, parse

# `bridge fdb show dev vxlan0 && echo == && ip neigh show dev vxlan0` in a real sandbox
# (node2 of a three-engine lab: 10.0.9.8 is its own mongo, echoed back by gossip).
SANDBOX = """02:42:0a:00:09:04 master br0
42:e2:08:3b:0e:38 master br0 permanent
02:42:0a:00:09:08 dst 192.168.77.12 link-netnsid 0 self permanent
02:42:0a:00:09:09 dst 192.168.77.13 link-netnsid 0 self permanent
02:42:0a:00:09:07 dst 192.168.77.11 link-netnsid 0 self permanent
==
10.0.9.8 lladdr 02:42:0a:00:09:08 PERMANENT
10.0.9.9 lladdr 02:42:0a:00:09:09 PERMANENT
10.0.9.7 lladdr 02:42:0a:00:09:07 PERMANENT
"""


def test_parse_keeps_the_vxlan_destinations_and_neighbours() -> None:
    table = parse(SANDBOX)
    assert table.fdb == {
        "02:42:0a:00:09:08": "192.168.77.12",
        "02:42:0a:00:09:09": "192.168.77.13",
        "02:42:0a:00:09:07": "192.168.77.11",
    }
    assert table.neigh["10.0.9.9"] == "02:42:0a:00:09:09"


def test_address_of_a_docker_mac() -> None:
    assert address_of_mac("02:42:0a:00:09:fe") == "10.0.9.254"
    assert address_of_mac("42:e2:08:3b:0e:38") == ""


def member(node: str, host: int) -> Member:
    return Member(node, f"c{host}", f"10.0.9.{host}", f"02:42:0a:00:09:{host:02x}")


def peers(node: str, remote: list[Member], missing: list[Member] | None = None) -> Peers:
    return Peers(node, "dn", "192.168.77.1", remote, missing=missing or [])


def test_the_engine_that_learned_nothing_is_the_one_restarted() -> None:
    """n3 joined late: its sandbox is empty, and n1 lacks one of n3's containers."""
    c1, c2, c3 = member("n1", 2), member("n2", 3), member("n3", 4)
    found = [
        peers("n1", [c2, c3], missing=[c3]),
        peers("n2", [c1, c3]),
        peers("n3", [c1, c2], missing=[c1, c2]),
    ]
    assert culprits(found) == ["n3"]


def test_gaps_that_all_involve_one_engine_restart_that_one() -> None:
    c1, c2, c3 = member("n1", 2), member("n2", 3), member("n3", 4)
    found = [peers("n1", [c2, c3], missing=[c3]), peers("n2", [c1, c3], missing=[c3])]
    assert culprits(found) == ["n3"]


def test_a_stale_entry_restarts_its_engine_and_a_healthy_lab_nothing() -> None:
    c1, c2 = member("n1", 2), member("n2", 3)
    stale = peers("n1", [c2])
    stale.stale = [("02:42:0a:00:09:fe", "10.0.9.254")]
    assert culprits([stale, peers("n2", [c1])]) == ["n1"]
    assert culprits([peers("n1", [c2]), peers("n2", [c1])]) == []
