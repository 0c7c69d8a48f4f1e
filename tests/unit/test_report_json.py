"""The JSON verify report: schema, summary, worst-status logic, and `--format json`."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from invoke import Context
from invoke.exceptions import Exit

from overlaylab.report.json_report import (
    SCHEMA,
    report_to_dict,
    worst_status,
    write_json,
)
from overlaylab.tasks import verify as verify_task
from overlaylab.verify.result import CheckResult
from overlaylab.verify.run import VerifyReport

STARTED = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def _result(check: str, subject: str, status: str, **kw: object) -> CheckResult:
    return CheckResult(check=check, subject=subject, status=status, **kw)  # type: ignore[arg-type]


def mixed_report() -> VerifyReport:
    return VerifyReport(
        cluster="lab",
        seconds=2.5,
        checks_run=["connectivity.icmp", "connectivity.dns", "kv.health", "mtu.path"],
        results=[
            _result("connectivity.icmp", "node1 -> node2 over dn", "pass", seconds=0.01),
            _result("connectivity.dns", "node1 resolves node2", "fail", message="NXDOMAIN"),
            _result("connectivity.icmp", "node2 -> node1 over dn", "skip", message="no probe"),
            _result("kv.health", "etcd", "error", message="RuntimeError: boom"),
            _result("connectivity.dns", "node2 resolves node1", "pass"),
        ],
    )


def test_top_level_fields() -> None:
    doc = report_to_dict(mixed_report(), spec_path="inventory/lab.yml", started_at=STARTED)
    assert doc["schema"] == SCHEMA == "overlaylab.verify/v1"
    assert doc["cluster"] == "lab"
    assert doc["spec"] == "inventory/lab.yml"
    assert doc["started_at"] == "2024-05-01T12:00:00.000Z"
    assert doc["seconds"] == 2.5
    assert doc["ok"] is False
    assert doc["checks_run"] == ["connectivity.icmp", "connectivity.dns", "kv.health", "mtu.path"]
    assert doc["summary"] == {"total": 5, "pass": 2, "fail": 1, "error": 1, "skip": 1}


def test_checks_grouped_in_first_appearance_order_with_worst_status() -> None:
    checks = report_to_dict(mixed_report())["checks"]
    assert [c["id"] for c in checks] == [
        "connectivity.icmp",
        "connectivity.dns",
        "kv.health",
        "mtu.path",  # selected but produced no result: still listed
    ]
    by_id = {c["id"]: c for c in checks}
    assert by_id["connectivity.icmp"]["group"] == "connectivity"
    assert by_id["connectivity.icmp"]["status"] == "skip"
    assert by_id["connectivity.dns"]["status"] == "fail"
    assert by_id["kv.health"]["status"] == "error"
    assert by_id["mtu.path"] == {
        "id": "mtu.path",
        "group": "mtu",
        "status": "skip",
        "counts": {"total": 0, "pass": 0, "fail": 0, "error": 0, "skip": 0},
        "results": [],
    }
    icmp = by_id["connectivity.icmp"]
    assert icmp["counts"] == {"total": 2, "pass": 1, "fail": 0, "error": 0, "skip": 1}
    assert [r["subject"] for r in icmp["results"]] == [
        "node1 -> node2 over dn",
        "node2 -> node1 over dn",
    ]
    assert icmp["results"][0] == mixed_report().results[0].as_dict()


@pytest.mark.parametrize(
    ("statuses", "worst"),
    [
        (["pass", "pass"], "pass"),
        (["pass", "skip"], "skip"),
        (["skip", "fail", "pass"], "fail"),
        (["fail", "error", "skip"], "error"),
        ([], "skip"),
    ],
)
def test_worst_status(statuses: list[str], worst: str) -> None:
    assert worst_status(_result("a.b", str(i), s) for i, s in enumerate(statuses)) == worst


def test_all_pass_is_ok() -> None:
    report = VerifyReport(cluster="lab", results=[_result("a.b", "x", "pass")], checks_run=["a.b"])
    doc = report_to_dict(report)
    assert doc["ok"] is True
    assert doc["spec"] is None
    assert doc["checks"][0]["status"] == "pass"


def test_started_at_defaults_to_now_minus_duration() -> None:
    report = VerifyReport(cluster="lab", seconds=60.0)
    before = datetime.now(UTC)
    started = datetime.fromisoformat(report_to_dict(report)["started_at"].replace("Z", "+00:00"))
    assert 59 <= (before - started).total_seconds() <= 61


def test_write_json_to_stream_and_path(tmp_path: Path) -> None:
    report = mixed_report()
    report.results[0].details = {"rtt_ms": 0.4, "when": STARTED}  # not JSON-native
    stream = io.StringIO()
    write_json(report, stream, started_at=STARTED)
    from_stream = json.loads(stream.getvalue())
    assert from_stream["checks"][0]["results"][0]["details"]["when"] == str(STARTED)

    target = tmp_path / "out" / "verify.json"
    write_json(report, target, started_at=STARTED)
    assert json.loads(target.read_text(encoding="utf-8")) == from_stream
    assert [p.name for p in target.parent.iterdir()] == ["verify.json"]  # no temp left


def test_task_format_json_prints_only_the_document(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(verify_task, "open_lab", lambda *a, **kw: object())
    monkeypatch.setattr(verify_task, "run_verify", lambda ctx, checks, timeout: mixed_report())
    with pytest.raises(Exit) as exited:
        verify_task.verify(Context(), inventory="spec.yml", format="json")
    assert exited.value.code == 1  # check failures, not an error
    doc = json.loads(capsys.readouterr().out)  # stdout is exactly one JSON document
    assert doc["spec"] == "spec.yml"
    assert doc["summary"]["fail"] == 1


def test_task_rejects_unknown_format() -> None:
    with pytest.raises(Exit) as exited:
        verify_task.verify(Context(), format="yaml")
    assert exited.value.code == 2
