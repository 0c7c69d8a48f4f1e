"""Gossip islands: each engine's serf view, replayed from its log, and the diagnosis."""

from __future__ import annotations

from pathlib import Path

from overlaylab.checks.diagnosis import diagnose
from overlaylab.checks.result import CheckResult
from overlaylab.checks.underlay import serf_view
from overlaylab.spec.loader import parse_spec

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


def _spec(tmp_path: Path):  # type: ignore[no-untyped-def]
    text = (
        "apiVersion: overlaylab/v1\nkind: Cluster\nname: t\nnodes:\n"
        "  - name: kv\n    roles: [kv]\n  - name: n1\n  - name: n2\n  - name: n3\n"
        "networks:\n  - name: dn\n"
    )
    return parse_spec(text, source="t.yml", spec_dir=tmp_path)


def test_islands_are_diagnosed_once_and_explain_cross_island_traffic(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    views = {"n1": ["n1", "n2"], "n2": ["n1", "n2"], "n3": ["n3"]}
    results = [
        CheckResult(
            "underlay.members",
            node,
            "fail" if len(seen) < 3 else "pass",
            hint="join once",
            nodes=[node],
            details={"seen": seen},
        )
        for node, seen in views.items()
    ]
    results += [
        CheckResult(
            "connectivity.icmp",
            f"{a} -> {b} over dn",
            "fail",
            nodes=sorted([a, b]),
            details={"path": "cross-host"},
        )
        for a, b in (("n1", "n3"), ("n3", "n1"), ("n2", "n3"), ("n3", "n2"))
    ]
    results.append(
        CheckResult(
            "connectivity.icmp",
            "n1 -> n2 over dn",
            "pass",
            nodes=["n1", "n2"],
            details={"path": "cross-host"},
        )
    )
    found = diagnose(spec, results)
    assert [d.cause for d in found] == ["the gossip cluster is split into 2 islands"]
    assert "{n1, n2} | {n3}" in found[0].detail
    assert found[0].checks == ["connectivity.icmp", "underlay.members"]
