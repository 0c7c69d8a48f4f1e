"""Verify results as a real run would report them, and a reader for the HTML page, for
the HTML report and topology tests.

Plain helpers, imported as `from html_reports import ...` (pytest puts tests/unit on
sys.path). The results follow what the checks produce for a spec: every engine node
answers, reaches the KV store and the other nodes, and on each overlay every ordered
pair of first probes plus each node's first -> second probe is tested by ICMP, DNS,
TCP, UDP and a full-size packet. `broken_report` drops VXLAN to and from one node, as
an iptables rule for udp/4789 in its namespace does.
"""

from __future__ import annotations

from collections.abc import Iterator
from html.parser import HTMLParser
from itertools import permutations

from lab_specs import lab_data, lab_variant

from overlaylab.spec.models import ClusterSpec
from overlaylab.verify.diagnosis import diagnose
from overlaylab.verify.probes import probe_name
from overlaylab.verify.result import CheckResult
from overlaylab.verify.run import VerifyReport

DATA_CHECKS = ("connectivity.icmp", "connectivity.dns", "connectivity.tcp", "connectivity.udp")
# What a blocked udp/4789 breaks: packets, not names (DNS is answered through the KV store).
VXLAN_CHECKS = ("connectivity.icmp", "connectivity.tcp", "connectivity.udp", "mtu.df")


def big_spec(engines: int = 20, networks: int = 2) -> ClusterSpec:
    """The default lab widened to `engines` engine nodes and `networks` overlays."""
    data = lab_data()
    nodes = [{"name": "kv", "address": "192.168.99.10", "roles": ["kv"]}]
    nodes += [
        {"name": f"node{i}", "address": f"192.168.99.{10 + i}", "roles": ["engine"]}
        for i in range(1, engines + 1)
    ]
    nets = [{"name": f"net{i}", "subnet": f"10.0.{10 + i}.0/24"} for i in range(networks)]
    stacks = data["stacks"]
    return lab_variant(nodes=nodes, networks=nets, stacks=stacks)


def probe_pairs(spec: ClusterSpec) -> Iterator[tuple[str, str, str, str, str]]:
    """(network, source node, target node, source probe, target probe) as verify tests them."""
    engines = [n.name for n in spec.engine_nodes]
    for net in spec.networks:
        for a, b in permutations(engines, 2):
            yield net.name, a, b, probe_name(net.name, a), probe_name(net.name, b)
        for a in engines:
            yield net.name, a, a, probe_name(net.name, a), probe_name(net.name, a, "b")


def _pair_result(
    check: str, pair: tuple[str, str, str, str, str], ok: bool, latency: float
) -> CheckResult:
    network, a, b, from_probe, to_probe = pair
    target = b if not to_probe.endswith("-b") else f"{b} (2nd probe)"
    return CheckResult(
        check=check,
        subject=f"{a} -> {target} over {network}",
        status="pass" if ok else "fail",
        message=f"{check.split('.')[-1]} to {to_probe} " + ("ok" if ok else "failed (exit 1)"),
        hint="" if ok else "overlay traffic between hosts is VXLAN on udp/4789",
        nodes=sorted({a, b}),
        command=f"docker exec {from_probe} ping -c 1 -W 1 {to_probe}",
        output="" if ok else "1 packets transmitted, 0 received, 100% packet loss",
        details={"from": from_probe, "to": to_probe, "latency_ms": latency if ok else None},
        seconds=0.012 if ok else 10.2,
        source=a,
        target=b,
        network=network,
        path="same-host" if a == b else "cross-host",
    )


def node_results(spec: ClusterSpec) -> list[CheckResult]:
    """Engines, KV store and lab network: all healthy."""
    results = []
    for node in spec.engine_nodes:
        results.append(
            CheckResult(
                check="engines.api",
                subject=node.name,
                status="pass",
                message="API 1.41 answers",
                nodes=[node.name],
                target=node.name,
            )
        )
    if spec.kv is not None:
        for node in spec.engine_nodes:
            results.append(
                CheckResult(
                    check="kv.reachable",
                    subject=f"{node.name} -> etcd",
                    status="pass",
                    message="connected",
                    nodes=[node.name, spec.kv.node],
                    source=node.name,
                    target=spec.kv.node,
                )
            )
    engines = [n.name for n in spec.engine_nodes]
    for a, b in permutations(engines, 2):
        results.append(
            CheckResult(
                check="underlay.api",
                subject=f"{a} -> {b}:2376",
                status="pass",
                message="accepts connections",
                nodes=[a, b],
                source=a,
                target=b,
                details={"port": 2376},
            )
        )
    results.append(
        CheckResult.skip("isolation.overlays", "networks", "the spec has fewer than two overlays")
    )
    return results


def pair_results(spec: ClusterSpec, blocked: str | None = None) -> list[CheckResult]:
    """Every data-plane pair; with `blocked`, VXLAN to and from that node is dropped."""
    results = []
    for check in (*DATA_CHECKS, "mtu.df"):
        for number, pair in enumerate(probe_pairs(spec)):
            _, a, b, _, _ = pair
            cut = blocked in (a, b) and a != b and check in VXLAN_CHECKS
            results.append(_pair_result(check, pair, not cut, 0.05 + number / 1000))
    return results


def make_report(spec: ClusterSpec, results: list[CheckResult]) -> VerifyReport:
    checks = list(dict.fromkeys(r.check for r in results))
    return VerifyReport(
        cluster=spec.name,
        results=results,
        seconds=14.2,
        checks_run=checks,
        diagnosis=diagnose(spec, results),
    )


def healthy_report(spec: ClusterSpec) -> VerifyReport:
    return make_report(spec, [*node_results(spec), *pair_results(spec)])


def broken_report(spec: ClusterSpec, node: str = "node2") -> VerifyReport:
    return make_report(spec, [*node_results(spec), *pair_results(spec, blocked=node)])


# --- reading the page ------------------------------------------------------------------


class Element:
    def __init__(self, tag: str, attrs: dict[str, str]) -> None:
        self.tag = tag
        self.attrs = attrs
        self.parts: list[str] = []

    @property
    def text(self) -> str:
        return "".join(self.parts)

    @property
    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())


class Page(HTMLParser):
    """The elements of an HTML page in document order, each with its own text, and the
    matrix each cell sits in (`cell_matrix`)."""

    VOID = frozenset({"meta", "br", "img", "input", "link", "hr", "source", "wbr"})

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[Element] = []
        self._open: list[Element] = []
        self._figure: dict[str, str] | None = None
        self.cell_matrix: dict[int, tuple[str, str]] = {}  # id(cell) -> (network, check)
        self._parts: list[str] = []
        self.feed(html)
        self.close()
        self.text = "".join(self._parts)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {k: v or "" for k, v in attrs})
        self.elements.append(element)
        if tag == "figure" and "matrix" in element.classes:
            self._figure = element.attrs
        if tag == "td" and self._figure is not None:
            self.cell_matrix[id(element)] = (
                self._figure["data-network"],
                self._figure["data-check"],
            )
        if tag not in self.VOID:
            self._open.append(element)

    def handle_endtag(self, tag: str) -> None:
        if tag == "figure":
            self._figure = None
        for index in range(len(self._open) - 1, -1, -1):
            if self._open[index].tag == tag:
                del self._open[index:]
                break

    def handle_data(self, data: str) -> None:
        self._parts.append(data)
        for element in self._open:
            element.parts.append(data)

    def find(self, tag: str, **attrs: str) -> list[Element]:
        wanted = {k.replace("_", "-"): v for k, v in attrs.items()}
        return [
            e
            for e in self.elements
            if e.tag == tag and all(e.attrs.get(k) == v for k, v in wanted.items())
        ]

    def by_id(self, element_id: str) -> Element | None:
        return next((e for e in self.elements if e.attrs.get("id") == element_id), None)

    def cells(self, network: str, check: str) -> list[Element]:
        """The squares of one matrix that hold a result (empty squares have no data)."""
        return [
            e
            for e in self.elements
            if e.tag == "td"
            and "data-check" in e.attrs
            and self.cell_matrix.get(id(e)) == (network, check)
        ]
