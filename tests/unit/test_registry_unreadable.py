"""An app registry that cannot be read is never a pass nor a quiet skip: what it would
have decided is 'not tested', filed under the store's own finding (fake lab)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakelab import FakeLab, fault_lab_spec


@pytest.fixture
def lab(tmp_path: Path) -> FakeLab:
    return FakeLab(fault_lab_spec(("n1", "n2", "n3")), tmp_path / "state")


def test_a_hung_store_leaves_registered_endpoints_untested(lab: FakeLab) -> None:
    lab.register_app("demo_web_1", "fee-service", 5000)
    lab.hang_kv()
    report = lab.verify()
    [endpoint] = [r for r in report.results if r.check == "discovery.endpoints"]
    assert endpoint.status == "error", endpoint
    assert endpoint.message.startswith("not tested: cannot read the registry on kv")
    first = report.diagnosis[0]
    assert first.cause == "the KV store (etcd on kv) does not answer"
    assert "discovery.endpoints" in first.checks  # filed under the store, not a cause of its own


def test_a_store_that_answers_with_no_app_registered_skips_the_check(lab: FakeLab) -> None:
    report = lab.verify()
    [endpoint] = [r for r in report.results if r.check == "discovery.endpoints"]
    assert endpoint.status == "skip" and endpoint.message == "no app registered itself"
