"""The verify report as a versioned JSON document, for CI and `jq`.

The schema is a contract: add fields freely, but renaming or removing one means a
new `SCHEMA` version. docs/verify-report.md describes every field.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from overlaylab.verify.result import CheckResult, Status
from overlaylab.verify.run import VerifyReport

SCHEMA = "overlaylab.verify/v1"
# Worst first: a check's status is the first of these any of its results has.
SEVERITY: tuple[Status, ...] = ("error", "fail", "skip", "pass")
# The order counts are listed in, everywhere (JSON, docs).
STATUSES: tuple[Status, ...] = ("pass", "fail", "error", "skip")


def count_statuses(results: Iterable[CheckResult]) -> dict[str, int]:
    counts: dict[str, int] = {"total": 0}
    counts.update(dict.fromkeys(STATUSES, 0))
    for result in results:
        counts["total"] += 1
        counts[result.status] += 1
    return counts


def worst_status(results: Iterable[CheckResult]) -> Status:
    """error > fail > skip > pass. A check with no results proved nothing: skip."""
    seen = {r.status for r in results}
    if not seen:
        return "skip"
    return next(s for s in SEVERITY if s in seen)


def group_by_check(report: VerifyReport) -> list[tuple[str, list[CheckResult]]]:
    """Results per check id, in the order checks first appear.

    Checks that ran but produced no result (e.g. a network with a single node has no
    pairs to test) follow, in `checks_run` order, so no selected check goes unreported.
    """
    groups: dict[str, list[CheckResult]] = {}
    for result in report.results:
        groups.setdefault(result.check, []).append(result)
    for check_id in report.checks_run:
        groups.setdefault(check_id, [])
    return list(groups.items())


def check_group(check_id: str) -> str:
    return check_id.split(".", 1)[0]


def iso_utc(moment: datetime) -> str:
    # Millisecond precision with a `Z` suffix: the form every log tool parses.
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def report_to_dict(
    report: VerifyReport,
    *,
    spec_path: str | None = None,
    started_at: datetime | None = None,
) -> dict[str, Any]:
    """The report as plain JSON-ready data (schema `overlaylab.verify/v1`).

    `started_at` defaults to now minus the report's duration, which is right when the
    document is built straight after the run; pass the real start time when known.
    """
    if started_at is None:
        started_at = datetime.now(UTC) - timedelta(seconds=report.seconds)
    return {
        "schema": SCHEMA,
        "cluster": report.cluster,
        "spec": spec_path,
        "started_at": iso_utc(started_at),
        "seconds": round(report.seconds, 3),
        "ok": report.ok,
        "summary": count_statuses(report.results),
        "checks_run": list(report.checks_run),
        "diagnosis": [d.as_dict() for d in report.diagnosis],
        "checks": [_check_entry(cid, results) for cid, results in group_by_check(report)],
    }


def _check_entry(check_id: str, results: list[CheckResult]) -> dict[str, Any]:
    return {
        "id": check_id,
        "group": check_group(check_id),
        "status": worst_status(results),
        "counts": count_statuses(results),
        "results": [r.as_dict() for r in results],
    }


def dumps(document: dict[str, Any]) -> str:
    # `details` is free-form: anything json cannot encode is written as its str(),
    # because a report that fails to serialise would hide every result.
    return json.dumps(document, indent=2, sort_keys=False, default=str) + "\n"


def write_json(
    report: VerifyReport,
    path_or_stream: str | os.PathLike[str] | IO[str],
    *,
    spec_path: str | None = None,
    started_at: datetime | None = None,
) -> None:
    """Write the report to an open text stream, or atomically to a file path."""
    text = dumps(report_to_dict(report, spec_path=spec_path, started_at=started_at))
    if isinstance(path_or_stream, str | os.PathLike):
        write_text_atomic(path_or_stream, text)
    else:
        path_or_stream.write(text)
        path_or_stream.flush()


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write via a temp file in the same directory and os.replace it into place.

    A CI job reading the report never sees a half-written file, and a crash leaves
    the previous report (or none) rather than a truncated one.
    """
    write_bytes_atomic(path, text.encode("utf-8"))


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """`write_text_atomic` for bytes (a PNG picture of the lab)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp makes the file 0600; reports are artifacts other users read.
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
