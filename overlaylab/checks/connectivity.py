"""Connectivity matrix: from each node's probe to every other node's, over each overlay."""

from __future__ import annotations

import re
import time
from itertools import permutations

from overlaylab.checks.base import Check, VerifyContext
from overlaylab.checks.probes import PROBE_PORT, Probe
from overlaylab.checks.result import CheckResult
from overlaylab.steps.images import PROBE_PAGE

HINT_DATAPLANE = (
    "overlay data travels as VXLAN on udp/4789 between the nodes' lab addresses: check "
    "firewalls on both nodes, that both engines advertise a lab address "
    "(cluster-advertise), and `invoke status`"
)
HINT_DNS = (
    "names on an overlay are answered by each engine's embedded DNS (127.0.0.11), which "
    "learns remote containers through the KV store and gossip (tcp+udp/7946): check that "
    "port between the nodes and the KV store's health"
)


def _pairs(vctx: VerifyContext) -> list[tuple[Probe, Probe]]:
    pairs: list[tuple[Probe, Probe]] = []
    for net in vctx.lab.spec.networks:
        pairs += [(a, b) for a, b in permutations(vctx.probes_on(net.name), 2)]
    return pairs


def _until(vctx: VerifyContext, attempt):  # type: ignore[no-untyped-def]
    """Retry `attempt() -> (ok, code, out, cmd)` until ok or the verify timeout passes."""
    deadline = time.monotonic() + vctx.timeout
    tries = 0
    while True:
        tries += 1
        ok, code, out, cmd = attempt()
        if ok or time.monotonic() >= deadline:
            return ok, code, out, cmd, tries
        time.sleep(0.3)


def _subject(a: Probe, b: Probe) -> str:
    return f"{a.node} -> {b.node} over {a.network}"


def icmp_pair(vctx: VerifyContext, a: Probe, b: Probe) -> list[CheckResult]:
    started = time.monotonic()

    def attempt():  # type: ignore[no-untyped-def]
        code, out, cmd = vctx.exec(a, None, ["ping", "-c", "1", "-W", "1", b.address], timeout=3)
        return code == 0, code, out, cmd

    ok, code, out, cmd, tries = _until(vctx, attempt)
    match = re.search(r"time=([\d.]+) ms", out)
    return [
        CheckResult(
            check="connectivity.icmp",
            subject=_subject(a, b),
            status="pass" if ok else "fail",
            message=f"ping {b.address} ({b.name})" + ("" if ok else f" failed (exit {code})"),
            hint="" if ok else HINT_DATAPLANE,
            nodes=[a.node, b.node],
            command=cmd,
            output=out.strip(),
            details={
                "from": a.address,
                "to": b.address,
                "tries": tries,
                "latency_ms": float(match[1]) if match else None,
                "path": "same-host" if a.node == b.node else "cross-host",
            },
            seconds=round(time.monotonic() - started, 3),
        )
    ]


def dns_pair(vctx: VerifyContext, a: Probe, b: Probe) -> list[CheckResult]:
    started = time.monotonic()

    def attempt():  # type: ignore[no-untyped-def]
        code, out, cmd = vctx.exec(a, None, ["nslookup", b.name], timeout=3)
        return b.address in resolved(out), code, out, cmd

    ok, _code, out, cmd, tries = _until(vctx, attempt)
    got = resolved(out)
    message = f"{b.name} -> {', '.join(got) or 'nothing'}"
    if not ok and got:
        message += f" (expected {b.address}: stale record)"
    return [
        CheckResult(
            check="connectivity.dns",
            subject=_subject(a, b),
            status="pass" if ok else "fail",
            message=message,
            hint="" if ok else HINT_DNS,
            nodes=[a.node, b.node],
            command=cmd,
            output=out.strip(),
            details={"name": b.name, "expected": b.address, "resolved": got, "tries": tries},
            seconds=round(time.monotonic() - started, 3),
        )
    ]


def resolved(nslookup_output: str) -> list[str]:
    """Addresses in busybox nslookup's answer section (after the 'Name:' line)."""
    _, _, answer = nslookup_output.partition("Name:")
    return re.findall(r"Address(?: \d+)?:\s*([0-9.]+)", answer)


def tcp_pair(vctx: VerifyContext, a: Probe, b: Probe) -> list[CheckResult]:
    started = time.monotonic()
    script = 'printf "GET / HTTP/1.0\\r\\n\\r\\n" | nc -w 2 "$1" "$2"'

    def attempt():  # type: ignore[no-untyped-def]
        code, out, cmd = vctx.exec(
            a, None, ["sh", "-c", script, "tcp", b.name, str(PROBE_PORT)], timeout=4
        )
        return PROBE_PAGE.decode().strip() in out, code, out, cmd

    ok, code, out, cmd, tries = _until(vctx, attempt)
    return [
        CheckResult(
            check="connectivity.tcp",
            subject=_subject(a, b),
            status="pass" if ok else "fail",
            message=f"tcp {b.name}:{PROBE_PORT}"
            + (" answered" if ok else f" did not answer (exit {code})"),
            hint="" if ok else HINT_DATAPLANE,
            nodes=[a.node, b.node],
            command=cmd,
            output=out.strip()[-500:],
            details={"to": b.address, "port": PROBE_PORT, "tries": tries},
            seconds=round(time.monotonic() - started, 3),
        )
    ]


def _matrix(fn):  # type: ignore[no-untyped-def]
    def run(vctx: VerifyContext) -> list[CheckResult]:
        return vctx.map(lambda pair: fn(vctx, *pair), _pairs(vctx))

    return run


CHECKS = [
    Check(
        "connectivity.icmp",
        "connectivity",
        "ICMP by address between probes on each overlay",
        _matrix(icmp_pair),
    ),
    Check(
        "connectivity.dns",
        "connectivity",
        "probe names resolve across hosts to the right address",
        _matrix(dns_pair),
    ),
    Check(
        "connectivity.tcp",
        "connectivity",
        "TCP by name to a listening probe on every other node",
        _matrix(tcp_pair),
    ),
]
