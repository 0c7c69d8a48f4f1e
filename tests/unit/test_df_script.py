"""The DF test's script, in this host's sh: a fake ping stands in for iputils ping and a
file for eth0's MTU, so every branch (crossed, lost, lost with small packets too) runs."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from overlaylab.checks.connectivity import (
    DEFAULT_OVERLAY_MTU,
    DF_SCRIPT,
    overlay_mtu,
    small_packets_lost,
)
from overlaylab.checks.probes import IPUTILS_PING

MTU_FILE = "/sys/class/net/eth0/mtu"


def run_df(
    tmp_path: Path, mtu: str | None, largest_crossing: int
) -> subprocess.CompletedProcess[str]:
    """DF_SCRIPT with a ping that answers payloads up to `largest_crossing` bytes."""
    ping = tmp_path / "ping"
    ping.write_text(
        "#!/bin/sh\n"
        'size=56; while [ $# -gt 0 ]; do [ "$1" = -s ] && size=$2; shift; done\n'
        f'echo "ping payload $size"; [ "$size" -le {largest_crossing} ]\n'
    )
    ping.chmod(0o755)
    mtu_file = tmp_path / "mtu"
    if mtu is not None:
        mtu_file.write_text(mtu + "\n")
    script = DF_SCRIPT.replace(IPUTILS_PING, str(ping)).replace(MTU_FILE, str(mtu_file))
    assert script != DF_SCRIPT
    return subprocess.run(
        ["sh", "-c", script, "df", "10.0.9.3"], capture_output=True, text=True, timeout=10
    )


def test_a_full_size_packet_that_crosses_passes(tmp_path: Path) -> None:
    done = run_df(tmp_path, "1450", largest_crossing=1500)
    assert done.returncode == 0
    assert overlay_mtu(done.stdout) == 1450
    assert "ping payload 1422" in done.stdout  # the MTU less 28 bytes of headers
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
