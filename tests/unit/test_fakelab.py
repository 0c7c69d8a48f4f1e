"""The fake lab the diagnosis tests run the checks against: it answers only the I/O
it models, and what it answers agrees with the code that reads it."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakelab import FakeLab, FakeLabError, fault_lab_spec

import overlaylab.checks.kv
import overlaylab.netns
from overlaylab.checks.probes import ensure_probes, exec_in


@pytest.fixture
def lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeLab:
    return FakeLab(fault_lab_spec(), tmp_path / "state", monkeypatch)


def test_a_command_it_does_not_model_is_an_error_not_a_guess(lab: FakeLab) -> None:
    with pytest.raises(FakeLabError, match="does not answer the command"):
        exec_in(lab.ctx, "n1", "probe-dn-n1", ["wget", "-q", "-O-", "http://mongo"])


def test_a_check_reaching_the_network_in_a_new_way_stops_the_fake(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        overlaylab.checks.kv, "netns_socket", overlaylab.netns.netns_socket, raising=False
    )
    with pytest.raises(FakeLabError, match=r"overlaylab\.netns\.netns_socket"):
        FakeLab(fault_lab_spec(), tmp_path / "state", monkeypatch)


def test_probes_are_found_by_the_real_ensure_probes(lab: FakeLab) -> None:
    probes, problems = ensure_probes(lab.ctx)
    assert problems == {}
    assert len(probes) == 3 * 2 * 2  # nodes x overlays x slots
    assert {p.address for p in probes} == {
        c.networks[p.network] for p in probes if (c := lab.container(p.name)) is not None
    }


def test_a_dead_engine_is_a_problem_for_ensure_probes(lab: FakeLab) -> None:
    lab.kill_engine("n2")
    probes, problems = ensure_probes(lab.ctx)
    assert set(problems) == {"n2"}
    assert problems["n2"].startswith("DockerException: Error while fetching server API version")
    assert "n2" not in {p.node for p in probes}


def test_a_second_lab_takes_over_the_checks_io(
    lab: FakeLab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lab.stop_kv()
    second = FakeLab(fault_lab_spec(), tmp_path / "second", monkeypatch)
    assert second.verify().ok
