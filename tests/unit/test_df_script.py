"""The DF test's script, in this host's sh: a fake ping stands in for iputils ping and a
file for eth0's MTU, so every branch (crossed, lost, lost with small packets too) runs."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from overlaylab.probe_tools import DF_ECHO, source
from overlaylab.verify.checks.mtu import (
    DEFAULT_OVERLAY_MTU,
    DF_SCRIPT,
    PERL,
    held_path_mtu,
    overlay_mtu,
    small_packets_lost,
)
from overlaylab.verify.probes import IPUTILS_PING

MTU_FILE = "/sys/class/net/eth0/mtu"


def run_df(
    tmp_path: Path, mtu: str | None, largest_crossing: int, held: int | None = None
) -> subprocess.CompletedProcess[str]:
    """DF_SCRIPT with a ping and a perl that answer payloads up to `largest_crossing`
    bytes; the perl (df-echo's stand-in) says the kernel holds a path MTU of `held`."""
    ping = tmp_path / "ping"
    ping.write_text(
        "#!/bin/sh\n"
        'size=56; while [ $# -gt 0 ]; do [ "$1" = -s ] && size=$2; shift; done\n'
        f'echo "ping payload $size"; [ "$size" -le {largest_crossing} ]\n'
    )
    perl = tmp_path / "perl"
    perl.write_text(
        "#!/bin/sh\n"
        '[ "$1" = -e ] && [ -n "$2" ] || exit 9\n'  # df-echo's source, then address and size
        f'echo "path mtu {held or 0}"; echo "df-echo $3 $4"\n'
        f"[ $(($4 - 28)) -le {largest_crossing} ]\n"
    )
    for tool in (ping, perl):
        tool.chmod(0o755)
    mtu_file = tmp_path / "mtu"
    if mtu is not None:
        mtu_file.write_text(mtu + "\n")
    script = (
        DF_SCRIPT.replace(IPUTILS_PING, str(ping))
        .replace(PERL, str(perl))
        .replace(MTU_FILE, str(mtu_file))
    )
    assert str(perl) in script and str(ping) in script and str(mtu_file) in script
    return subprocess.run(
        ["sh", "-c", script, "df", "10.0.9.3", source(DF_ECHO).decode()],
        capture_output=True,
        text=True,
        timeout=10,
    )


def test_a_full_size_packet_that_crosses_passes(tmp_path: Path) -> None:
    done = run_df(tmp_path, "1450", largest_crossing=1500)
    assert done.returncode == 0
    assert overlay_mtu(done.stdout) == 1450
    assert "df-echo 10.0.9.3 1450" in done.stdout  # a packet of the overlay's MTU
    assert "small ping" not in done.stdout


@pytest.mark.parametrize(("largest", "small_lost"), [(1000, False), (0, True)])
def test_a_lost_full_size_packet_fails_and_says_whether_small_ones_cross(
    tmp_path: Path, largest: int, small_lost: bool
) -> None:
    done = run_df(tmp_path, "1450", largest_crossing=largest)
    assert done.returncode == 1
    assert small_packets_lost(done.stdout) is small_lost


def test_an_unreadable_mtu_fails_without_claiming_small_packets_are_lost(tmp_path: Path) -> None:
    done = run_df(tmp_path, None, largest_crossing=1500)
    assert done.returncode == 2
    assert overlay_mtu(done.stdout) == DEFAULT_OVERLAY_MTU
    assert not small_packets_lost(done.stdout)


def test_the_path_mtu_the_kernel_holds_is_read_from_the_output(tmp_path: Path) -> None:
    done = run_df(tmp_path, "1450", largest_crossing=1500, held=1350)
    assert done.returncode == 0
    assert held_path_mtu(done.stdout) == 1350


@pytest.mark.skipif(os.geteuid() != 0, reason="df-echo opens a raw ICMP socket (root)")
def test_df_echo_sends_a_full_size_dont_fragment_echo_on_loopback(tmp_path: Path) -> None:
    """The real df-echo, with this machine's perl, to 127.0.0.1 only."""
    script = tmp_path / "df-echo"
    script.write_bytes(source(DF_ECHO))
    crossed = subprocess.run(
        ["perl", str(script), "127.0.0.1", "1450"], capture_output=True, text=True, timeout=10
    )
    assert crossed.returncode == 0, crossed.stdout + crossed.stderr
    assert held_path_mtu(crossed.stdout) == 65535  # lo's MTU: nothing cached
    assert "echo of 1450 bytes with don't-fragment came back" in crossed.stdout
    too_big = subprocess.run(
        ["perl", str(script), "127.0.0.1", "65600"], capture_output=True, text=True, timeout=10
    )
    assert too_big.returncode == 1 and "Message too long" in too_big.stdout
