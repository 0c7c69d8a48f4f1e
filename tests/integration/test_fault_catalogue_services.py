"""The fault catalogue's service faults on a real default lab (the KV store stopped or
hung, an engine killed or stopped, an engine advertising a non-lab address, junk in the
discovery store), the refusals of `invoke fault`, `status` listing what is active, and
`down` removing faults still active."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fault_lab import SPEC, default_lab, inject, nothing_left, round_trip
from lab_cli import invoke

from overlaylab.context import LabContext
from overlaylab.faults import active_faults


@pytest.fixture(scope="module")
def lab() -> Iterator[LabContext]:
    yield from default_lab()


# Without the store, name lookups and what apps advertise wait out their timeouts.
NO_STORE = ("--skip", "names", "--skip", "advertise")
CASES = [
    ("kv-stopped", NO_STORE),
    ("kv-hung", NO_STORE),
    ("engine-killed", ()),
    ("engine-stopped", ()),
    ("advertise", ("--skip", "names")),
    ("discovery-junk", ()),
]


@pytest.mark.parametrize(("kind", "extra"), CASES, ids=[c[0] for c in CASES])
def test_service_fault_is_diagnosed_where_expected_then_healed_to_green(
    lab: LabContext, kind: str, extra: tuple[str, ...]
) -> None:
    round_trip(lab, kind, extra, 8.0)


def test_refusals_are_one_clear_message_and_leave_nothing(lab: LabContext) -> None:
    for args, says in [
        (("fault", "vxlan", "node9"), "no engine node 'node9'"),
        (("fault", "nosuch"), "no fault kind 'nosuch'"),
        (("fault", "mtu", "-o", "mtu=big"), "mtu must be a number"),
        (("fault", "delay"), "delay cannot be injected"),
        (("heal",), "name the fault to heal, or --all"),
    ]:
        result = invoke(*args, "-i", SPEC, check=False)
        assert result.returncode == 2, result.stdout + result.stderr
        assert says in result.stderr and "Traceback" not in result.stderr
    inject("vxlan", "node1")
    try:
        again = invoke("fault", "vxlan", "node2", "-i", SPEC, check=False)
        assert again.returncode == 2 and "already active" in again.stderr
        assert "active fault vxlan on node1" in invoke("status", "-i", SPEC).stdout
    finally:
        invoke("heal", "--all", "-i", SPEC)
    nothing_left(lab)


def test_down_removes_the_faults_still_active(lab: LabContext) -> None:
    """Last in the module: its `down` and host snapshot prove the faults gone."""
    inject("vxlan", "node1")
    inject("mtu", "node2")
    inject("kv-hung")
    assert {a.kind for a in active_faults(lab)} == {"vxlan", "mtu", "kv-hung"}
    down = invoke("down", "-i", SPEC)
    assert "fault kv-hung removed from the lab" in down.stderr, down.stderr
