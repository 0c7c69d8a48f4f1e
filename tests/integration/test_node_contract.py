"""The node contract (node_contract.py) over local nodes and nodes reached over SSH."""

from __future__ import annotations

import pytest
from node_contract import (  # noqa: F401 - collected here, with this module's fixtures
    test_a_program_sized_file_round_trips,
    test_a_service_starts_logs_and_stops,
    test_files_round_trip_with_their_mode,
    test_run_sees_the_node_network_and_reports_failures,
    test_the_engine_answers_through_the_handle,
    test_the_lab_network_seen_from_the_node,
)
from shared_labs import SharedLab

from overlaylab.context import LabContext
from overlaylab.providers.base import Node

# One entry per kind of node this machine can run: the shared lab (conftest.py) whose
# nodes it is, its engine node and its KV node. The SSH hosts' lab is test_ssh_provider.py's
# too; each shared lab checks the host after its own `down`, one lab up at a time.
KINDS = {"local": ("shared_small_lab", "a", "kv"), "ssh": ("shared_ssh_lab", "n1", "kv")}


# The parameter names the lab fixture, so that conftest.py sees which lab a test needs
# (and runs the tests of one lab one after another); the ids stay the kinds.
@pytest.fixture(params=[KINDS[k][0] for k in sorted(KINDS)], ids=sorted(KINDS))
def kind(request: pytest.FixtureRequest) -> tuple[LabContext, str, str]:
    [(_, engine, kv)] = [entry for entry in KINDS.values() if entry[0] == request.param]
    shared: SharedLab = request.getfixturevalue(request.param)
    return shared.context, engine, kv


@pytest.fixture
def node(kind: tuple[LabContext, str, str]) -> Node:
    ctx, engine, _ = kind
    return ctx.node(engine)


@pytest.fixture
def kv_node(kind: tuple[LabContext, str, str]) -> Node:
    ctx, _, kv = kind
    return ctx.node(kv)
