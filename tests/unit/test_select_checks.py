"""select_checks: --only and --skip by check id, group or glob, in report order."""

from __future__ import annotations

from overlaylab.checks.verify import ALL_CHECKS, select_checks

ALL_IDS = [
    "engines.api",
    "engines.advertise",
    "kv.reachable",
    "kv.registered",
    "underlay.api",
    "underlay.gossip",
    "underlay.members",
    "networks.present",
    "connectivity.icmp",
    "connectivity.dns",
    "connectivity.tcp",
    "connectivity.udp",
    "mtu.df",
    "names.resolve",
    "advertise.address",
    "ports.published",
    "isolation.overlays",
]
CONNECTIVITY = ["connectivity.icmp", "connectivity.dns", "connectivity.tcp", "connectivity.udp"]


def ids(only: tuple[str, ...] = (), skip: tuple[str, ...] = ()) -> list[str]:
    return [c.id for c in select_checks(only, skip)]


def test_default_is_every_check_bottom_up() -> None:
    assert ids() == ALL_IDS == [c.id for c in ALL_CHECKS]


def test_check_ids_are_unique_and_start_with_their_group() -> None:
    assert len(set(ALL_IDS)) == len(ALL_IDS)
    assert all(c.id.split(".", 1)[0] == c.group for c in ALL_CHECKS)


def test_only_by_id() -> None:
    assert ids(only=("mtu.df",)) == ["mtu.df"]
    assert ids(only=("kv.registered", "engines.api")) == ["engines.api", "kv.registered"]


def test_only_by_group() -> None:
    assert ids(only=("connectivity",)) == CONNECTIVITY
    assert ids(only=("kv",)) == ["kv.reachable", "kv.registered"]
    assert ids(only=("mtu",)) == ["mtu.df"]


def test_only_by_glob() -> None:
    assert ids(only=("connectivity.*",)) == CONNECTIVITY
    assert ids(only=("*.api",)) == ["engines.api", "underlay.api"]
    assert ids(only=("connectivity.[tu]*",)) == ["connectivity.tcp", "connectivity.udp"]


def test_a_group_name_is_not_a_prefix_match() -> None:
    assert ids(only=("connect",)) == []
    assert ids(only=("engines.ap",)) == []


def test_only_repeated_and_mixed() -> None:
    assert ids(only=("isolation", "connectivity")) == [*CONNECTIVITY, "isolation.overlays"]
    assert ids(only=("names", "names.resolve", "names.*")) == ["names.resolve"]


def test_skip_by_id_group_and_glob() -> None:
    assert ids(skip=("names.resolve",)) == [i for i in ALL_IDS if i != "names.resolve"]
    assert ids(skip=("names", "advertise")) == [
        i for i in ALL_IDS if i not in ("names.resolve", "advertise.address")
    ]
    assert ids(skip=("connectivity.*", "mtu")) == [
        i for i in ALL_IDS if i not in (*CONNECTIVITY, "mtu.df")
    ]


def test_only_and_skip_together() -> None:
    assert ids(only=("connectivity",), skip=("connectivity.dns",)) == [
        "connectivity.icmp",
        "connectivity.tcp",
        "connectivity.udp",
    ]
    assert ids(only=("underlay", "kv"), skip=("*.gossip",)) == [
        "kv.reachable",
        "kv.registered",
        "underlay.api",
        "underlay.members",
    ]


def test_skip_wins_over_only() -> None:
    assert ids(only=("mtu.df",), skip=("mtu",)) == []


def test_nothing_left() -> None:
    assert ids(skip=("*",)) == []
    assert ids(only=("no-such-check",)) == []
    assert select_checks(only=["connectivity"], skip=["connectivity.*"]) == []


def test_unknown_skip_changes_nothing() -> None:
    assert ids(skip=("no-such-check",)) == ALL_IDS
