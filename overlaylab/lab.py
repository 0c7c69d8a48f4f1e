"""The library behind the tasks: open a lab from its spec, bring it up, take it down."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from overlaylab.context import LabContext
from overlaylab.errors import PreflightError, StepError, describe_failure
from overlaylab.layout import LabLayout
from overlaylab.progress import Progress
from overlaylab.providers import get_provider
from overlaylab.spec.loader import load_spec_file
from overlaylab.spec.models import ClusterSpec
from overlaylab.spec.models import LocalProvider as LocalProviderSpec
from overlaylab.spec.paths import spec_dir_of
from overlaylab.spec.warnings import SpecWarning, spec_warnings
from overlaylab.steps.engines import ensure_engines, ensure_gossip, ensure_tls
from overlaylab.steps.images import ensure_images
from overlaylab.steps.kv import ensure_kv
from overlaylab.steps.networks import ensure_networks
from overlaylab.steps.stacks import compose_base_env, compose_runs, ensure_stacks
from overlaylab.steps.swarm import ensure_swarm

DEFAULT_SPEC = Path("inventory/lab.yml")


def open_lab(spec_path: str | Path = DEFAULT_SPEC, progress: Progress | None = None) -> LabContext:
    loaded = load_spec_file(spec_path)
    return context_for(loaded.spec, loaded.path, progress=progress, warnings=loaded.warnings)


def context_for(
    spec: ClusterSpec,
    spec_path: Path,
    *,
    state_dir: str | Path | None = None,
    progress: Progress | None = None,
    warnings: list[SpecWarning] | None = None,
) -> LabContext:
    """The context for a spec loaded from `spec_path`; `state_dir` overrides the spec's.

    `warnings` as `load_spec_file` found them (with lines); default: computed here.
    """
    if state_dir is None and isinstance(spec.provider, LocalProviderSpec):
        state_dir = spec.provider.state_dir
    layout = LabLayout.for_cluster(spec.name, state_dir)
    return LabContext(
        spec=spec,
        spec_path=spec_path,
        spec_dir=spec_dir_of(spec_path),
        layout=layout,
        provider=get_provider(spec, layout, spec_dir_of(spec_path)),
        progress=progress or Progress(),
        warnings=spec_warnings(spec) if warnings is None else warnings,
    )


def _ensure_nodes(ctx: LabContext) -> bool:
    existed = ctx.provider.exists()
    ctx.provider.provision(on_item=None if existed else ctx.progress.item)
    return not existed


# `up` as data: (step name, function). Each function is idempotent.
UP_SEQUENCE: list[tuple[str, Callable[[LabContext], bool]]] = [
    ("nodes", _ensure_nodes),
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
    if fresh:  # every stack is composed: compose's Python start overlaps the steps before
        ctx.compose.start(compose_runs(ctx.spec), compose_base_env())
    try:
        for name, ensure in UP_SEQUENCE:
            _up_step(ctx, name, ensure, report, remove_on_failure=fresh and not retain)
    finally:
        ctx.compose.close()
    report.timings = dict(ctx.progress.timings)
    report.seconds = time.monotonic() - started
    return report


def _up_step(
    ctx: LabContext,
    name: str,
    ensure: Callable[[LabContext], bool],
    report: UpReport,
    remove_on_failure: bool,
) -> None:
    try:
        with ctx.progress.step(name):
            if ensure(ctx):
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


def down_by_name(cluster: str, state_dir: str | Path | None = None) -> list[str]:
    """Remove a local lab from its name alone, when its spec is gone or broken."""
    from overlaylab.providers.local.teardown import destroy_local_lab

    return destroy_local_lab(LabLayout.for_cluster(cluster, state_dir))
