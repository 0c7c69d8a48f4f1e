"""The `nodes` step: the provider makes the hosts (namespaces, machines, or nothing)."""

from __future__ import annotations

from overlaylab.context import LabContext
from overlaylab.up.run import UpRun


def ensure_nodes(ctx: LabContext, run: UpRun) -> bool:
    existed = ctx.provider.exists()
    ctx.provider.provision(on_item=None if existed else ctx.progress.item)
    return not existed
