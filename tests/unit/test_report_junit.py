"""JUnit XML: suites per check, outcome elements per status, the early-failure form."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from invoke import Context
from invoke.exceptions import Exit

from overlaylab.report.junit import write_junit
from overlaylab.tasks import verify as verify_task
from overlaylab.verify.result import CheckResult
from overlaylab.verify.run import VerifyReport


def _result(check: str, subject: str, status: str, **kw: object) -> CheckResult:
    return CheckResult(check=check, subject=subject, status=status, **kw)  # type: ignore[arg-type]


def mixed_report() -> VerifyReport:
    return VerifyReport(
        cluster="lab",
        seconds=3.0,
        checks_run=["connectivity.tcp", "kv.health", "mtu.path"],
        results=[
            _result("connectivity.tcp", "node1 -> node2 over dn", "pass", seconds=0.25),
            _result(
                "connectivity.tcp",
                "node2 -> node1 over dn",
                "fail",
                message="connection refused",
                hint="check udp/4789",
                command="docker exec probe curl -s http://10.0.0.2",
                output="curl: (7) refused\x1b[0m\x00",  # control chars must not break XML
                seconds=1.5,
            ),
            _result("connectivity.tcp", "node3 -> node1 over dn", "skip", message="no probe"),
            _result("kv.health", "etcd", "error", message="RuntimeError: boom"),
        ],
    )


def _parse(path: Path) -> ET.Element:
    return ET.parse(path).getroot()


def _counts(element: ET.Element) -> tuple[int, ...]:
    return tuple(int(element.get(a, "-1")) for a in ("tests", "failures", "errors", "skipped"))


def test_suites_and_counts(tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    write_junit(mixed_report(), path)
    root = _parse(path)
    assert root.tag == "testsuites"
    assert _counts(root) == (4, 1, 1, 1)
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert list(suites) == [
        "overlaylab.verify.lab.connectivity.tcp",
        "overlaylab.verify.lab.kv.health",
        "overlaylab.verify.lab.mtu.path",
    ]
    tcp = suites["overlaylab.verify.lab.connectivity.tcp"]
    assert _counts(tcp) == (3, 1, 0, 1)
    assert tcp.get("time") == "1.750"
    assert _counts(suites["overlaylab.verify.lab.kv.health"]) == (1, 0, 1, 0)
    assert _counts(suites["overlaylab.verify.lab.mtu.path"]) == (0, 0, 0, 0)


def test_testcases_carry_outcomes(tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    write_junit(mixed_report(), path)
    cases = _parse(path).findall(".//testcase")
    assert [(c.get("classname"), c.get("name")) for c in cases] == [
        ("connectivity.tcp", "node1 -> node2 over dn"),
        ("connectivity.tcp", "node2 -> node1 over dn"),
        ("connectivity.tcp", "node3 -> node1 over dn"),
        ("kv.health", "etcd"),
    ]
    passed, failed, skipped, errored = cases
    assert list(passed) == []
    assert passed.get("time") == "0.250"
    failure = failed.find("failure")
    assert failure is not None
    assert failure.get("message") == "connection refused"
    assert failure.text == (
        "connection refused\nhint: check udp/4789\n"
        "$ docker exec probe curl -s http://10.0.0.2\ncurl: (7) refused[0m"
    )
    assert skipped.find("skipped") is not None
    error = errored.find("error")
    assert error is not None
    assert error.get("message") == "RuntimeError: boom"


def test_early_failure_form(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "dir" / "junit.xml"  # parents are created
    write_junit(None, path, error="lab.yml: 1 problem\n  - bad", checks_run=["a.b", "c.d"])
    root = _parse(path)
    assert _counts(root) == (1, 0, 1, 0)
    (suite,) = root.findall("testsuite")
    assert suite.get("name") == "overlaylab.verify"
    assert _counts(suite) == (1, 0, 1, 0)
    (case,) = suite.findall("testcase")
    assert case.get("name") == "verify"
    error = case.find("error")
    assert error is not None
    assert error.get("message") == "lab.yml: 1 problem\n  - bad"
    prop = suite.find("properties/property")
    assert prop is not None
    assert prop.get("value") == "a.b,c.d"


def test_error_alongside_a_report_adds_the_verify_suite(tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    write_junit(mixed_report(), path, error="report rendering crashed")
    root = _parse(path)
    assert _counts(root) == (5, 1, 2, 1)
    assert root.findall("testsuite")[-1].get("name") == "overlaylab.verify"


def test_atomic_write_replaces_and_leaves_no_temp(tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    path.write_text("stale", encoding="utf-8")
    write_junit(mixed_report(), path)
    write_junit(None, path, error="second run failed early")
    assert [p.name for p in tmp_path.iterdir()] == ["junit.xml"]
    assert _parse(path).find("testsuite").get("name") == "overlaylab.verify"  # type: ignore[union-attr]


def test_failed_write_leaves_no_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("overlaylab.report.json_report.os.replace", refuse)
    with pytest.raises(OSError, match="disk full"):
        write_junit(mixed_report(), tmp_path / "junit.xml")
    assert list(tmp_path.iterdir()) == []


def test_task_writes_junit_when_the_spec_is_missing(tmp_path: Path) -> None:
    path = tmp_path / "reports" / "verify.xml"
    with pytest.raises(Exit) as exited:
        verify_task.verify(Context(), inventory=str(tmp_path / "nope.yml"), junit=str(path))
    assert exited.value.code == 2
    case = _parse(path).find("testsuite/testcase")
    assert case is not None
    assert case.get("name") == "verify"
    error = case.find("error")
    assert error is not None
    assert "nope.yml" in (error.get("message") or "")


def test_task_writes_junit_on_an_unexpected_crash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(*args: object, **kwargs: object) -> None:
        raise RuntimeError("docker socket gone")

    monkeypatch.setattr(verify_task, "open_lab", crash)
    path = tmp_path / "verify.xml"
    with pytest.raises(RuntimeError):
        verify_task.verify(Context(), junit=str(path))
    error = _parse(path).find("testsuite/testcase/error")
    assert error is not None
    assert error.get("message") == "RuntimeError: docker socket gone"


def test_task_writes_junit_on_check_failures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(verify_task, "open_lab", lambda *a, **kw: object())
    monkeypatch.setattr(verify_task, "run_verify", lambda ctx, checks, timeout: mixed_report())
    path = tmp_path / "verify.xml"
    with pytest.raises(Exit) as exited:
        verify_task.verify(Context(), junit=str(path))
    assert exited.value.code == 1
    assert _counts(_parse(path)) == (4, 1, 1, 1)
