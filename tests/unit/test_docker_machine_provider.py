"""The docker-machine provider says, before anything starts, what this machine lacks to
run machines.sh, and where the rendered script is."""

from __future__ import annotations

from pathlib import Path

import pytest
from lab_specs import REPO

from overlaylab.context import open_lab
from overlaylab.errors import PreflightError
from overlaylab.providers.docker_machine import provider as dm
from overlaylab.up import pipeline

ARTICLE = REPO / "inventory/article-2015.yml"


def gaps_with(monkeypatch: pytest.MonkeyPatch, on_path: set[str]) -> list[tuple[str, str]]:
    monkeypatch.setattr(
        dm.shutil, "which", lambda name: f"/usr/bin/{name}" if name in on_path else None
    )
    return open_lab(ARTICLE).provider.preflight()


def test_missing_binary_and_driver_point_to_machines_sh(monkeypatch: pytest.MonkeyPatch) -> None:
    gaps = gaps_with(monkeypatch, set())
    whats = [what for what, _ in gaps]
    assert "`docker-machine` is not on PATH" in whats
    assert any("virtualbox driver needs VirtualBox" in w for w in whats)
    assert all(".overlaylab/render/article2015/machines.sh" in fix for _, fix in gaps[:2])


def test_with_docker_machine_and_virtualbox_only_the_swarm_pull_remains(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gaps = gaps_with(monkeypatch, {"docker-machine", "VBoxManage"})
    assert [what for what, _ in gaps] == [
        "--swarm makes docker-machine pull the swarm image, and no registry is reachable "
        "from a lab without one"
    ]


def test_up_stops_at_preflight_and_makes_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(dm.shutil, "which", lambda name: None)
    ctx = open_lab(ARTICLE)
    with pytest.raises(PreflightError) as raised:
        pipeline.preflight(ctx)
    assert "docker-machine" in str(raised.value)
    assert not ctx.provider.exists() and ctx.provider.destroy() == []
    with pytest.raises(PreflightError):
        ctx.provider.provision()
