"""tests/integration/test_zookeeper_lab.py judges the first verify of a ZooKeeper-backed
lab whichever way dockerd 20.10 behaves there: traffic crossed both ways, or the engines'
crash is named and nothing else is blamed. Here its judgement meets the fake lab's
ZooKeeper lab, working and with engines that panic when a container joins the overlay,
on every CI: it must accept each true report and refuse each report that lies."""

from __future__ import annotations

import copy
import importlib
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from fakelab import ZK_YML, FakeLab
from lab_specs import REPO

from overlaylab.report.json_report import report_to_dict
from overlaylab.spec import load_spec

Report = dict[str, Any]


@pytest.fixture(scope="module")
def zk_test() -> Iterator[ModuleType]:
    """The integration module itself (its helpers import tests/integration's own)."""
    folder = str(REPO / "tests" / "integration")
    sys.path.insert(0, folder)
    try:
        yield importlib.import_module("test_zookeeper_lab")
    finally:
        sys.path.remove(folder)


def zk_lab(tmp_path: Path) -> FakeLab:
    return FakeLab(load_spec(ZK_YML), tmp_path / "state", ZK_YML)


def judge(zk_test: ModuleType, report: Report) -> None:
    """The integration test's decision on a report, as it makes it."""
    results = {c["id"]: c["results"] for c in report["checks"]}
    if report["ok"]:
        zk_test._assert_traffic_crossed(results)
    else:
        zk_test._assert_the_crash_is_named(report, results)


def results_of(report: Report, check: str) -> list[dict[str, Any]]:
    return next(c["results"] for c in report["checks"] if c["id"] == check)


def test_a_working_zookeeper_lab_passes_on_its_traffic(zk_test: ModuleType, tmp_path: Path) -> None:
    report = report_to_dict(zk_lab(tmp_path).verify())
    assert report["ok"]
    judge(zk_test, report)
    # Traffic that crossed one way only is no pass.
    one_way = copy.deepcopy(report)
    udp = results_of(one_way, "connectivity.udp")
    udp[:] = [r for r in udp if r["source"] != "beta"]
    with pytest.raises(AssertionError):
        judge(zk_test, one_way)


def test_engines_that_panic_pass_only_when_the_crash_is_named(
    zk_test: ModuleType, tmp_path: Path
) -> None:
    lab = zk_lab(tmp_path)
    for node in ("alpha", "beta"):
        lab.panic_on_overlay_join(node)
    report = report_to_dict(lab.verify())
    assert not report["ok"]
    judge(zk_test, report)

    lying = copy.deepcopy(report)
    lying["ok"] = True  # the same run said to be green: no traffic crossed
    with pytest.raises(AssertionError):
        judge(zk_test, lying)

    blamed = copy.deepcopy(report)
    blamed["diagnosis"] = [{"cause": "a firewall drops 7946 on alpha and beta"}]
    with pytest.raises(AssertionError):
        judge(zk_test, blamed)

    unnamed = copy.deepcopy(report)
    for result in results_of(unnamed, "engines.api"):
        result["status"], result["message"] = "pass", "answers (20.10.24)"
    with pytest.raises(AssertionError):
        judge(zk_test, unnamed)

    stale = copy.deepcopy(report)  # a measurement through a dead engine left standing
    results_of(stale, "underlay.gossip")[0]["status"] = "pass"
    with pytest.raises(AssertionError):
        judge(zk_test, stale)
