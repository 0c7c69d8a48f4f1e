"""Published ports answer on the node's lab address, from the other nodes: a request
gets a reply (or a close), not merely a connection."""

from __future__ import annotations

from overlaylab.verify.check import Check
from overlaylab.verify.checks.stack_containers import stack_containers
from overlaylab.verify.context import VerifyContext
from overlaylab.verify.result import CheckResult


def published(vctx: VerifyContext) -> list[CheckResult]:
    spec = vctx.lab.spec
    work = []
    for c in stack_containers(vctx):
        for host_port, container_port, proto in c.ports:
            if proto != "tcp":
                continue
            for other in spec.engine_nodes:
                if other.name != c.node:
                    work.append((c, host_port, container_port, other.name))
    if not work:
        return [
            CheckResult.skip("ports.published", "stacks", "no stack container publishes a TCP port")
        ]

    def one(item):  # type: ignore[no-untyped-def]
        c, host_port, container_port, other = item
        address = str(spec.address_of(c.node))
        observer = vctx.lab.node(other)
        # Accepting is not answering: a paused container's kernel completes the
        # handshake and nothing ever replies. A reply or a close shows a server at work.
        ok, what = observer.tcp_answers(address, host_port, timeout=3)
        return [
            CheckResult(
                check="ports.published",
                subject=f"{other} -> {c.node}:{host_port} ({c.stack}/{c.service}:{container_port})",
                status="pass" if ok else "fail",
                message=what if ok else f"does not answer: {what}",
                hint=""
                if ok
                else (
                    f"the engine on {c.node} publishes {host_port} with iptables DNAT on the "
                    "node's addresses: check the container runs and listens on its port "
                    "(see stacks.running), the node's firewall, and that nothing else holds "
                    "the port"
                ),
                nodes=[other, c.node],
                source=other,
                target=c.node,
                details={"port": host_port, "service": f"{c.stack}/{c.service}"},
                command=observer.tcp_probe_command(address, host_port),
            )
        ]

    return vctx.map(one, work)


PUBLISHED = Check(
    "ports.published",
    "ports",
    "every published port answers on its node's lab address from the other nodes",
    published,
)

CHECKS = [PUBLISHED]
