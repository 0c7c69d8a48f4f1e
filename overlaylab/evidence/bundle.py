"""One archive of a lab's evidence: what every node, the KV store and the swarm say,
the spec and what it renders to, and a fresh verify report, with a manifest."""

from __future__ import annotations

import io
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

from overlaylab.context import LabContext
from overlaylab.errors import OverlaylabError
from overlaylab.evidence.archive import Entry, EvidenceArchive, Manifest, Missing
from overlaylab.evidence.collect import collect, rendered_artifacts
from overlaylab.evidence.items import plan
from overlaylab.report.html import render_report
from overlaylab.report.json_report import write_json
from overlaylab.report.topology import compose_networks
from overlaylab.verify.run import VerifyReport, run_verify, select_checks

VERIFY_TIMEOUT = 8.0  # verify's own retry window, as `invoke verify --timeout`


def default_name(cluster: str, at: datetime) -> str:
    return f"overlaylab-{cluster}-{at:%Y%m%dT%H%M%SZ}"


def _verify(ctx: LabContext) -> tuple[VerifyReport, float]:
    begun = time.monotonic()
    report = run_verify(ctx, select_checks(), timeout=VERIFY_TIMEOUT)
    return report, time.monotonic() - begun


def _add_verify(
    ctx: LabContext,
    archive: EvidenceArchive,
    manifest: Manifest,
    report: VerifyReport,
    seconds: float,
    started_at: datetime,
) -> None:
    text = io.StringIO()
    write_json(report, text, spec_path=str(ctx.spec_path), started_at=started_at)
    size = archive.add("verify/report.json", text.getvalue().encode())
    manifest.entries.append(
        Entry("verify/report.json", "lab", "invoke verify --format json", round(seconds, 3), size)
    )
    try:
        page = render_report(
            report,
            spec=ctx.spec,
            spec_path=str(ctx.spec_path),
            started_at=started_at,
            service_networks=compose_networks(ctx.spec, ctx.spec_dir),
            warn=lambda problem: None,
        )
    except Exception as exc:  # the JSON report holds every result already
        manifest.missing.append(
            Missing("verify/report.html", "lab", "invoke verify --html", str(exc)[:300], 0.0)
        )
        return
    size = archive.add("verify/report.html", page.encode())
    manifest.entries.append(Entry("verify/report.html", "lab", "invoke verify --html", 0.0, size))


def gather(
    ctx: LabContext,
    out: Path | None = None,
    since: timedelta | None = None,
    with_verify: bool = True,
    since_text: str | None = None,
) -> tuple[Path, Manifest, int]:
    """Collect the lab's evidence into one .tar.gz; (its path, the manifest, its size)."""
    if not ctx.provider.exists():
        raise OverlaylabError(
            f"lab '{ctx.spec.name}' is not up: there is nothing to collect "
            "(`invoke up` brings it up; `invoke up --retain` keeps a lab whose up failed)"
        )
    started = time.monotonic()
    created = datetime.now(UTC).replace(microsecond=0)
    name = default_name(ctx.spec.name, created)
    target = out or Path(f"{name}.tar.gz")
    if target.is_dir():  # -o FOLDER: the archive gets its usual name in it
        target = target / f"{name}.tar.gz"
    archive = EvidenceArchive(top=name)
    manifest = Manifest(
        cluster=ctx.spec.name,
        created=created.isoformat().replace("+00:00", "Z"),
        spec=str(ctx.spec_path),
        since=since_text,
        verify="ran" if with_verify else "skipped (--no-verify)",
    )
    # Verify runs beside the collection: both mostly wait on the nodes.
    with ThreadPoolExecutor(max_workers=1) as side:
        verifying = side.submit(_verify, ctx) if with_verify else None
        rendered_artifacts(ctx, archive, manifest)
        collect(plan(ctx, since), archive, manifest)
        if verifying is not None:
            try:
                report, seconds = verifying.result()
                _add_verify(ctx, archive, manifest, report, seconds, created)
                failed = len(report.failed)
                manifest.verify = f"ran: {failed}/{len(report.results)} checks failed"
            except Exception as exc:  # the rest of the evidence is still worth having
                manifest.verify = f"could not run: {type(exc).__name__}: {exc}"[:500]
    manifest.seconds = time.monotonic() - started
    size = archive.write(target, manifest)
    return target, manifest, size
