"""The node contract (node_contract.py) over local nodes and nodes reached over SSH."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hostsnap import HostSnapshot, wait_until_clean
from lab_cli import ROOT, invoke
from node_contract import (  # noqa: F401 - collected here, with this module's fixtures
    test_a_program_sized_file_round_trips,
    test_a_service_starts_logs_and_stops,
    test_files_round_trip_with_their_mode,
    test_run_sees_the_node_network_and_reports_failures,
    test_the_engine_answers_through_the_handle,
    test_the_lab_network_seen_from_the_node,
)
from sshd_hosts import ssh_spec, sshd_hosts

from overlaylab.context import LabContext, open_lab
from overlaylab.providers.base import Node

SMALL = ROOT / "tests/testdata/labs/small.yml"


@pytest.fixture(scope="module", autouse=True)
def host_unchanged() -> Iterator[None]:
    """Taken before either lab and compared after both are down: the labs of this module
    overlap, so neither may judge the host while the other runs."""
    before = HostSnapshot.take()
    yield
    assert wait_until_clean(before) == []


@pytest.fixture(scope="module")
def local_lab(host_unchanged: None) -> Iterator[LabContext]:
    invoke("up", "-i", str(SMALL))
    try:
        yield open_lab(SMALL)
    finally:
        invoke("down", "-i", str(SMALL), check=False)


@pytest.fixture(scope="module")
def ssh_lab(host_unchanged: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabContext]:
    """The same kind of lab on hosts reached over SSH (real sshd on bare hosts)."""
    folder = tmp_path_factory.mktemp("ssh")
    with sshd_hosts(folder) as hosts:
        spec = ssh_spec(folder, hosts)
        invoke("up", "-i", str(spec))
        try:
            yield open_lab(spec)
        finally:
            invoke("down", "-i", str(spec), check=False)


# One entry per kind of node this machine can run: (lab fixture, engine node, KV node).
KINDS = {"local": ("local_lab", "a", "kv"), "ssh": ("ssh_lab", "n1", "kv")}


@pytest.fixture(params=sorted(KINDS))
def kind(request: pytest.FixtureRequest) -> tuple[LabContext, str, str]:
    fixture, engine, kv = KINDS[request.param]
    return request.getfixturevalue(fixture), engine, kv


@pytest.fixture
def node(kind: tuple[LabContext, str, str]) -> Node:
    ctx, engine, _ = kind
    return ctx.node(engine)


@pytest.fixture
def kv_node(kind: tuple[LabContext, str, str]) -> Node:
    ctx, _, kv = kind
    return ctx.node(kv)
