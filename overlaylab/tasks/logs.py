"""`invoke logs`: one archive of a lab's evidence, for a bug report or a post-mortem."""

from __future__ import annotations

from pathlib import Path

from invoke import task

from overlaylab.errors import OverlaylabError
from overlaylab.tasks.common import DEFAULT_INVENTORY, err, friendly_errors, open_lab, out, progress

__all__ = ["logs"]


@task(
    help={
        "inventory": f"cluster spec (default {DEFAULT_INVENTORY})",
        "output": "the archive to write (default overlaylab-<cluster>-<UTC time>.tar.gz here)",
        "no_verify": "leave out the fresh verify report (faster)",
        "since": "only log lines of the last DURATION (90s, 15m, 2h, 1d)",
    }
)
@friendly_errors
def logs(  # type: ignore[no-untyped-def]
    c, inventory=DEFAULT_INVENTORY, output=None, no_verify=False, since=None
):
    """Collect a lab's evidence (logs, configs, network state, KV keys, verify) into one file."""
    from rich.markup import escape

    from overlaylab.evidence.bundle import gather
    from overlaylab.evidence.since import parse_duration

    try:
        window = parse_duration(since) if since else None
    except ValueError as exc:
        raise OverlaylabError(str(exc)) from None
    ctx = open_lab(inventory, progress(quiet=True))
    err.print(f"collecting the evidence of lab '{escape(ctx.spec.name)}'…")
    target, manifest, size = gather(
        ctx,
        out=Path(output) if output else None,
        since=window,
        with_verify=not no_verify,
        since_text=since,
    )
    for missing in manifest.missing:
        err.print(
            f"  [yellow]not collected[/] {escape(missing.path)} ({escape(missing.source)}): "
            f"{escape(missing.reason)}"
        )
    err.print(
        f"[bold green]wrote {escape(str(target))}[/]: {len(manifest.entries)} items, "
        f"{len(manifest.missing)} not collected, {size / 1024:.0f} KiB, "
        f"{manifest.seconds:.1f}s; verify {escape(manifest.verify)}"
    )
    out.print(str(target))
