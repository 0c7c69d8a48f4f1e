"""The picture of a lab: what is drawn from a spec, how results colour it, which paths
are drawn red, and that Graphviz draws it (or a missing Graphviz is said plainly)."""

from __future__ import annotations

import html
import time
from pathlib import Path

import pytest
from html_reports import big_spec, broken_report, healthy_report
from lab_specs import LAB_YML, lab_variant

from overlaylab.errors import OverlaylabError
from overlaylab.report import drawing, topology
from overlaylab.report.drawing import inline_svg, output_format, render, to_dot
from overlaylab.report.topology import (
    Link,
    build_topology,
    compose_networks,
    kv_id,
    node_id,
    overlay_id,
    probe_id,
    service_id,
)
from overlaylab.spec import load_spec
from overlaylab.spec.models import ClusterSpec


@pytest.fixture
def spec() -> ClusterSpec:
    return load_spec(LAB_YML)


def _links(topo: topology.Topology, kind: str) -> set[tuple[str, str]]:
    return {(link.tail, link.head) for link in topo.links if link.kind == kind}


def test_the_default_lab_from_its_spec(spec: ClusterSpec) -> None:
    topo = build_topology(spec, service_networks=compose_networks(spec, LAB_YML.parent))
    assert topo.ids("switch") == ["switch"]
    assert topo.ids("kv") == [kv_id("kv")]
    assert topo.ids("engine") == [node_id(n) for n in ("node1", "node2", "node3")]
    assert topo.ids("overlay") == [overlay_id("dn")]
    # Two probes per engine node and overlay, as verify starts them.
    assert sorted(topo.ids("probe")) == sorted(
        probe_id(f"probe-dn-{n}{suffix}")
        for n in ("node1", "node2", "node3")
        for suffix in ("", "-b")
    )
    assert topo.ids("service") == [service_id("demo", "mongo"), service_id("demo", "web")]
    assert topo.box(service_id("demo", "web")).parent == "node1"
    assert topo.box(service_id("demo", "mongo")).parent == "node2"
    # Every node is cabled to the lab switch, and so is this machine (host_link).
    assert _links(topo, "lab") == {
        ("host", "switch"),
        ("switch", kv_id("kv")),
        *(("switch", node_id(n)) for n in ("node1", "node2", "node3")),
    }
    # The compose file puts both services on `dn`.
    overlay = _links(topo, "overlay")
    assert (service_id("demo", "web"), overlay_id("dn")) in overlay
    assert (service_id("demo", "mongo"), overlay_id("dn")) in overlay
    assert len(overlay) == 6 + 2
    # Nothing ran: nothing is coloured, nothing is red.
    assert {b.status for b in topo.boxes} == {None}
    assert not _links(topo, "failing")


def test_labels_name_addresses_and_the_store(spec: ClusterSpec) -> None:
    topo = build_topology(spec)
    assert "192.168.99.0/24" in topo.box("switch").label
    assert topo.box(kv_id("kv")).label.splitlines() == ["kv", "192.168.99.10", "etcd :2379"]
    assert "192.168.99.12" in topo.box(node_id("node2")).label
    assert "10.0.9.0/24" in topo.box(overlay_id("dn")).label


def test_a_kv_node_that_runs_an_engine_keeps_its_store_inside(spec: ClusterSpec) -> None:
    nodes = [{"name": "kv", "roles": ["kv", "engine"]}, {"name": "node1"}]
    topo = build_topology(lab_variant(nodes=nodes, stacks=[]))
    assert topo.box(kv_id("kv")).parent == "kv"
    assert topo.ids("engine") == [node_id("kv"), node_id("node1")]
    assert ("switch", kv_id("kv")) not in _links(topo, "lab")


def test_healthy_results_colour_everything_green(spec: ClusterSpec) -> None:
    topo = build_topology(spec, healthy_report(spec).results)
    for kind in ("kv", "engine", "overlay", "probe"):
        assert {topo.box(i).status for i in topo.ids(kind)} == {"pass"}, kind
    assert not _links(topo, "failing")


def test_each_node_takes_its_worst_result(spec: ClusterSpec) -> None:
    results = broken_report(spec, "node2").results
    topo = build_topology(spec, results)
    # node1 and node3 share failing pairs with node2: every result naming a node counts.
    assert [topo.box(i).status for i in topo.ids("engine")] == ["fail", "fail", "fail"]
    assert topo.box(kv_id("kv")).status == "pass"
    # The second probes only test same-host paths, which VXLAN does not carry.
    assert topo.box(probe_id("probe-dn-node2-b")).status == "pass"
    assert topo.box(probe_id("probe-dn-node2")).status == "fail"


def test_skip_ranks_between_pass_and_fail() -> None:
    assert topology.worst(["pass", "skip"]) == "skip"
    assert topology.worst(["skip", "fail", "pass"]) == "fail"
    assert topology.worst(["fail", "error"]) == "error"
    assert topology.worst([]) is None


def test_failing_paths_are_red_links_between_the_probes(spec: ClusterSpec) -> None:
    topo = build_topology(spec, broken_report(spec, "node2").results)
    failing = [link for link in topo.links if link.kind == "failing"]
    node2 = probe_id("probe-dn-node2")
    assert {frozenset((link.tail, link.head)) for link in failing} == {
        frozenset((probe_id("probe-dn-node1"), node2)),
        frozenset((probe_id("probe-dn-node3"), node2)),
    }
    for link in failing:
        assert link.both_ways  # node2 neither sends nor receives VXLAN
        assert link.label == "icmp mtu.df tcp udp"


def test_node_to_node_failures_link_the_nodes(spec: ClusterSpec) -> None:
    results = healthy_report(spec).results
    for result in results:
        if result.check == "underlay.api" and (result.source, result.target) == ("node1", "node3"):
            result.status = "fail"
    topo = build_topology(spec, results)
    assert [link for link in topo.links if link.kind == "failing"] == [
        Link(node_id("node1"), node_id("node3"), "failing", "underlay.api")
    ]


def test_the_dot_source_has_a_table_per_node_and_red_links(spec: ClusterSpec) -> None:
    topo = build_topology(spec, broken_report(spec, "node2").results)
    source = drawing.to_dot(topo).source
    assert source.count("<TABLE") == 3
    assert 'PORT="probe_probe-dn-node2"' in source
    assert drawing.FAILING_COLOUR in source
    assert "constraint=false" in source


def test_inline_svg_is_an_svg_element_only(spec: ClusterSpec) -> None:
    svg = inline_svg(build_topology(spec, broken_report(spec).results))
    assert svg.startswith("<svg")
    assert svg.endswith("</svg>")
    assert "<!DOCTYPE" not in svg
    assert "<?xml" not in svg
    # dot writes "-" in text as "&#45;".
    assert "probe-dn-node2" in html.unescape(svg)
    assert drawing.FAILING_COLOUR in svg


def test_png_is_a_png(spec: ClusterSpec) -> None:
    assert render(build_topology(spec), "png").startswith(b"\x89PNG\r\n\x1a\n")


def test_a_twenty_node_lab_draws_quickly() -> None:
    spec = big_spec(engines=20, networks=2)
    results = broken_report(spec, "node7").results
    started = time.monotonic()
    topo = build_topology(spec, results)
    svg = inline_svg(topo)
    took = time.monotonic() - started
    assert len(topo.ids("engine")) == 20
    assert len(topo.ids("probe")) == 20 * 2 * 2
    # 19 other nodes x 2 overlays, each one red link to node7's probe.
    assert len([link for link in topo.links if link.kind == "failing"]) == 38
    assert "probe-net1-node20" in html.unescape(svg)
    assert took < 10, f"drawing 20 nodes took {took:.1f}s"


def test_missing_dot_is_an_error_that_says_what_to_install(
    spec: ClusterSpec, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no dot anywhere
    with pytest.raises(OverlaylabError) as raised:
        render(build_topology(spec), "svg")
    message = str(raised.value)
    assert "apt-get install graphviz" in message
    assert "\n" not in message  # one paragraph, not a traceback


def test_a_failing_dot_is_an_overlaylab_error(
    spec: ClusterSpec, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake = tmp_path / "dot"
    fake.write_text("#!/bin/sh\necho 'Error: syntax error' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(OverlaylabError, match=r"dot failed \(exit 1\): Error: syntax error"):
        render(build_topology(spec), "svg")


@pytest.mark.parametrize(
    ("name", "fmt"), [("lab.svg", "svg"), ("out/lab.PNG", "png"), ("a.b.svg", "svg")]
)
def test_output_format_from_the_extension(name: str, fmt: str) -> None:
    assert output_format(name) == fmt


@pytest.mark.parametrize(("name", "said"), [("lab.jpg", "'.jpg'"), ("lab", "no extension")])
def test_other_extensions_are_refused(name: str, said: str) -> None:
    with pytest.raises(OverlaylabError) as raised:
        output_format(name)
    assert str(raised.value) == f"{name}: the picture is written as .svg or .png, not {said}"


def test_compose_networks_are_best_effort(spec: ClusterSpec, tmp_path: Path) -> None:
    assert compose_networks(spec, LAB_YML.parent) == {
        ("demo", "web"): ["dn"],
        ("demo", "mongo"): ["dn"],
    }
    # The compose file is not where the spec says: services are drawn unattached.
    assert compose_networks(spec, tmp_path) == {("demo", "web"): [], ("demo", "mongo"): []}
    compose = tmp_path / "stacks" / "demo" / "docker-compose.yml"
    compose.parent.mkdir(parents=True)
    compose.write_text("services:\n  web:\n    networks: {dn: {}, back: {}}\n  mongo: {}\n")
    moved = tmp_path / "inventory"
    assert compose_networks(spec, moved) == {("demo", "web"): ["dn", "back"], ("demo", "mongo"): []}


def test_an_internal_overlay_is_drawn_as_one(spec: ClusterSpec) -> None:
    internal = spec.model_copy(
        update={"networks": [spec.networks[0].model_copy(update={"internal": True})]}
    )
    box = build_topology(internal).box(overlay_id("dn"))
    assert box.dashed and "internal: no egress" in box.label
    assert "dashed" in to_dot(build_topology(internal)).source
    plain = build_topology(spec).box(overlay_id("dn"))
    assert not plain.dashed and "internal" not in plain.label
