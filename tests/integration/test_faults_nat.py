"""The classic VirtualBox mistake, for real: engines advertising a NAT eth0.

Its own module so that no other lab runs while its host snapshot is compared.
"""

from __future__ import annotations

from hostsnap import HostSnapshot, wait_until_clean
from lab_cli import causes, failures, invoke, verify_json

NAT = "tests/testdata/labs/faults-nat.yml"


def test_cluster_advertise_on_the_nat_interface() -> None:
    before = HostSnapshot.take()
    try:
        invoke("up", "-i", NAT)
        report = verify_json(NAT, "--skip", "names")
    finally:
        invoke("down", "-i", NAT, check=False)
    failed = failures(report)
    assert len(failed["engines.advertise"]) == 2
    result = failed["engines.advertise"][0]
    assert "advertises 10.0.2.15:2376" in result["message"]
    assert "eth1:2376" in result["hint"]
    assert not set(failed) & {"engines.api", "kv.reachable", "networks.present"}
    assert causes(report) == ["2 engine(s) advertise an address their peers cannot reach"]
    assert wait_until_clean(before) == []
