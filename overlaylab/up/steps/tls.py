"""The `tls` step: a lab CA, and a server certificate per engine and a client one."""

from __future__ import annotations

from overlaylab.context import LabContext
from overlaylab.up.certs import LabCA, NodeStore
from overlaylab.up.run import UpRun


def ensure_tls(ctx: LabContext, run: UpRun) -> bool:
    if not ctx.spec.engine.tls:
        return False
    layout = ctx.layout
    ca = LabCA(layout.tls_dir, ctx.spec.name)
    made = ["a new CA"] if ca.ensure() else []
    for node in ctx.spec.engine_nodes:
        assert node.address is not None
        handle = ctx.node(node.name)
        if ca.issue(
            NodeStore(handle, handle.paths.tls_dir),
            node.name,
            server=True,
            ips=[node.address],
            dns_names=[node.name, "localhost"],
        ):
            made.append(node.name)
    if ca.issue(layout.client_cert_dir, "overlaylab-client", server=False):
        made.append("the client")
    if made:
        ctx.progress.item("tls", f"certificates for {', '.join(made)} in {layout.tls_dir}")
    return bool(made)
