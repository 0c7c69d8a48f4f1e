"""The terminal table: summary line, failures spelled out, a wide console off a TTY."""

from __future__ import annotations

import io

from rich.console import Console

from overlaylab.report.table import MIN_LOG_WIDTH, print_report, report_console
from overlaylab.verify.result import CheckResult
from overlaylab.verify.run import VerifyReport


def _result(check: str, subject: str, status: str, **kw: object) -> CheckResult:
    return CheckResult(check=check, subject=subject, status=status, **kw)  # type: ignore[arg-type]


def _render(report: VerifyReport) -> str:
    console = Console(record=True, width=200, file=io.StringIO())
    print_report(report, console)
    return console.export_text()


def test_failures_are_spelled_out_with_hint_and_command() -> None:
    report = VerifyReport(
        cluster="lab",
        seconds=1.23,
        results=[
            _result("connectivity.icmp", "node1 -> node2 over dn", "pass"),
            _result(
                "connectivity.tcp",
                "node2 -> node1 over dn",
                "fail",
                message="connection refused",
                hint="check udp/4789 between the nodes",
                command="docker exec probe-node2 curl -s http://10.0.0.2:8080/",
                output="line1\ncurl: (7) Failed to connect",
            ),
            _result("kv.health", "etcd", "error", message="RuntimeError: boom"),
            _result("mtu.path", "node1 -> node2", "skip", message="no probe"),
        ],
    )
    text = _render(report)
    assert "overlaylab verify: lab" in text
    assert "2/4 checks failed (1.2s)" in text
    assert "✗ connectivity.tcp node2 -> node1 over dn: connection refused" in text
    assert "hint: check udp/4789 between the nodes" in text
    assert "$ docker exec probe-node2 curl -s http://10.0.0.2:8080/" in text
    assert "| curl: (7) Failed to connect" in text
    assert "✗ kv.health etcd: RuntimeError: boom" in text
    for status in ("PASS", "FAIL", "ERROR", "SKIP"):
        assert status in text


def test_all_pass_summary() -> None:
    report = VerifyReport(
        cluster="lab", results=[_result("connectivity.dns", f"n{i}", "pass") for i in range(3)]
    )
    text = _render(report)
    assert "0/3 checks failed" in text
    assert "✗" not in text


def test_report_console_is_wide_off_a_terminal() -> None:
    stream = io.StringIO()
    narrow = Console(file=stream, width=80)
    assert not narrow.is_terminal
    wide = report_console(narrow)
    assert wide.width >= MIN_LOG_WIDTH
    assert wide.file is stream
    wider = report_console(Console(file=io.StringIO(), width=300))
    assert wider.width == 300


def test_report_console_keeps_a_terminal_as_is() -> None:
    terminal = Console(file=io.StringIO(), width=80, force_terminal=True)
    assert report_console(terminal) is terminal
