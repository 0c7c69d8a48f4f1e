"""`up` as a pipeline: the steps in order, each idempotent, and the report of a run.

A step is `ensure_*(ctx, run) -> bool` (one module each under `overlaylab.up.steps`): it
looks at the machine, does only what is missing, and says whether it changed anything.
What steps hand each other during one run rides in `run` (`UpRun`), not in the lab's context.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from overlaylab.context import LabContext
from overlaylab.errors import PreflightError, StepError, describe_failure
from overlaylab.up.run import UpRun
from overlaylab.up.steps.engines import ensure_engines
from overlaylab.up.steps.gossip import ensure_gossip
from overlaylab.up.steps.images import ensure_images
from overlaylab.up.steps.kv import ensure_kv
from overlaylab.up.steps.networks import ensure_networks
from overlaylab.up.steps.nodes import ensure_nodes
from overlaylab.up.steps.stacks import compose_base_env, compose_runs, ensure_stacks
from overlaylab.up.steps.swarm import ensure_swarm
from overlaylab.up.steps.tls import ensure_tls

Step = Callable[[LabContext, UpRun], bool]


# `up` as data: (step name, function). Each function is idempotent.
UP_SEQUENCE: list[tuple[str, Step]] = [
    ("nodes", ensure_nodes),
    ("tls", ensure_tls),
    ("kv", ensure_kv),
    ("engines", ensure_engines),
    ("images", ensure_images),  # before swarm: classic swarm runs as containers
    ("gossip", ensure_gossip),  # after images: gossip settles while they load
    ("swarm", ensure_swarm),
    ("networks", ensure_networks),
    ("stacks", ensure_stacks),
]


@dataclass
class UpReport:
    changed: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0


def preflight(ctx: LabContext) -> None:
    gaps = ctx.provider.preflight()
    if gaps:
        raise PreflightError(gaps)


def up(ctx: LabContext, retain: bool = False) -> UpReport:
    """Converge the machine to the spec. A fresh lab that fails is removed unless `retain`.

    Any exception inside a step is that step's failure (an engine that died mid-call,
    a tool that exited non-zero, a bug): it is reported with the step, node and command,
    and a lab this run started is taken away again. Only an interruption (Ctrl-C,
    SIGTERM) leaves the half-made lab in place, for the next `up` to finish.
    """
    started = time.monotonic()
    report = UpReport()
    with ctx.progress.step("preflight"):
        preflight(ctx)
    fresh = not ctx.provider.exists()
    run = UpRun()
    if fresh:  # every stack is composed: compose's Python start overlaps the steps before
        run.compose.start(compose_runs(ctx.spec), compose_base_env())
    try:
        for name, ensure in UP_SEQUENCE:
            _up_step(ctx, run, name, ensure, report, remove_on_failure=fresh and not retain)
    finally:
        run.compose.close()
    report.timings = dict(ctx.progress.timings)
    report.seconds = time.monotonic() - started
    return report


def _up_step(
    ctx: LabContext,
    run: UpRun,
    name: str,
    ensure: Step,
    report: UpReport,
    remove_on_failure: bool,
) -> None:
    try:
        with ctx.progress.step(name):
            if ensure(ctx, run):
                report.changed.append(name)
    except Exception as exc:
        error = StepError(name, exc)
        if remove_on_failure:
            _remove_half_made_lab(ctx, error)
        raise error from exc
    except BaseException:
        ctx.progress.say("[yellow]interrupted: run `invoke up` to finish or `invoke down`[/]")
        raise


def _remove_half_made_lab(ctx: LabContext, error: StepError) -> None:
    ctx.progress.say(
        f"[red]✗ {error.step} failed[/]: removing the half-made lab (keep it with --retain)"
    )
    try:
        ctx.provider.destroy()
    except Exception as exc:
        # The step's failure stays the error reported; say what the clean-up left.
        ctx.progress.say(f"[red]clean-up failed too[/]: {describe_failure(exc)}; run `invoke down`")
