"""The integration lanes get every module once, keep the modules that share a lab (or a
folder the lanes do not separate) together, and come out about even."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

INTEGRATION = Path(__file__).resolve().parent.parent / "integration"


def lanes_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("lanes", INTEGRATION / "lanes.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("lanes", module)
    spec.loader.exec_module(module)
    return module


lanes = lanes_module()
MODULES = sorted(p.name for p in INTEGRATION.glob("test_*.py"))


def test_every_module_runs_once_and_shared_ones_share_a_lane() -> None:
    for count in (1, 2, 3, 4):
        dealt = lanes.deal(MODULES, count)
        assert sorted(m for lane in dealt for m in lane.modules) == MODULES
        for together in lanes.TOGETHER:
            holding = {lane.number for lane in dealt for m in together if m in lane.modules}
            assert len(holding) == 1, (count, together, holding)


def test_lanes_come_out_within_one_group_of_each_other() -> None:
    def weight(group: tuple[str, ...]) -> int:
        return sum(lanes.WEIGHTS.get(m, lanes.DEFAULT_WEIGHT) for m in group)

    groups = [*lanes.TOGETHER, *[(m,) for m in lanes.WEIGHTS]]
    heaviest_group = max(weight(g) for g in groups)
    for count in (2, 3):
        weights = [lane.weight for lane in lanes.deal(MODULES, count)]
        assert len(weights) == count
        assert max(weights) - min(weights) <= heaviest_group


def test_every_weighed_module_exists() -> None:
    """A renamed module would run unweighed and could unbalance the lanes."""
    assert set(lanes.WEIGHTS) <= set(MODULES)
    assert {m for group in lanes.TOGETHER for m in group} <= set(MODULES)
