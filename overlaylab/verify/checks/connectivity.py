"""Connectivity matrix on each overlay: every ordered cross-host pair of the nodes' first
probes, and first -> second probe on each node (same-host), by ICMP, DNS, TCP, UDP and
full-size don't-fragment packets (mtu.py), in one batch of rounds for all of them.
What every check between probes shares is in probe_pairs.py."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from overlaylab.probe_tools import UDP_SEND
from overlaylab.up.steps.images import PROBE_PAGE
from overlaylab.verify.batch import Outcome, keep_ahead, riders, run_tests
from overlaylab.verify.check import Check
from overlaylab.verify.checks.mtu import mtu_result, mtu_test
from overlaylab.verify.checks.probe_pairs import (
    HINT_DATAPLANE,
    HINT_DNS,
    HINT_DNS_SWARM,
    pair_result,
    pairs,
    resolved,
)
from overlaylab.verify.context import VerifyContext
from overlaylab.verify.probes import PROBE_PORT, PROBE_UDP_PORT, Probe, ProbeTest
from overlaylab.verify.result import CheckResult


def _latency(output: str) -> float | None:
    match = re.search(r"time=([\d.]+) ms", output)
    return float(match[1]) if match else None


# --- what each check runs in the source probe, and what it makes of the answer ------------


def icmp_test(vctx: VerifyContext, a: Probe, b: Probe) -> ProbeTest:
    return ProbeTest(
        f"icmp.{a.name}.{b.name}",
        a,
        ["ping", "-c", "1", "-W", "1", b.address],
        lambda code, _out: code == 0,
    )


def icmp_result(vctx: VerifyContext, a: Probe, b: Probe, seen: Outcome, cmd: str) -> CheckResult:
    latency = _latency(seen.output)
    message = f"ping {b.address}" + (
        f" in {latency:g} ms" if seen.ok and latency is not None else f" failed (exit {seen.code})"
    )
    return pair_result(
        "connectivity.icmp",
        a,
        b,
        seen,
        message,
        HINT_DATAPLANE,
        cmd,
        latency_ms=latency,
    )


def dns_test(vctx: VerifyContext, a: Probe, b: Probe) -> ProbeTest:
    return ProbeTest(
        f"dns.{a.name}.{b.name}",
        a,
        ["nslookup", b.name],
        lambda _code, out: b.address in resolved(out),
    )


def dns_result(vctx: VerifyContext, a: Probe, b: Probe, seen: Outcome, cmd: str) -> CheckResult:
    got = resolved(seen.output)
    message = f"{b.name} -> {', '.join(got) or 'nothing'}"
    if not seen.ok and got:
        message += f" (its address is {b.address}: a stale record)"
    return pair_result(
        "connectivity.dns",
        a,
        b,
        seen,
        message,
        HINT_DNS_SWARM if vctx.lab.spec.orchestration.mode == "swarm-mode" else HINT_DNS,
        cmd,
        name=b.name,
        resolved=got,
    )


TCP_SCRIPT = 'printf "GET / HTTP/1.0\\r\\n\\r\\n" | nc -w 2 "$1" "$2"'


def tcp_test(vctx: VerifyContext, a: Probe, b: Probe) -> ProbeTest:
    page = PROBE_PAGE.decode().strip()
    return ProbeTest(
        f"tcp.{a.name}.{b.name}",
        a,
        ["sh", "-c", TCP_SCRIPT, "tcp", b.name, str(PROBE_PORT)],
        lambda _code, out: page in out,
        timeout=4,
    )


def tcp_result(vctx: VerifyContext, a: Probe, b: Probe, seen: Outcome, cmd: str) -> CheckResult:
    message = f"tcp {b.name}:{PROBE_PORT} " + (
        "answered" if seen.ok else f"did not answer (exit {seen.code})"
    )
    return pair_result(
        "connectivity.tcp",
        a,
        b,
        seen,
        message,
        HINT_DATAPLANE,
        cmd,
        port=PROBE_PORT,
    )


def udp_token(a: Probe) -> str:
    """What `a` sends, and must hear back."""
    return f"overlaylab-udp-{a.name}"


UDP_RESEND = 0.25  # seconds between two datagrams of one UDP test
UDP_SENDS = 8  # datagrams at most: UDP_SENDS x UDP_RESEND is the test's patience (2 s)


def udp_test(vctx: VerifyContext, a: Probe, b: Probe) -> ProbeTest:
    token = udp_token(a)
    # probe_tools' udp-send: the token again every UDP_RESEND seconds until it is
    # echoed, so a datagram lost on the way costs a resend, not the test.
    argv = [UDP_SEND, b.address, str(PROBE_UDP_PORT), token, str(UDP_SENDS), str(UDP_RESEND)]
    return ProbeTest(
        f"udp.{a.name}.{b.name}",
        a,
        argv,
        lambda _code, out: token in out,
        timeout=2 + int(UDP_SENDS * UDP_RESEND),
    )


def udp_result(vctx: VerifyContext, a: Probe, b: Probe, seen: Outcome, cmd: str) -> CheckResult:
    message = f"udp {b.address}:{PROBE_UDP_PORT} " + (
        "echoed" if seen.ok else f"no echo (exit {seen.code})"
    )
    return pair_result(
        "connectivity.udp",
        a,
        b,
        seen,
        message,
        HINT_DATAPLANE,
        cmd,
        port=PROBE_UDP_PORT,
    )


@dataclass(frozen=True)
class PairCheck:
    test: Callable[[VerifyContext, Probe, Probe], ProbeTest]
    # The last argument: the `docker exec` that reproduces the test, as a user would paste it.
    result: Callable[[VerifyContext, Probe, Probe, Outcome, str], CheckResult]


PAIR_CHECKS: dict[str, PairCheck] = {
    "connectivity.icmp": PairCheck(icmp_test, icmp_result),
    "connectivity.dns": PairCheck(dns_test, dns_result),
    "connectivity.tcp": PairCheck(tcp_test, tcp_result),
    "connectivity.udp": PairCheck(udp_test, udp_result),
    "mtu.df": PairCheck(mtu_test, mtu_result),
}


def _run_pair_checks(vctx: VerifyContext, check_ids: list[str]) -> dict[str, list[CheckResult]]:
    """Every pair of every check in `check_ids`, in one shared set of rounds."""
    todo = pairs(vctx)
    tests = {
        (check_id, a, b): PAIR_CHECKS[check_id].test(vctx, a, b)
        for check_id in check_ids
        for a, b in todo
    }
    ahead, standing = riders(vctx)
    seen = run_tests(vctx, [*tests.values(), *ahead])
    keep_ahead(vctx, standing, seen)
    found: dict[str, list[CheckResult]] = {cid: [] for cid in check_ids}
    for (check_id, a, b), test in tests.items():
        cmd = vctx.command(a.node, a.name, test.argv)
        found[check_id].append(PAIR_CHECKS[check_id].result(vctx, a, b, seen[test.id], cmd))
    return found


def pair_check(check_id: str) -> Callable[[VerifyContext], list[CheckResult]]:
    """A check's results, from one batched run of every pair check this verify runs.

    Pairs with a node that has no probes are not listed here: probes.running fails
    that node once, with the reason."""

    def run(vctx: VerifyContext) -> list[CheckResult]:
        # The first pair check to run does the batch; the others, side by side with it,
        # wait for its results.
        with vctx.lock("pair_checks"):
            done: dict[str, list[CheckResult]] = vctx.cache.setdefault("pair_checks", {})
            if check_id not in done:
                wanted = [c for c in PAIR_CHECKS if c == check_id or c in vctx.selected]
                done.update(_run_pair_checks(vctx, [c for c in wanted if c not in done]))
            return done[check_id]

    return run


ICMP = Check(
    "connectivity.icmp",
    "connectivity",
    "ICMP by address between probes on each overlay",
    pair_check("connectivity.icmp"),
    needs_probes=True,
)

DNS = Check(
    "connectivity.dns",
    "connectivity",
    "probe names resolve, across hosts, to the right address",
    pair_check("connectivity.dns"),
    needs_probes=True,
)

TCP = Check(
    "connectivity.tcp",
    "connectivity",
    "TCP by name to a listening probe",
    pair_check("connectivity.tcp"),
    needs_probes=True,
)

UDP = Check(
    "connectivity.udp",
    "connectivity",
    "UDP datagrams echoed by the other probe",
    pair_check("connectivity.udp"),
    needs_probes=True,
)

MTU_DF = Check(
    "mtu.df",
    "mtu",
    "a full-size don't-fragment packet crosses the overlay",
    pair_check("mtu.df"),
    needs_probes=True,
)

CHECKS = [ICMP, DNS, TCP, UDP, MTU_DF]
