"""Gossip islands: each engine's serf view, replayed from its log, and the diagnosis."""

from __future__ import annotations

from pathlib import Path

from fakelab import FakeLab, classic_lab_spec, fault_lab_spec

from overlaylab.overlay.gossip import serf_view

# Lines as dockerd 20.10 logs them (from a 10-node lab that split at start).
LOG = (
    'time="2026-11-28T01:07:33.16Z" level=info msg="2026/11/28 01:07:33 [INFO] serf: '
    'EventMemberJoin: n8 192.168.95.18\\n"\n'
    'time="2026-11-28T01:07:33.16Z" level=error msg="joining serf neighbor 192.168.95.18 '
    "failed: Failed to join the cluster at neigh IP 192.168.95.19: 1 error occurred:\\n\\t* "
    'Failed to join 192.168.95.19: dial tcp 192.168.95.19:7946: connect: connection refused"\n'
    'time="2026-11-28T01:07:33.18Z" level=info msg="2026/11/28 01:07:33 [INFO] serf: '
    'EventMemberJoin: n9 192.168.95.19\\n"\n'
)


def test_serf_view_replays_joins() -> None:
    assert serf_view(LOG) == {"n8", "n9"}


def test_serf_view_drops_members_that_leave_or_fail() -> None:
    text = LOG + "serf: EventMemberFailed: n9 192.168.95.19\nserf: EventMemberJoin: n1 x\n"
    assert serf_view(text) == {"n8", "n1"}
    assert serf_view(text + "serf: EventMemberLeave: n1 x\n") == {"n8"}


def test_serf_view_of_a_log_without_events_is_empty() -> None:
    assert serf_view('level=info msg="API listen on /x/docker.sock"\n') == set()


def test_islands_are_diagnosed_once_and_explain_cross_island_traffic(tmp_path: Path) -> None:
    lab = FakeLab(fault_lab_spec(), tmp_path / "state")
    lab.split_gossip(["n1", "n2"], ["n3"])
    report = lab.verify()
    members = {r.target: r.details["seen"] for r in report.results if r.check == "underlay.members"}
    assert members == {"n1": ["n1", "n2"], "n2": ["n1", "n2"], "n3": ["n3"]}
    # No engine learned the containers of another island: their VXLAN entries are missing.
    peers = [r for r in report.failed if r.check == "networks.peers"]
    assert peers and all("n3" in r.nodes for r in peers)
    across = [r for r in report.failed if r.check not in ("underlay.members", "networks.peers")]
    assert across and all({r.source, r.target} & {"n3"} == {"n3"} for r in across)
    assert all(r.path == "cross-host" for r in across)
    [found] = report.diagnosis
    assert found.cause == "the gossip cluster is split into 2 islands"
    assert "{n1, n2} | {n3}" in found.detail
    assert found.checks == [
        "connectivity.icmp",
        "connectivity.tcp",
        "connectivity.udp",
        "mtu.df",
        "networks.peers",
        "underlay.members",
    ]


def test_serf_members_are_named_by_the_address_they_advertise() -> None:
    # On real hosts serf's member names are hostnames, not the spec's node names.
    log = (
        "serf: EventMemberJoin: h1 192.168.91.11\n"
        "serf: EventMemberJoin: h2 192.168.91.12\n"
        "serf: EventMemberJoin: stranger 10.9.9.9\n"
        "serf: EventMemberFailed: h2 192.168.91.12\n"
    )
    node_at = {"192.168.91.11": "n1", "192.168.91.12": "n2"}
    assert serf_view(log, node_at) == {"n1", "stranger"}
    assert serf_view(log) == {"h1", "stranger"}


def test_a_scheduling_probe_on_one_island_is_unknown_on_the_other(tmp_path: Path) -> None:
    """Classic swarm: the master's new container is never announced across islands, so
    its failures to reach them follow from the split, not from the scheduling."""
    lab = FakeLab(classic_lab_spec(), tmp_path / "state")
    lab.split_gossip(["master", "a"], ["b"])
    report = lab.verify()
    schedule = [r for r in report.failed if r.check == "swarm.schedule"]
    assert schedule and all(r.details["unreached"] for r in schedule)
    [found] = report.diagnosis
    assert found.cause == "the gossip cluster is split into 2 islands"
    assert "swarm.schedule" in found.checks
