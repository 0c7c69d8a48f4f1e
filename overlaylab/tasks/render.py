"""`invoke render`: every file a spec renders to, written into a folder and shown as a
tree (machines for the Vagrantfile, docker-machine commands, per-node engine and KV
configuration, stacks with their placement)."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from invoke import task

from overlaylab.tasks.common import DEFAULT_INVENTORY, err, friendly_errors
from overlaylab.tasks.common import out as console

if TYPE_CHECKING:
    from rich.tree import Tree

    from overlaylab.artifacts import Artifact

__all__ = ["render"]


@task(
    help={
        "inventory": f"cluster spec (default {DEFAULT_INVENTORY})",
        "out": "folder to write into (default .overlaylab/render/<cluster>/)",
    }
)
@friendly_errors
def render(c, inventory=DEFAULT_INVENTORY, out=None):  # type: ignore[no-untyped-def]
    """Write every artifact of a spec into a folder and print them as a tree."""
    from rich.markup import escape

    from overlaylab.artifacts import (
        default_out_dir,
        spec_artifacts,
        write_artifacts,
        write_vagrant_machines,
    )
    from overlaylab.spec.loader import load_spec_file

    loaded = load_spec_file(inventory)
    artifacts = spec_artifacts(loaded)
    out_dir = Path(out) if out else default_out_dir(loaded.spec.name)
    write_artifacts(artifacts, out_dir)
    machines = write_vagrant_machines(artifacts)
    # Wrapped, not cropped: descriptions are longer than a narrow terminal.
    console.print(artifact_tree(artifacts, out_dir), soft_wrap=False)
    err.print(
        f"[bold green]rendered lab '{escape(loaded.spec.name)}'[/] from {escape(inventory)}: "
        f"{len(artifacts)} files; the Vagrantfile reads {escape(display(machines))}"
    )
    err.print(validate_hint(out_dir / "machines.json"))


def validate_hint(machines: Path) -> str:
    """How to have Vagrant check the rendered machines where their provider is missing
    (VirtualBox, vagrant-libvirt): `--ignore-provider` checks everything else."""
    from rich.markup import escape

    return (
        "check the machines with Vagrant, even without their provider installed: "
        f"OVERLAYLAB_MACHINES={escape(display(machines))} vagrant validate --ignore-provider"
    )


def display(path: Path) -> str:
    """`path` relative to the working folder when it is inside it."""
    relative = os.path.relpath(path)
    return path.as_posix() if relative.startswith("..") else relative


def artifact_tree(artifacts: list[Artifact], out_dir: Path) -> Tree:
    """The files under `out_dir`, folders first level by level, each with what it is."""
    from rich.markup import escape
    from rich.tree import Tree

    root = Tree(f"[bold]{escape(display(out_dir))}/[/]")
    folders: dict[PurePosixPath, Tree] = {PurePosixPath("."): root}
    for artifact in artifacts:
        parent = _folder(folders, artifact.path.parent)
        parent.add(f"[bold]{escape(artifact.path.name)}[/]  {escape(artifact.description)}")
    return root


def _folder(folders: dict[PurePosixPath, Tree], path: PurePosixPath) -> Tree:
    from rich.markup import escape

    if path not in folders:
        folders[path] = _folder(folders, path.parent).add(f"[bold]{escape(path.name)}/[/]")
    return folders[path]
