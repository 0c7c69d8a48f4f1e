"""Every node and provider the tests use keeps to the `Node` and `Provider` protocols.

The fakes stand in for the local provider in most unit tests; if they drifted from the
interface (a parameter renamed, a default changed, a method missing), the tests would
pass against a seam production code does not have. Each implementation is compared,
member by member, with the protocol: attributes present, methods called the same way.
"""

from __future__ import annotations

import inspect
import ipaddress
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
from fakelab import FakeLab, UpProvider, fake_context, fault_lab_spec
from lab_specs import LAB_YML, make_ctx

from overlaylab.providers.base import Node, NodePaths, Provider
from overlaylab.providers.local import LocalNode, LocalProvider
from overlaylab.spec import load_spec


def protocol_members(protocol: type) -> dict[str, Any]:
    """name -> the protocol's own definition (None for a plain attribute)."""
    members: dict[str, Any] = dict.fromkeys(protocol.__annotations__)
    for name, value in vars(protocol).items():
        if not name.startswith("_") and (callable(value) or isinstance(value, property)):
            members[name] = value
    return members


def call_shape(function: Any) -> list[tuple[str, Any, Any]]:
    """How a method is called: each parameter's name, kind and default (not its types)."""
    return [(p.name, p.kind, p.default) for p in inspect.signature(function).parameters.values()]


def drift(protocol: type, implementation: object) -> list[str]:
    """How `implementation` differs from `protocol`; empty when it keeps to it."""
    problems = []
    for name, expected in protocol_members(protocol).items():
        if not hasattr(implementation, name):
            problems.append(f"{name}: missing")
        elif callable(expected):
            actual = getattr(type(implementation), name, None)
            if not callable(actual):
                problems.append(f"{name}: not a method")
            elif call_shape(actual) != call_shape(expected):
                found, wanted = inspect.signature(actual), inspect.signature(expected)
                problems.append(f"{name}{found} is not {name}{wanted}")
    return problems


# --- the implementations -------------------------------------------------------------------
def local_provider(tmp_path: Path) -> LocalProvider:
    provider = make_ctx(load_spec(LAB_YML), tmp_path / "state").provider
    assert isinstance(provider, LocalProvider)
    return provider


def fakelab_provider(tmp_path: Path) -> Any:
    return FakeLab(fault_lab_spec(), tmp_path / "state").provider


def steps_provider(tmp_path: Path) -> Any:
    return fake_context(tmp_path, UpProvider()).provider


def vagrant_provider(tmp_path: Path) -> Any:
    # Its nodes are SSH nodes on Vagrant's machines; nothing is started to make them.
    vagrant_yml = LAB_YML.parent / "vagrant.yml"
    return make_ctx(load_spec(vagrant_yml), tmp_path / "state", vagrant_yml).provider


PROVIDERS = {
    "local": (local_provider, "node1"),
    "vagrant": (vagrant_provider, "node1"),
    "fakelab": (fakelab_provider, "n1"),
    "up": (steps_provider, "node1"),
}


@pytest.fixture(params=sorted(PROVIDERS))
def provider_and_node(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Any, Any]:
    make, node = PROVIDERS[request.param]
    provider = make(tmp_path)
    return provider, provider.node(node)


def test_providers_keep_to_the_provider_protocol(provider_and_node: tuple[Any, Any]) -> None:
    provider, _ = provider_and_node
    assert drift(Provider, provider) == []


def test_nodes_keep_to_the_node_protocol(provider_and_node: tuple[Any, Any]) -> None:
    _, node = provider_and_node
    assert drift(Node, node) == []


def test_node_attributes_have_the_protocols_types(provider_and_node: tuple[Any, Any]) -> None:
    provider, node = provider_and_node
    assert isinstance(node.name, str)
    assert isinstance(node.address, ipaddress.IPv4Address)
    assert isinstance(node.paths, NodePaths)
    assert node.cgroup_parent is None or isinstance(node.cgroup_parent, str)
    assert provider.host_address is None or isinstance(provider.host_address, ipaddress.IPv4Address)


def test_a_provider_hands_out_one_node_per_spec_node(provider_and_node: tuple[Any, Any]) -> None:
    provider, node = provider_and_node
    nodes = list(provider.nodes())
    assert node in nodes
    assert len({n.name for n in nodes}) == len(nodes)
    assert provider.node(node.name) is node


def test_the_local_node_is_the_one_checked_here(tmp_path: Path) -> None:
    # The comparison above is only worth something if it covers the real implementation.
    assert isinstance(local_provider(tmp_path).node("node1"), LocalNode)


# --- the comparison itself ------------------------------------------------------------------
class DriftedNode:
    """A node that drifted: a default changed, a parameter renamed, a method gone."""

    name = "n"
    address = ipaddress.IPv4Address("192.0.2.1")
    paths = NodePaths.under(PurePosixPath("/srv/n"))
    cgroup_parent = None

    def engine_ping(self, timeout: float = 5.0) -> bool:
        return True

    def tcp_connect(self, address: str, port: int, timeout: float = 2.0) -> tuple[bool, str]:
        return True, ""


def test_the_comparison_finds_every_kind_of_drift() -> None:
    found = drift(Node, DriftedNode())
    assert any(p.startswith("engine_ping(") for p in found)
    assert any(p.startswith("tcp_connect(") for p in found)
    assert "run: missing" in found and "put_file: missing" in found
    assert not any(p.startswith(("name", "address", "paths", "cgroup_parent")) for p in found)
