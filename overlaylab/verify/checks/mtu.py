"""mtu.df: a full-size don't-fragment packet crosses the overlay, between every pair the
connectivity checks test (it rides in their batch: connectivity.PAIR_CHECKS)."""

from __future__ import annotations

import re

from overlaylab.probe_tools import DF_ECHO, source
from overlaylab.verify.batch import Outcome
from overlaylab.verify.checks.probe_pairs import HINT_DATAPLANE, pair_result
from overlaylab.verify.context import VerifyContext
from overlaylab.verify.probes import IPUTILS_PING, Probe, ProbeTest
from overlaylab.verify.result import CheckResult

HINT_MTU = (
    "containers on an overlay get its links' MTU less 50 bytes of VXLAN headers (1500 - 50 "
    "= 1450 by default); when the lab links carry less than that + 50, full-size packets "
    "with don't-fragment are dropped (TCP stalls on large transfers): raise the lab MTU, or "
    "tell the overlay its links' real MTU (-o com.docker.network.driver.mtu=<lab MTU>; the "
    "driver subtracts the 50 itself)"
)


# The source reads its overlay MTU (eth0's) and sends one echo of that size with
# don't-fragment, past any path MTU its kernel cached (probe_tools' df-echo, run by the
# image's perl; `ping -M do` refuses locally for 10 minutes after a link was too small,
# however well it carries now). When that is lost, a small ping tells whether anything
# crosses at all (if not, it is not the MTU), in the same test: a round of its own would
# cost a fault one more exec and ping timeout.
PERL = "/opt/host/bin/perl"


DF_SCRIPT = (
    "m=$(cat /sys/class/net/eth0/mtu) || exit 2; "
    'echo "overlay mtu $m"; '
    f'{PERL} -e "$2" "$1" "$m" && exit 0; '
    f'{IPUTILS_PING} -c 1 -W 1 "$1" >/dev/null 2>&1; '
    'echo "small ping exit $?"; exit 1'
)


DEFAULT_OVERLAY_MTU = 1450  # said when the source could not read its own


def overlay_mtu(output: str) -> int:
    found = re.search(r"^overlay mtu (\d+)$", output, re.MULTILINE)
    return int(found[1]) if found else DEFAULT_OVERLAY_MTU


def held_path_mtu(output: str) -> int | None:
    """The path MTU the source's kernel holds for the target (df-echo's first line)."""
    found = re.search(r"^path mtu (\d+)$", output, re.MULTILINE)
    return int(found[1]) if found else None


def small_packets_lost(output: str) -> bool:
    """The DF test's small ping after a lost full-size one: did it fail too?"""
    found = re.search(r"^small ping exit (\d+)$", output, re.MULTILINE)
    return found is not None and found[1] != "0"


def mtu_test(vctx: VerifyContext, a: Probe, b: Probe) -> ProbeTest:
    argv = ["sh", "-c", DF_SCRIPT, "df", b.address, source(DF_ECHO).decode()]
    return ProbeTest(f"df.{a.name}.{b.name}", a, argv, lambda c, _o: c == 0)


def mtu_result(vctx: VerifyContext, a: Probe, b: Probe, seen: Outcome, cmd: str) -> CheckResult:
    mtu = overlay_mtu(seen.output)
    message = f"{mtu}-byte packet with don't-fragment to {b.address} " + (
        "crossed" if seen.ok else f"was lost (exit {seen.code})"
    )
    hint = HINT_MTU
    held = held_path_mtu(seen.output)
    cached = held if held is not None and held < mtu else None
    if seen.ok and cached:
        # Not a fault of the path: it carries full-size packets now. The kernel forgets
        # the smaller value by itself; until then it sends smaller packets to b.
        message += (
            f" (the source's kernel still holds a path MTU of {cached} for it, cached from "
            "an earlier 'fragmentation needed': it expires by itself, net.ipv4.route."
            "mtu_expires)"
        )
    small_lost = not seen.ok and small_packets_lost(seen.output)
    # Only an MTU problem if small packets get through: otherwise nothing does.
    if small_lost:
        message += "; small packets are lost too, so this is not the MTU"
        hint = HINT_DATAPLANE
    return pair_result(
        "mtu.df",
        a,
        b,
        seen,
        message,
        hint,
        cmd,
        overlay_mtu=mtu,
        lab_mtu=vctx.lab.spec.lab.mtu,
        cached_path_mtu=cached,
        # Whether the test's small ping crossed after a lost full-size echo (else None).
        small_packets_cross=not small_lost if "small ping exit" in seen.output else None,
        small_lost=small_lost,
    )
