"""Run the checks against a lab and collect every result."""

from __future__ import annotations

import fnmatch
import time
import traceback
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace

from overlaylab.context import LabContext
from overlaylab.verify.check import Check
from overlaylab.verify.checks import (
    advertise,
    connectivity,
    discovery,
    engines,
    isolation,
    kv,
    names,
    networks,
    peers,
    ports,
    probes_running,
    stacks,
    swarm,
    underlay,
)
from overlaylab.verify.context import VerifyContext
from overlaylab.verify.diagnosis import Diagnosis, diagnose
from overlaylab.verify.probes import Probe, ensure_probes
from overlaylab.verify.result import CheckResult

# Report order: from the bottom of the stack (engines, store, lab network) upwards,
# so the first failure in the table is usually the cause of the ones below it.
ALL_CHECKS: list[Check] = [
    *engines.CHECKS,
    *kv.CHECKS,
    *underlay.CHECKS,
    *networks.CHECKS,
    *stacks.CHECKS,
    *probes_running.CHECKS,
    # After the probes: it compares every engine's VXLAN entries with the containers.
    *peers.CHECKS,
    *connectivity.CHECKS,
    *names.CHECKS,
    *advertise.CHECKS,
    *discovery.CHECKS,
    *ports.CHECKS,
    *isolation.CHECKS,
    *swarm.CHECKS,
]


def ahead_of_probes(checks: list[Check]) -> frozenset[str]:
    """The checks before the first that needs or reads the probes, in report order: they
    read no probe, so they run while the probes start, which is most of a first verify
    (dockerd spends about 0.35 s of CPU on each container start); and they are quick, so
    they run again when an engine died during verify."""
    ahead = []
    for check in checks:
        if check.needs_probes or check.reads_probes:
            break
        ahead.append(check.id)
    return frozenset(ahead)


WITHOUT_PROBES = ahead_of_probes(ALL_CHECKS)


@dataclass
class VerifyReport:
    cluster: str
    results: list[CheckResult] = field(default_factory=list)
    seconds: float = 0.0
    checks_run: list[str] = field(default_factory=list)
    diagnosis: list[Diagnosis] = field(default_factory=list)

    @property
    def failed(self) -> list[CheckResult]:
        return [r for r in self.results if r.failed]

    @property
    def ok(self) -> bool:
        return not self.failed and bool(self.results)


def select_checks(only: Sequence[str] = (), skip: Sequence[str] = ()) -> list[Check]:
    """--only/--skip take check ids, groups or globs (`connectivity.*`)."""

    def hit(check: Check, patterns: Sequence[str]) -> bool:
        return any(fnmatch.fnmatch(check.id, p) or check.group == p for p in patterns)

    chosen = [c for c in ALL_CHECKS if (not only or hit(c, only)) and not hit(c, skip)]
    if any(c.needs_probes for c in chosen):
        # What probes could not reach is reported by probes.running: never leave it out.
        chosen = [c for c in ALL_CHECKS if c in chosen or c.id == "probes.running"]
    return chosen


def crashed(check: Check, exc: Exception) -> CheckResult:
    """The result of a check that could not run: an error, never a silent pass or skip."""
    frames = traceback.extract_tb(exc.__traceback__)[-3:]
    return CheckResult(
        check=check.id,
        subject=check.description,
        status="error",
        message=f"the check could not run: {type(exc).__name__}: {exc}",
        hint="what it tests is unknown, not healthy; the exception is in the JSON details",
        details={
            "exception": type(exc).__name__,
            "error": str(exc),
            "where": [f"{f.filename}:{f.lineno} in {f.name}" for f in frames],
        },
    )


def _run(check: Check, vctx: VerifyContext) -> list[CheckResult]:
    vctx.deadline = time.monotonic() + vctx.timeout  # --timeout bounds each check
    try:
        return check.run(vctx)
    except Exception as exc:  # a crashing check is reported, not fatal to the rest
        return [crashed(check, exc)]


def _measured_before(result: CheckResult, died: set[str]) -> CheckResult:
    """A pass that involved an engine which died later in this verify: it no longer
    holds, and what it covers is untested now (filed under the engine's death)."""
    dead = ", ".join(sorted(died & set(result.nodes)))
    return replace(
        result,
        status="error",
        message=f"not tested any more: passed ({result.message}) before the engine on {dead} "
        "died during this verify",
        hint="see engines.api",
        details={**result.details, "untested_because": "engines.api"},
    )


def looked_at_again(
    vctx: VerifyContext, checks: list[Check], results: list[CheckResult], died: set[str]
) -> list[CheckResult]:
    """The results once engines died during verify: the checks that read no probe run
    again (quick, and they now see the death and say what it was); passes of the
    others that involve a dead engine were measured before it died and are withdrawn."""
    # Facts looked up once per run (the stack containers...) date from before the death.
    for fact in ("stack_containers", "stack_nodes_down", engines.ENGINE_INFO):
        vctx.cache.pop(fact, None)
    # A check that crashed on the dying engine (an exec into a container there) runs
    # again too: now it sees the engine down, and says so as it does for any dead engine.
    crashes = {r.check for r in results if r.status == "error" and "where" in r.details}
    rerun = {c.id for c in checks if c.id in WITHOUT_PROBES or c.id in crashes}
    fresh = {c.id: _run(c, vctx) for c in checks if c.id in rerun}
    # Only what engines.api, run again, finds down (an engine slow to answer one ping
    # answers the next: its results stand).
    died = died & {r.target for r in fresh.get("engines.api", []) if r.status == "fail"}
    again: list[CheckResult] = []
    for result in results:
        if result.check in fresh:
            again += fresh.pop(result.check)  # in place of the first of its old results
        elif result.check in rerun:
            continue
        elif result.status == "pass" and died & set(result.nodes):
            again.append(_measured_before(result, died))
        else:
            again.append(result)
    return again


def _side_by_side(
    vctx: VerifyContext, checks: list[Check], probes: Future[tuple[list[Probe], dict[str, str]]]
) -> list[CheckResult]:
    """Every check at once, each in a thread of its own with its own window: a fault that
    holds several checks for their whole window (a node cut off, a hung store) costs one
    window, not one per check. A check past the ones ahead of the probes starts once the
    probes are in place, and any check once the checks in its `after` are done. The
    results come back in report order."""

    def probes_in_place() -> None:
        # The future hands every caller the same probes: setting them again is harmless.
        vctx.probes, vctx.probe_problems = probes.result()

    def run_one(check: Check, first: list[Future[list[CheckResult]]]) -> list[CheckResult]:
        for before in first:
            before.result()
        if check.id not in WITHOUT_PROBES:
            probes_in_place()
        return _run(check, replace(vctx))  # its own deadline; cache, pool and locks shared

    running: dict[str, Future[list[CheckResult]]] = {}
    with ThreadPoolExecutor(max_workers=max(1, len(checks)), thread_name_prefix="check") as pool:
        for check in _after_first(checks):
            first = [running[c.id] for c in check.after if c.id in running]
            running[check.id] = pool.submit(run_one, check, first)
        results = [r for check in checks for r in running[check.id].result()]
    # No check asked for them: they are in place for the next run (and what their start
    # did to an engine is known before the engines are looked at again).
    probes_in_place()
    return results


def _after_first(checks: list[Check]) -> list[Check]:
    """`checks` with each one's `after` (those selected) ahead of it, else in report
    order: a check may wait for one the report lists later (underlay.members for the
    pair checks)."""
    selected = {c.id: c for c in checks}
    ordered: list[Check] = []
    placed: set[str] = set()

    def place(check: Check, seen: frozenset[str]) -> None:
        if check.id in placed or check.id in seen:
            return  # placed already, or a loop of `after` (then its order is the report's)
        for before in check.after:
            if before.id in selected:
                place(selected[before.id], seen | {check.id})
        placed.add(check.id)
        ordered.append(check)

    for check in checks:
        place(check, frozenset())
    return ordered


def run_verify(ctx: LabContext, checks: list[Check], timeout: float = 10.0) -> VerifyReport:
    started = time.monotonic()
    report = VerifyReport(cluster=ctx.spec.name, checks_run=[c.id for c in checks])
    vctx = VerifyContext(
        lab=ctx,
        probes=[],
        timeout=timeout,
        selected=frozenset(c.id for c in checks),
        ahead={c.id: c.ahead for c in checks if c.ahead is not None},
    )
    starting = ThreadPoolExecutor(max_workers=1)
    probes = starting.submit(ensure_probes, ctx)
    try:
        report.results = _side_by_side(vctx, checks, probes)
        died = engines.died_during_verify(vctx, report.results)
        if died:
            report.results = looked_at_again(vctx, checks, report.results, died)
    finally:
        starting.shutdown(wait=True)
        vctx.pool.shutdown(wait=True)
    report.diagnosis = diagnose(ctx.spec, report.results)
    report.seconds = time.monotonic() - started
    return report
