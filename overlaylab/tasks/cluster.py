"""Lab lifecycle tasks: up, down, status, env."""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable
from pathlib import Path

from invoke import task

from overlaylab.errors import OverlaylabError, SpecError, TeardownIncomplete
from overlaylab.lablock import lab_lock
from overlaylab.layout import LabLayout
from overlaylab.tasks.common import (
    DEFAULT_INVENTORY,
    err,
    friendly_errors,
    open_lab,
    out,
    progress,
    terminate_as_interrupt,
)

__all__ = ["down", "env", "status", "up"]


@task(
    help={
        "inventory": f"cluster spec (default {DEFAULT_INVENTORY})",
        "retain": "keep a half-made lab when a fresh `up` fails (for debugging)",
        "quiet": "no progress lines",
    }
)
@friendly_errors
def up(c, inventory=DEFAULT_INVENTORY, retain=False, quiet=False):  # type: ignore[no-untyped-def]
    """Bring the lab up (or finish it, or confirm it is up to date)."""
    from overlaylab.tasks.spec import print_warnings
    from overlaylab.up import pipeline

    ctx = open_lab(inventory, progress(quiet))
    # Shown even with --quiet, before anything starts; they never stop `up`.
    print_warnings(err, inventory, ctx.warnings)
    with terminate_as_interrupt(), lab_lock(ctx.spec.name, f"invoke up -i {inventory}", _busy):
        report = pipeline.up(ctx, retain=retain)
    if report.changed:
        err.print(
            f"[bold green]lab '{ctx.spec.name}' is up[/] in {report.seconds:.1f}s "
            f"(changed: {', '.join(report.changed)})"
        )
    else:
        err.print(
            f"[bold green]lab '{ctx.spec.name}' is up to date[/]: nothing changed "
            f"({report.seconds:.1f}s)"
        )


def _busy(message: str) -> None:
    err.print(f"[yellow]{message}[/]")


def _what_to_take_down(inventory: str, name: str | None) -> tuple[str, Callable[[], list[str]]]:
    """(cluster name, how to remove it): through the spec's provider when the spec loads,
    else from names alone (a local lab), so a broken or lost spec strands nothing."""
    import yaml

    from overlaylab.faults.teardown import remove_faults
    from overlaylab.providers.local.teardown import destroy_local_lab

    if name:
        return name, lambda: destroy_local_lab(LabLayout.for_cluster(name))
    try:
        ctx = open_lab(inventory, progress(quiet=True))
        return ctx.spec.name, lambda: [*remove_faults(ctx), *ctx.provider.destroy()]
    except SpecError:
        # A spec that no longer validates must not strand a running lab.
        try:
            data = yaml.safe_load(Path(inventory).read_text())
            cluster = str(data["name"])
            return cluster, lambda: destroy_local_lab(LabLayout.for_cluster(cluster))
        except (OSError, yaml.YAMLError, KeyError, TypeError) as exc:
            raise OverlaylabError(
                f"{inventory}: cannot tell which lab to take down ({exc}); pass --name NAME"
            ) from exc


@task(
    help={
        "inventory": f"cluster spec (default {DEFAULT_INVENTORY})",
        "name": "cluster name, when the spec is gone or broken",
    }
)
@friendly_errors
def down(c, inventory=DEFAULT_INVENTORY, name=None):  # type: ignore[no-untyped-def]
    """Remove every trace of the lab: processes, namespaces, links, mounts, files."""
    cluster, take_down = _what_to_take_down(inventory, name)
    command = f"invoke down --name {name}" if name else f"invoke down -i {inventory}"
    try:
        with lab_lock(cluster, command, _busy):
            done = take_down()
    except TeardownIncomplete as exc:
        for line in exc.done:
            err.print(f"  · {line}")
        raise
    for line in done:
        err.print(f"  · {line}")
    err.print(f"[bold]lab '{cluster}' is down[/]" + ("" if done else " (nothing was running)"))


@task(
    help={
        "inventory": f"cluster spec (default {DEFAULT_INVENTORY})",
        "format": "table (default) or json",
    }
)
@friendly_errors
def status(c, inventory=DEFAULT_INVENTORY, format="table"):  # type: ignore[no-untyped-def]
    """Nodes, engines, KV store, networks and containers at a glance."""
    from overlaylab import status as lab_status

    ctx = open_lab(inventory, progress(quiet=True))
    snapshot = lab_status.collect(ctx)
    if format == "json":
        out.print_json(json.dumps(snapshot))
    else:
        lab_status.print_status(snapshot, out)


@task(
    help={
        "inventory": f"cluster spec (default {DEFAULT_INVENTORY})",
        "node": "engine node to point the docker CLI at (with --swarm: a swarm master)",
        "swarm": "point at the classic swarm master (port 3376), as `docker-machine env --swarm`",
    }
)
@friendly_errors
def env(c, node, inventory=DEFAULT_INVENTORY, swarm=False):  # type: ignore[no-untyped-def]
    """Print `export DOCKER_*` lines for NODE, as `docker-machine env` does."""
    from overlaylab.up.classic_swarm import masters as classic_masters
    from overlaylab.up.classic_swarm import swarm_env

    ctx = open_lab(inventory, progress(quiet=True))
    if swarm:
        if ctx.spec.orchestration.mode != "classic-swarm":
            raise OverlaylabError(
                f"--swarm points at a classic swarm master, but {inventory} has "
                f"orchestration.mode: {ctx.spec.orchestration.mode}; in swarm mode point the "
                "CLI at a manager node: `invoke env NODE`"
            )
        masters = [n.name for n in classic_masters(ctx.spec)]
        if node not in masters:
            raise OverlaylabError(
                f"--swarm points at a swarm master, and '{node}' is not one in {inventory}; "
                f"masters: {', '.join(masters)} (as `docker-machine env --swarm MASTER`)"
            )
        variables = swarm_env(ctx, node)
        again = f"invoke env --swarm {node} -i {inventory}"
    else:
        names = [n.name for n in ctx.spec.engine_nodes]
        if node not in names:
            raise OverlaylabError(
                f"no engine node '{node}' in {inventory}; engine nodes: {', '.join(names)}"
            )
        variables = ctx.node(node).docker_env()
        again = f"invoke env {node}"
    for key, value in variables.items():
        print(f"export {key}={shlex.quote(value)}")
    print(f'# Run this command to configure your shell:\n# eval "$({again})"')
