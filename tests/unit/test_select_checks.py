"""select_checks: --only and --skip by check id, group or glob, in report order."""

from __future__ import annotations

from overlaylab.verify.check import Check
from overlaylab.verify.run import ALL_CHECKS, WITHOUT_PROBES, ahead_of_probes, select_checks

ALL_IDS = [
    "engines.api",
    "engines.advertise",
    "kv.reachable",
    "kv.registered",
    "underlay.api",
    "underlay.gossip",
    "underlay.members",
    "networks.present",
    "stacks.running",
    "probes.running",
    "networks.peers",
    "connectivity.icmp",
    "connectivity.dns",
    "connectivity.tcp",
    "connectivity.udp",
    "mtu.df",
    "names.resolve",
    "advertise.address",
    "discovery.endpoints",
    "ports.published",
    "isolation.overlays",
    "swarm.nodes",
    "swarm.replicas",
    "swarm.schedule",
    "swarm.services",
]
CONNECTIVITY = ["connectivity.icmp", "connectivity.dns", "connectivity.tcp", "connectivity.udp"]
# Reports what the probes could not reach: it comes with every check that uses them.
PROBES = "probes.running"


def ids(only: tuple[str, ...] = (), skip: tuple[str, ...] = ()) -> list[str]:
    return [c.id for c in select_checks(only, skip)]


def test_default_is_every_check_bottom_up() -> None:
    assert ids() == ALL_IDS == [c.id for c in ALL_CHECKS]


def test_check_ids_are_unique_and_start_with_their_group() -> None:
    registered = [c.id for c in ALL_CHECKS]
    duplicates = sorted({i for i in registered if registered.count(i) > 1})
    assert duplicates == []
    assert [c.id for c in ALL_CHECKS if c.id.split(".", 1)[0] != c.group] == []


def test_every_registered_check_can_be_chosen_by_its_id_and_its_group() -> None:
    for check in ALL_CHECKS:
        assert check.id in ids(only=(check.id,)), check.id
        assert check.id in ids(only=(check.group,)), check.id


def test_only_by_id() -> None:
    assert ids(only=("mtu.df",)) == [PROBES, "mtu.df"]
    assert ids(only=("kv.registered", "engines.api")) == ["engines.api", "kv.registered"]
    assert ids(only=("ports.published",)) == ["ports.published"]  # probes not needed


def test_only_by_group() -> None:
    assert ids(only=("connectivity",)) == [PROBES, *CONNECTIVITY]
    assert ids(only=("kv",)) == ["kv.reachable", "kv.registered"]
    assert ids(only=("mtu",)) == [PROBES, "mtu.df"]
    assert ids(only=("probes",)) == [PROBES]


def test_only_by_glob() -> None:
    assert ids(only=("connectivity.*",)) == [PROBES, *CONNECTIVITY]
    assert ids(only=("*.api",)) == ["engines.api", "underlay.api"]
    assert ids(only=("connectivity.[tu]*",)) == [PROBES, "connectivity.tcp", "connectivity.udp"]


def test_a_group_name_is_not_a_prefix_match() -> None:
    assert ids(only=("connect",)) == []
    assert ids(only=("engines.ap",)) == []


def test_only_repeated_and_mixed() -> None:
    assert ids(only=("isolation", "connectivity")) == [
        PROBES,
        *CONNECTIVITY,
        "isolation.overlays",
    ]
    assert ids(only=("names", "names.resolve", "names.*")) == [PROBES, "names.resolve"]


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
        PROBES,
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


def test_probes_running_cannot_be_skipped_while_a_check_needs_the_probes() -> None:
    # A node whose probe never started must be reported, not silently left untested.
    assert ids(only=("connectivity.icmp",), skip=("probes",)) == [PROBES, "connectivity.icmp"]
    assert PROBES in ids(skip=(PROBES,))
    assert PROBES not in ids(
        skip=(
            PROBES,
            "connectivity",
            "mtu",
            "names",
            "advertise",
            "isolation",
            "swarm.services",
            "swarm.schedule",
            "discovery",
        )
    )


def test_nothing_left() -> None:
    assert ids(skip=("*",)) == []
    assert ids(only=("no-such-check",)) == []
    assert select_checks(only=["connectivity"], skip=["connectivity.*"]) == []


def test_unknown_skip_changes_nothing() -> None:
    assert ids(skip=("no-such-check",)) == ALL_IDS


def test_the_checks_run_while_the_probes_start_are_those_ahead_of_the_probes() -> None:
    """Derived from the definitions: everything before probes.running, none of which
    needs or reads a probe; probes.running and the checks after it wait for them."""
    ahead = ALL_IDS[: ALL_IDS.index("probes.running")]
    assert frozenset(ahead) == WITHOUT_PROBES
    assert not any(c.needs_probes or c.reads_probes for c in ALL_CHECKS if c.id in ahead)
    late = Check("late.one", "late", "reads the probes", lambda vctx: [], reads_probes=True)
    assert ahead_of_probes([ALL_CHECKS[0], late, ALL_CHECKS[1]]) == {ALL_CHECKS[0].id}
