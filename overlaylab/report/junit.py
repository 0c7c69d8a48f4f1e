"""The verify report as JUnit XML, for Jenkins and GitLab test views.

One <testsuite> per check id, one <testcase> per result. When verify could not run at
all, the file still exists and holds a single error, so a CI job never silently
"passes" because the report it expected is missing.
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable

from overlaylab.report.json_report import count_statuses, group_by_check, write_text_atomic
from overlaylab.verify.result import CheckResult
from overlaylab.verify.run import VerifyReport

SUITE_PREFIX = "overlaylab.verify"
# XML 1.0 cannot carry most control characters (probe output may hold ANSI escapes
# or NULs); one would make the whole file unparseable, so they are dropped.
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _clean(text: str) -> str:
    return _XML_ILLEGAL.sub("", text)


def _seconds(value: float) -> str:
    return f"{value:.3f}"


def write_junit(
    report: VerifyReport | None,
    path: str | os.PathLike[str],
    *,
    error: str | None = None,
    checks_run: list[str] | None = None,
) -> None:
    """Write JUnit XML atomically to `path`, creating its directory.

    `report=None` means verify failed before it had results: the file holds one
    "verify" testcase with `error`. An `error` alongside a report is added the same way.
    `checks_run` (default: the report's) lists the checks that were selected.
    """
    if checks_run is None:
        checks_run = list(report.checks_run) if report is not None else []
    root = build_junit(report, error=error, checks_run=checks_run)
    ET.indent(root)
    text = ET.tostring(root, encoding="unicode", xml_declaration=True)
    write_text_atomic(path, text + "\n")


def build_junit(
    report: VerifyReport | None,
    *,
    error: str | None = None,
    checks_run: list[str] | None = None,
) -> ET.Element:
    suites: list[ET.Element] = []
    if report is not None:
        prefix = f"{SUITE_PREFIX}.{report.cluster}"
        suites += [_suite(f"{prefix}.{cid}", rs) for cid, rs in group_by_check(report)]
    if report is None or error:
        suites.append(_error_suite(error or "verify did not run", checks_run or []))
    root = ET.Element("testsuites", name=SUITE_PREFIX)
    _set_counts(root, suites)
    root.set("time", _seconds(report.seconds if report else 0.0))
    root.extend(suites)
    return root


def _set_counts(element: ET.Element, children: Iterable[ET.Element]) -> None:
    # Totals on <testsuites> are the sums of its suites: Jenkins shows them as-is.
    kids = list(children)
    for attr in ("tests", "failures", "errors", "skipped"):
        element.set(attr, str(sum(int(k.get(attr, "0")) for k in kids)))


def _suite(name: str, results: list[CheckResult]) -> ET.Element:
    counts = count_statuses(results)
    suite = ET.Element(
        "testsuite",
        name=name,
        tests=str(counts["total"]),
        failures=str(counts["fail"]),
        errors=str(counts["error"]),
        skipped=str(counts["skip"]),
        time=_seconds(sum(r.seconds for r in results)),
    )
    suite.extend(_testcase(r) for r in results)
    return suite


def _testcase(result: CheckResult) -> ET.Element:
    # classname = check id: Jenkins splits it into package (group) and class.
    case = ET.Element(
        "testcase",
        classname=result.check,
        name=_clean(result.subject),
        time=_seconds(result.seconds),
    )
    if result.status in ("fail", "error"):
        tag = "failure" if result.status == "fail" else "error"
        outcome = ET.SubElement(case, tag, message=_clean(result.message), type=result.status)
        outcome.text = _clean(_failure_text(result))
    elif result.status == "skip":
        ET.SubElement(case, "skipped", message=_clean(result.message))
    return case


def _failure_text(result: CheckResult) -> str:
    """Everything needed to reproduce a failure, in the order a person reads it."""
    parts = [result.message]
    if result.hint:
        parts.append(f"hint: {result.hint}")
    if result.command:
        parts.append(f"$ {result.command}")
    if result.output:
        parts.append(result.output.rstrip())
    return "\n".join(p for p in parts if p)


def _error_suite(error: str, checks_run: list[str]) -> ET.Element:
    suite = ET.Element(
        "testsuite", name=SUITE_PREFIX, tests="1", failures="0", errors="1", skipped="0"
    )
    suite.set("time", _seconds(0.0))
    if checks_run:
        # Which checks never got to run: useful when reading the failure in CI.
        props = ET.SubElement(suite, "properties")
        ET.SubElement(props, "property", name="checks_run", value=",".join(checks_run))
    case = ET.SubElement(suite, "testcase", classname=SUITE_PREFIX, name="verify", time="0.000")
    outcome = ET.SubElement(case, "error", message=_clean(error), type="error")
    outcome.text = _clean(error)
    return suite
