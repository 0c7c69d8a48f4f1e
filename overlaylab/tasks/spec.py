"""`invoke validate`: check specs and show what they would build, without root and
without starting anything. Also the rendering of spec warnings, which `up` shares."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from invoke import task
from invoke.exceptions import Exit

from overlaylab.tasks.common import DEFAULT_INVENTORY, err, friendly_errors, out

if TYPE_CHECKING:
    from rich.console import Console

    from overlaylab.spec.summary import (
        NetworkSummary,
        SpecSummary,
        SpecValidation,
        StackSummary,
    )
    from overlaylab.spec.warnings import SpecWarning

__all__ = ["validate"]

LABEL_WIDTH = 10  # "  networks  dn ...": labels in one column, values in the next


@task(
    iterable=["inventory"],
    help={"inventory": f"cluster spec to check (repeatable; default {DEFAULT_INVENTORY})"},
)
@friendly_errors
def validate(c, inventory=None):  # type: ignore[no-untyped-def]
    """Check cluster specs and print their topology; exit 2 if any is invalid."""
    from rich.markup import escape

    from overlaylab.spec.summary import validate_spec

    results = [validate_spec(path) for path in inventory or [DEFAULT_INVENTORY]]
    for result in results:
        print_validation(result, out, err)
    invalid = [r.path for r in results if not r.ok]
    if len(results) > 1:
        err.print(
            f"{len(results)} specs checked: {len(results) - len(invalid)} valid, "
            f"{len(invalid)} invalid" + (f" ({escape(', '.join(invalid))})" if invalid else "")
        )
    if invalid:
        raise Exit(code=2)


def print_validation(result: SpecValidation, console: Console, errors: Console) -> None:
    from rich.markup import escape

    if result.summary is not None:
        print_summary(result.path, result.summary, console)
    else:
        # The loader's own paragraph: file, then one line per problem with line, path, fix.
        errors.print(f"[red]error:[/] {escape(str(result.error))}")


def print_summary(path: str, summary: SpecSummary, console: Console) -> None:
    from rich.markup import escape

    console.print(f"[bold green]{escape(path)}: valid[/]")
    for label, lines in _sections(summary):
        for index, line in enumerate(lines):
            head = label if index == 0 else ""
            console.print(f"  {head:<{LABEL_WIDTH}}{escape(line)}")


def print_warnings(console: Console, source: str, warnings: Sequence[SpecWarning]) -> None:
    """Each warning on its own line with its fix below; `up` prints them before its steps."""
    from rich.markup import escape

    for warning in warnings:
        console.print(
            f"[yellow]warning:[/] {escape(f'{source}: {warning.where}: {warning.message}')}"
        )
        console.print(f"  fix: {escape(warning.fix)}")


def _sections(summary: SpecSummary) -> Iterable[tuple[str, list[str]]]:
    about = f"{summary.name}" + (f": {summary.description}" if summary.description else "")
    yield "cluster", [about]
    yield (
        "provider",
        [
            f"{summary.provider}; lab {summary.lab_subnet}, mtu {summary.lab_mtu}; "
            f"orchestration {summary.orchestration}"
        ],
    )
    width = max(len(n.name) for n in summary.nodes)
    yield (
        "nodes",
        [f"{n.name:<{width}}  {n.address:<15}  {', '.join(n.roles)}" for n in summary.nodes],
    )
    kv = summary.kv
    yield "kv", [f"{kv.backend} on {kv.node} ({kv.endpoint})" if kv else "none"]
    engine = summary.engine
    yield (
        "engine",
        [
            f"{engine.version}; cluster-store {engine.cluster_store or 'none'}; "
            f"cluster-advertise {engine.cluster_advertise or 'none'}; "
            f"tls {'on' if engine.tls else 'off'}"
        ],
    )
    yield "networks", [_network_line(n) for n in summary.networks] or ["none"]
    yield "stacks", [_stack_line(s) for s in summary.stacks] or ["none"]
    yield "warnings", [str(w) for w in summary.warnings] or ["none"]


def _network_line(network: NetworkSummary) -> str:
    subnet = network.subnet or "subnet from the engine's pool"
    options = ", ".join(f'{key}: "{value}"' for key, value in network.options)
    flags = ["internal (no docker_gwbridge leg, no egress)"] if network.internal else []
    if network.attachable is not None:
        flags.append("attachable" if network.attachable else "not attachable (services only)")
    return (
        f"{network.name} ({network.driver}) {subnet}"
        + "".join(f"; {flag}" for flag in flags)
        + (f"; options {options}" if options else "")
    )


def _stack_line(stack: StackSummary) -> str:
    placements = ", ".join(f"{service} -> {node}" for service, node in stack.placements)
    return f"{stack.name} ({stack.file}): {placements}"
