"""Collecting what `invoke logs` gathers (items.py says what): the items run side by side,
each within its time limit; an item that fails (a dead engine, an unreachable host, a
missing tool) is recorded in the manifest with its reason and never stops the rest.
Nothing is read from the lab's TLS folders, and every item is scrubbed of private keys
and swarm join tokens before it enters the archive (archive.scrub).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from overlaylab.artifacts import spec_artifacts
from overlaylab.context import LabContext
from overlaylab.evidence.archive import Entry, EvidenceArchive, Manifest, Missing
from overlaylab.evidence.items import Item
from overlaylab.spec.loader import load_spec_file

BACKSTOP = 5.0  # beyond an item's own limit, before it is given up


def rendered_artifacts(ctx: LabContext, archive: EvidenceArchive, manifest: Manifest) -> None:
    """The files `invoke render` writes for this spec, under lab/rendered/."""
    started = time.monotonic()
    try:
        artifacts = spec_artifacts(load_spec_file(ctx.spec_path))
    except Exception as exc:  # the archive is wanted most when something is broken
        seconds = round(time.monotonic() - started, 3)
        manifest.missing.append(
            Missing("lab/rendered/", "this machine", "invoke render", _reason(exc), seconds)
        )
        return
    seconds = round(time.monotonic() - started, 3)
    for artifact in artifacts:
        path = f"lab/rendered/{artifact.path}"
        size = archive.add(path, artifact.text.encode())
        manifest.entries.append(Entry(path, "this machine", "invoke render", seconds, size))


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".strip()[:500]


@dataclass
class _Run:
    """One item's run: when a worker took it up, and what came of it."""

    item: Item
    started: float | None = None
    seconds: float = 0.0
    data: bytes | str | None = None
    error: BaseException | None = None
    done: bool = False


WORKERS = 16


# Items on one node at once: every item on an SSH host is a session on one connection,
# and sshd opens at most MaxSessions (10 by default) of them ("Connect failed").
PER_NODE = 4


# However the items fare, collecting ends this long after the slowest limit: items no
# worker could take up by then are recorded as not started.
OVERALL_GRACE = 30.0


def collect(items: list[Item], archive: EvidenceArchive, manifest: Manifest) -> None:
    """Run every item, side by side; record what each gave, or why it gave nothing.

    Workers are daemon threads: an item that hangs past its limit (and its backstop)
    is given up and recorded, and cannot keep the process from exiting. An item's limit
    counts from when a worker takes it up, not from when it was queued.
    """
    runs = [_Run(item) for item in items]
    queue = list(reversed(runs))
    lock = threading.Lock()
    changed = threading.Condition(lock)
    per_node = {r.item.source: threading.Semaphore(PER_NODE) for r in runs}

    def worker() -> None:
        while True:
            with lock:
                if not queue:
                    return
                run = queue.pop()
            with per_node[run.item.source]:
                with lock:
                    run.started = time.monotonic()
                try:
                    data: bytes | str | None = run.item.produce()
                    error: BaseException | None = None
                except Exception as exc:
                    data, error = None, exc
            with changed:
                run.seconds = time.monotonic() - (run.started or 0.0)
                run.data, run.error, run.done = data, error, True
                changed.notify_all()

    for _ in range(min(WORKERS, len(runs))):
        threading.Thread(target=worker, daemon=True, name="overlaylab-logs").start()
    longest = max((r.item.timeout for r in runs), default=0.0) + BACKSTOP
    give_up_at = time.monotonic() + longest + OVERALL_GRACE

    def overdue(run: _Run, now: float) -> bool:
        return run.started is not None and now > run.started + run.item.timeout + BACKSTOP

    with changed:
        while True:
            now = time.monotonic()
            pending = [r for r in runs if not r.done and not overdue(r, now)]
            if not pending or now >= give_up_at:
                break
            changed.wait(timeout=0.2)
        finished = {id(r): (r.done, r.started, r.data, r.error, r.seconds) for r in runs}
    for run in runs:
        done, started, data, error, seconds = finished[id(run)]
        item = run.item
        if not done:
            reason = (
                f"no answer within {item.timeout + BACKSTOP:g} s"
                if started is not None
                else "not started: every worker was busy with items that did not answer"
            )
            manifest.missing.append(Missing(item.path, item.source, item.what, reason, 0.0))
        elif error is not None:
            manifest.missing.append(
                Missing(item.path, item.source, item.what, _reason(error), round(seconds, 3))
            )
        elif data is None:
            manifest.missing.append(
                Missing(item.path, item.source, item.what, "nothing there", round(seconds, 3))
            )
        else:
            raw = data.encode() if isinstance(data, str) else data
            size = archive.add(item.path, raw)
            manifest.entries.append(
                Entry(item.path, item.source, item.what, round(seconds, 3), size)
            )
