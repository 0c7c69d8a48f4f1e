"""Different overlays are isolated: a probe on one cannot reach probes on another."""

from __future__ import annotations

from itertools import permutations

from overlaylab.verify.batch import recall
from overlaylab.verify.check import Check
from overlaylab.verify.checks import connectivity
from overlaylab.verify.context import VerifyContext
from overlaylab.verify.probes import Probe, ProbeTest
from overlaylab.verify.result import CheckResult

HINT = (
    "overlays are separate L2 segments; traffic crosses them only through a container "
    "attached to both (`docker network connect`), or a router you added. Find containers "
    "on both networks with `docker network inspect` on each node"
)


def _work(vctx: VerifyContext) -> list[tuple[Probe, Probe]]:
    """Every probe to every probe of every other overlay."""
    nets = [n.name for n in vctx.lab.spec.networks]
    return [
        (src, dst)
        for net_a, net_b in permutations(nets, 2)
        for src in vctx.probes_on(net_a)
        for dst in vctx.probes_on(net_b)
    ]


def _tests(work: list[tuple[Probe, Probe]]) -> list[ProbeTest]:
    return [
        ProbeTest(f"iso{i}", src, ["ping", "-c", "1", "-W", "1", dst.address], lambda _c, _o: True)
        for i, (src, dst) in enumerate(work)
    ]


def tests_ahead(vctx: VerifyContext) -> list[ProbeTest]:
    return _tests(_work(vctx))


def overlays(vctx: VerifyContext) -> list[CheckResult]:
    if len(vctx.lab.spec.networks) < 2:
        return [
            CheckResult.skip(
                "isolation.overlays", "networks", "the spec has fewer than two overlays"
            )
        ]
    work = _work(vctx)
    tests = _tests(work)
    answers = recall(vctx, "isolation.overlays", tests)  # one look each: no converging
    return [
        _judged(
            src,
            dst,
            answers[test.id].code,
            answers[test.id].output,
            vctx.command(src.node, src.name, test.argv),
        )
        for (src, dst), test in zip(work, tests, strict=True)
    ]


def _judged(src: Probe, dst: Probe, code: int, out: str, cmd: str) -> CheckResult:
    leaked = code == 0
    return CheckResult(
        check="isolation.overlays",
        subject=f"{src.node} on {src.network} -> {dst.node} on {dst.network}",
        status="fail" if leaked else "pass",
        message=(
            f"{src.name} reached {dst.name} ({dst.address}) across networks"
            if leaked
            else f"{dst.address} unreachable, as it should be"
        ),
        hint=HINT if leaked else "",
        nodes=sorted({src.node, dst.node}),
        source=src.node,
        target=dst.node,
        network=src.network,
        path="same-host" if src.node == dst.node else "cross-host",
        details={"from": src.name, "to": dst.name, "to_network": dst.network},
        command=cmd,
        output=out.strip()[-300:] if leaked else "",
    )


OVERLAYS = Check(
    "isolation.overlays",
    "isolation",
    "probes on different overlays cannot reach each other",
    overlays,
    needs_probes=True,
    ahead=tests_ahead,
    after=tuple(connectivity.CHECKS),  # its tests ride in their round
)

CHECKS = [OVERLAYS]
