"""`invoke new NAME`: write a new cluster spec, valid before it touches the disk."""

from __future__ import annotations

from pathlib import Path

from invoke import task

from overlaylab.scaffold_options import DEFAULT_NODES, DEFAULT_SUBNET, KV_BACKENDS, MODES, PROVIDERS
from overlaylab.tasks.common import err, friendly_errors

__all__ = ["new"]

INVENTORY_DIR = "inventory"


@task(
    auto_shortflags=False,  # -i means a spec everywhere else; here nothing is abbreviated
    help={
        "nodes": f"engine nodes (default {DEFAULT_NODES}; a KV node is added when needed)",
        "kv": f"KV store: {', '.join(KV_BACKENDS)} (default etcd; swarm-mode needs none)",
        "mode": f"orchestration: {', '.join(MODES)} (default none)",
        "provider": f"{', '.join(PROVIDERS)} (default local)",
        "networks": "overlay networks, comma separated (default dn; '' for none)",
        "subnet": f"lab subnet the node addresses come from (default {DEFAULT_SUBNET})",
        "inventory_dir": f"folder to write NAME.yml into (default {INVENTORY_DIR}/)",
        "force": "replace NAME.yml if it exists",
    },
)
@friendly_errors
def new(  # type: ignore[no-untyped-def]
    c,
    name,
    nodes=DEFAULT_NODES,
    kv=None,
    mode="none",
    provider="local",
    networks="dn",
    subnet=DEFAULT_SUBNET,
    inventory_dir=INVENTORY_DIR,
    force=False,
):
    """Write inventory/NAME.yml: a new lab layout, commented, checked by the loader."""
    from rich.markup import escape

    from overlaylab.scaffold import LayoutChoices, parse_networks, write_layout

    choices = LayoutChoices(
        name=name,
        nodes=int(nodes),
        kv=kv,
        mode=mode,
        provider=provider,
        networks=parse_networks(networks),
        subnet=subnet,
    )
    path, layout = write_layout(choices, Path(inventory_dir), force=force)
    for note in layout.notes:
        err.print(f"[yellow]note:[/] {escape(note)}")
    err.print(
        f"[bold green]wrote {escape(str(path))}[/]: {len(layout.nodes)} nodes, "
        f"{len(layout.networks)} overlay network(s); next: ./lab validate -i {escape(str(path))}"
    )
