"""`invoke graph`: a picture of the lab a spec describes, from the spec alone (no lab
needed): KV node, lab switch, engine nodes, overlays, stack services and probes."""

from __future__ import annotations

from pathlib import Path

from invoke import task

from overlaylab.errors import OverlaylabError
from overlaylab.tasks.common import DEFAULT_INVENTORY, err, friendly_errors
from overlaylab.tasks.render import display

__all__ = ["graph"]


@task(
    help={
        "inventory": f"cluster spec (default {DEFAULT_INVENTORY})",
        "out": "picture to write, FILE.svg or FILE.png (default <cluster>.svg here)",
    }
)
@friendly_errors
def graph(c, inventory=DEFAULT_INVENTORY, out=None):  # type: ignore[no-untyped-def]
    """Draw the lab a spec describes (needs Graphviz's dot: apt-get install graphviz)."""
    from rich.markup import escape

    from overlaylab.report.drawing import output_format, render
    from overlaylab.report.json_report import write_bytes_atomic
    from overlaylab.report.topology import build_topology, compose_networks
    from overlaylab.spec.loader import load_spec_file

    # The extension is checked before the spec is read: a typo fails fast and alone.
    target = Path(out) if out else None
    fmt = output_format(target) if target else "svg"
    loaded = load_spec_file(inventory)
    path = target or Path(f"{loaded.spec.name}.svg")
    topology = build_topology(
        loaded.spec, service_networks=compose_networks(loaded.spec, loaded.spec_dir)
    )
    picture = render(topology, fmt)
    try:
        write_bytes_atomic(path, picture)
    except OSError as exc:
        raise OverlaylabError(f"cannot write {path}: {exc}") from exc
    err.print(
        f"[bold green]drew lab '{escape(loaded.spec.name)}'[/] from {escape(inventory)}: "
        f"{escape(display(path.resolve()))} ({len(picture)} bytes)"
    )
