"""`invoke verify --html`: what the page says and shows, that it fetches nothing, the
page written when verify cannot run, and the task writing it in every case."""

from __future__ import annotations

import io
import re
import time
from pathlib import Path

import pytest
from html_reports import Page, big_spec, broken_report, healthy_report, make_report
from invoke import Context
from invoke.exceptions import Exit
from lab_specs import LAB_YML
from rich.console import Console

from overlaylab.context import LabContext
from overlaylab.report.html import (
    build_matrices,
    endpoint_label,
    render_error,
    render_report,
)
from overlaylab.report.topology import compose_networks
from overlaylab.spec import load_spec
from overlaylab.spec.models import ClusterSpec
from overlaylab.tasks import verify as verify_task
from overlaylab.verify.result import CheckResult
from overlaylab.verify.run import VerifyReport

PAIR_CHECKS = ("connectivity.icmp", "connectivity.dns", "connectivity.tcp", "connectivity.udp")


@pytest.fixture
def spec() -> ClusterSpec:
    return load_spec(LAB_YML)


def page_of(report: VerifyReport, spec: ClusterSpec) -> str:
    networks = compose_networks(spec, LAB_YML.parent)
    return render_report(
        report, spec=spec, spec_path="inventory/lab.yml", service_networks=networks
    )


def pairs_tested(report: VerifyReport, network: str, check: str) -> list[CheckResult]:
    return [
        r
        for r in report.results
        if r.check == check and r.network == network and r.source and r.target
    ]


# --- the matrices ----------------------------------------------------------------------


@pytest.mark.parametrize("check", [*PAIR_CHECKS, "mtu.df"])
def test_one_cell_per_tested_pair(spec: ClusterSpec, check: str) -> None:
    report = healthy_report(spec)
    page = Page(page_of(report, spec))
    cells = page.cells("dn", check)
    # 3 nodes: 6 cross-host pairs and 3 first -> second probe pairs.
    assert len(cells) == len(pairs_tested(report, "dn", check)) == 9
    squares = {(c.attrs["data-source"], c.attrs["data-target"]) for c in cells}
    assert len(squares) == 9
    assert ("node1", "node1 (2nd)") in squares
    assert {c.attrs["data-status"] for c in cells} == {"pass"}


def test_lab_network_checks_get_matrices_too(spec: ClusterSpec) -> None:
    page = Page(page_of(healthy_report(spec), spec))
    assert len(page.cells("", "underlay.api")) == 6
    kv = page.cells("", "kv.reachable")
    assert {(c.attrs["data-source"], c.attrs["data-target"]) for c in kv} == {
        ("node1", "kv"),
        ("node2", "kv"),
        ("node3", "kv"),
    }
    # A result without a source (engines.api) or a skip has no square.
    assert not page.cells("", "engines.api")
    assert not page.cells("", "isolation.overlays")


def test_failing_cells_are_marked(spec: ClusterSpec) -> None:
    report = broken_report(spec, "node2")
    page = Page(page_of(report, spec))
    for check in ("connectivity.icmp", "connectivity.tcp", "connectivity.udp", "mtu.df"):
        cells = page.cells("dn", check)
        failing = {
            (c.attrs["data-source"], c.attrs["data-target"]) for c in cells if "fail" in c.classes
        }
        assert failing == {
            ("node1", "node2"),
            ("node2", "node1"),
            ("node2", "node3"),
            ("node3", "node2"),
        }, check
        for cell in cells:
            assert ("fail" in cell.classes) == (cell.attrs["data-status"] == "fail")
            assert ("failed" in cell.classes) == (cell.attrs["data-status"] == "fail")
    # Names resolve: DNS does not go through VXLAN.
    assert {c.attrs["data-status"] for c in page.cells("dn", "connectivity.dns")} == {"pass"}


def test_cells_say_message_and_latency_on_hover_and_link_their_result(spec: ClusterSpec) -> None:
    report = healthy_report(spec)
    page = Page(page_of(report, spec))
    cell = next(
        c
        for c in page.cells("dn", "connectivity.icmp")
        if (c.attrs["data-source"], c.attrs["data-target"]) == ("node1", "node2")
    )
    assert cell.attrs["title"] == (
        "PASS node1 -> node2 over dn · icmp to probe-dn-node2 ok · latency 0.05 ms · 0.012 s"
    )
    link = page.elements[page.elements.index(cell) + 1]
    assert link.tag == "a"
    target = page.by_id(link.attrs["href"].removeprefix("#"))
    assert target is not None
    assert target.tag == "details"
    assert "node1 -> node2 over dn" in target.text


def test_second_probes_and_other_overlays_get_their_own_labels() -> None:
    second = CheckResult(
        check="connectivity.icmp",
        subject="node1 -> node1 (2nd probe) over dn",
        status="pass",
        source="node1",
        target="node1",
        network="dn",
        details={"from": "probe-dn-node1", "to": "probe-dn-node1-b"},
    )
    assert endpoint_label(second, "from") == "node1"
    assert endpoint_label(second, "to") == "node1 (2nd)"
    across = CheckResult(
        check="isolation.overlays",
        subject="node1 on front -> node2 on back",
        status="pass",
        source="node1",
        target="node2",
        network="front",
        details={"from": "probe-front-node1", "to": "probe-back-node2-b", "to_network": "back"},
    )
    assert endpoint_label(across, "to") == "node2 (2nd) on back"


def test_isolation_over_three_overlays_keeps_one_cell_per_pair() -> None:
    nets = ("a", "b", "c")
    results = [
        CheckResult(
            check="isolation.overlays",
            subject=f"node1 on {src} -> node2 on {dst}",
            status="fail" if (src, dst) == ("a", "c") else "pass",
            source="node1",
            target="node2",
            network=src,
            details={"from": f"probe-{src}-node1", "to": f"probe-{dst}-node2", "to_network": dst},
        )
        for src in nets
        for dst in nets
        if src != dst
    ]
    matrices = build_matrices(results, ["node1", "node2"])
    assert [(m.network, m.check) for m in matrices] == [(n, "isolation.overlays") for n in nets]
    a = matrices[0]
    assert a.columns == ["node2 on b", "node2 on c"]
    assert a.pairs == 2
    assert a.cells[("node1", "node2 on c")].status == "fail"


def test_published_ports_of_one_node_get_a_column_each() -> None:
    results = [
        CheckResult(
            check="ports.published",
            subject=f"node2 -> node1:{port}",
            status="pass",
            source="node2",
            target="node1",
            details={"port": port},
        )
        for port in (80, 8080)
    ]
    (matrix,) = build_matrices(results)
    assert matrix.columns == ["node1:80", "node1:8080"]
    assert matrix.pairs == 2


def test_rows_follow_the_spec_then_natural_order() -> None:
    results = [
        CheckResult(check="underlay.api", subject="", status="pass", source=a, target=b)
        for a, b in (("node10", "node2"), ("node2", "node10"), ("kv9", "node2"))
    ]
    (matrix,) = build_matrices(results, ["kv9"])
    assert matrix.rows == ["kv9", "node2", "node10"]


# --- the page --------------------------------------------------------------------------


def test_diagnosis_and_summary_come_first(spec: ClusterSpec) -> None:
    report = broken_report(spec, "node2")
    html = page_of(report, spec)
    page = Page(html)
    cause = "overlay data (VXLAN, udp/4789) is blocked to and from node2"
    diagnosis = page.by_id("diagnosis")
    assert diagnosis is not None
    assert cause in diagnosis.text
    summary = page.by_id("summary")
    assert summary is not None
    assert " ".join(summary.text.split()).startswith(
        "cluster lab · 58 results · 16 failed · 14.2 s"
    )
    positions = [html.index(f'id="{i}"') for i in ("diagnosis", "summary", "topology", "paths")]
    assert positions == sorted(positions)
    assert html.index('id="paths"') < html.index('id="results"')


def test_a_healthy_report_says_so(spec: ClusterSpec) -> None:
    page = Page(page_of(healthy_report(spec), spec))
    diagnosis = page.by_id("diagnosis")
    assert diagnosis is not None
    assert "every check passed" in diagnosis.text
    assert "ok" in diagnosis.classes


def test_failures_without_a_known_cause_are_not_hidden(spec: ClusterSpec) -> None:
    results = healthy_report(spec).results
    results[0].status = "error"
    results[0].message = "the check could not run: RuntimeError: boom"
    report = make_report(spec, results)
    report.diagnosis = []
    diagnosis = Page(page_of(report, spec)).by_id("diagnosis")
    assert diagnosis is not None
    assert "1 failure without a known cause" in diagnosis.text


def test_every_result_expands_to_command_output_and_hint(spec: ClusterSpec) -> None:
    report = broken_report(spec, "node2")
    page = Page(page_of(report, spec))
    shown = [e for e in page.elements if e.tag == "details" and "result" in e.classes]
    assert len(shown) == len(report.results)
    failing = next(e for e in shown if e.attrs["data-status"] == "fail")
    assert "$ docker exec probe-dn-node" in failing.text
    assert "100% packet loss" in failing.text
    assert "hint: overlay traffic between hosts is VXLAN on udp/4789" in failing.text


def test_probe_output_is_escaped(spec: ClusterSpec) -> None:
    report = healthy_report(spec)
    report.results[0].output = "<script>alert('owned')</script>"
    report.results[0].message = '" onmouseover="alert(1)'
    html = page_of(report, spec)
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(&#39;owned&#39;)&lt;/script&gt;" in html
    assert 'onmouseover="alert' not in html


def test_the_page_fetches_nothing(spec: ClusterSpec) -> None:
    html = page_of(broken_report(spec), spec)
    page = Page(html)
    for element in page.elements:
        for attr in ("src", "href", "xlink:href", "action", "data", "poster"):
            value = element.attrs.get(attr, "")
            assert not value or value.startswith("#"), (element.tag, attr, value)
    assert not page.find("link")
    assert not page.find("iframe")
    assert not re.search(r"@import|url\(", html)
    assert not re.search(r"\b(?:src|href)\s*=\s*[\"']?(?:https?:)?//", html)
    assert "<svg" in html
    assert "<!DOCTYPE svg" not in html  # dot's DTD line (a URL) is not inlined


def test_twenty_nodes_render_with_one_cell_per_pair() -> None:
    spec = big_spec(engines=20, networks=2)
    report = broken_report(spec, "node7")
    started = time.monotonic()
    html = render_report(report, spec=spec)
    took = time.monotonic() - started
    page = Page(html)
    cells = page.cells("net1", "connectivity.tcp")
    assert len(cells) == len(pairs_tested(report, "net1", "connectivity.tcp")) == 20 * 19 + 20
    assert sum("fail" in c.classes for c in cells) == 2 * 19
    assert took < 20, f"rendering took {took:.1f}s"


# --- verify could not run --------------------------------------------------------------


def test_the_early_page_states_the_error(spec: ClusterSpec) -> None:
    html = render_error(
        "the lab is not up: run `invoke up`",
        checks_run=["engines.api", "connectivity.icmp"],
        spec=spec,
        spec_path="inventory/lab.yml",
    )
    page = Page(html)
    error = page.by_id("error")
    assert error is not None
    assert error.text == "the lab is not up: run `invoke up`"
    assert "verify did not run" in page.text
    assert "engines.api, connectivity.icmp" in page.text
    assert "<svg" in html  # the spec could be read: the lab as it should be
    assert page.by_id("paths") is None
    assert page.by_id("results") is None


# --- the task ----------------------------------------------------------------------------


@pytest.fixture
def warnings(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    buffer = io.StringIO()
    console = Console(file=buffer, width=300, highlight=False, color_system=None)
    monkeypatch.setattr(verify_task, "err", console)
    return buffer


def test_task_writes_the_page_when_the_spec_is_missing(tmp_path: Path) -> None:
    path = tmp_path / "reports" / "verify.html"
    with pytest.raises(Exit) as exited:
        verify_task.verify(Context(), inventory=str(tmp_path / "nope.yml"), html=str(path))
    assert exited.value.code == 2
    page = Page(path.read_text())
    error = page.by_id("error")
    assert error is not None
    assert "nope.yml" in error.text
    assert "no picture: the spec could not be read" in page.text


def test_task_writes_the_page_on_an_unexpected_crash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(*args: object, **kwargs: object) -> None:
        raise RuntimeError("docker socket gone")

    monkeypatch.setattr(verify_task, "open_lab", crash)
    path = tmp_path / "verify.html"
    with pytest.raises(RuntimeError):
        verify_task.verify(Context(), inventory=str(LAB_YML), html=str(path))
    html = path.read_text()
    error = Page(html).by_id("error")
    assert error is not None
    assert error.text == "RuntimeError: docker socket gone"
    assert "<svg" in html


def test_task_writes_the_report_after_a_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ctx: LabContext
) -> None:
    report = broken_report(ctx.spec)
    monkeypatch.setattr(verify_task, "open_lab", lambda *a, **kw: ctx)
    monkeypatch.setattr(verify_task, "run_verify", lambda ctx, checks, timeout: report)
    path = tmp_path / "verify.html"
    junit = tmp_path / "verify.xml"
    with pytest.raises(Exit) as exited:
        verify_task.verify(Context(), inventory=str(LAB_YML), html=str(path), junit=str(junit))
    assert exited.value.code == 1
    assert junit.exists()
    page = Page(path.read_text())
    assert len(page.cells("dn", "connectivity.udp")) == 9
    assert "demo/web" in page.text  # the picture, from the spec and its compose file


def test_task_without_graphviz_still_writes_the_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ctx: LabContext, warnings: io.StringIO
) -> None:
    monkeypatch.setattr(verify_task, "open_lab", lambda *a, **kw: ctx)
    monkeypatch.setattr(
        verify_task, "run_verify", lambda ctx, checks, timeout: healthy_report(ctx.spec)
    )
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    path = tmp_path / "verify.html"
    verify_task.verify(Context(), inventory=str(LAB_YML), html=str(path))
    html = path.read_text()
    assert "<svg" not in html
    assert "apt-get install graphviz" in html
    assert len(Page(html).cells("dn", "connectivity.icmp")) == 9
    assert "apt-get install graphviz" in warnings.getvalue()


def test_an_unwritable_page_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ctx: LabContext
) -> None:
    monkeypatch.setattr(verify_task, "open_lab", lambda *a, **kw: ctx)
    monkeypatch.setattr(
        verify_task, "run_verify", lambda ctx, checks, timeout: healthy_report(ctx.spec)
    )
    (tmp_path / "taken").write_text("a file, not a folder")
    with pytest.raises(Exit) as exited:
        verify_task.verify(
            Context(), inventory=str(LAB_YML), html=str(tmp_path / "taken" / "x.html")
        )
    assert exited.value.code == 2
    assert "cannot write the HTML report" in str(exited.value.message)


def test_h_stays_help_for_verify() -> None:
    from overlaylab.tasks import ns

    names = {n for arg in ns["verify"].get_arguments() for n in arg.names}
    assert "html" in names
    assert "h" not in names
