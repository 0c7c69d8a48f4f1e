"""The lab's state file: atomic writes, tolerant reads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from overlaylab import state as state_mod
from overlaylab.state import LabState


def test_missing_file_loads_as_empty(tmp_path: Path) -> None:
    state = LabState.load(tmp_path / "nope" / "state.json")
    assert state.data == {}
    assert state.get("stacks", {"x": 1}) == {"x": 1}
    assert not (tmp_path / "nope").exists()  # loading creates nothing


@pytest.mark.parametrize("text", ['{"stacks": {"demo": "ab', "", "{", '{"a": 1}}'])
def test_torn_or_invalid_json_loads_as_empty(tmp_path: Path, text: str) -> None:
    path = tmp_path / "state.json"
    path.write_text(text)
    assert LabState.load(path).data == {}


def test_set_persists_and_reloads(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "state.json"
    state = LabState(path)
    state.set("stacks", {"demo": "f00"})
    state.set("engines", ["node1", "node2"])
    assert json.loads(path.read_text()) == {
        "engines": ["node1", "node2"],
        "stacks": {"demo": "f00"},
    }
    reloaded = LabState.load(path)
    assert reloaded.get("stacks") == {"demo": "f00"}
    assert reloaded.path == path


def test_set_overwrites_the_previous_value(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    LabState(path).set("k", 1)
    state = LabState.load(path)
    state.set("k", 2)
    assert LabState.load(path).get("k") == 2


def test_non_json_values_are_stored_as_strings(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    LabState(path).set("where", tmp_path)
    assert LabState.load(path).get("where") == str(tmp_path)


def test_save_leaves_no_temporary_files(tmp_path: Path) -> None:
    state = LabState(tmp_path / "state.json")
    for i in range(3):
        state.set(f"k{i}", i)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]


def test_failed_save_keeps_the_old_file_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "state.json"
    LabState(path).set("stacks", {"demo": "old"})
    before = path.read_bytes()

    def torn_dump(obj: Any, handle: Any, **kwargs: Any) -> None:
        handle.write('{"stacks": {"demo": "ne')  # half written, then killed
        raise KeyboardInterrupt

    monkeypatch.setattr(state_mod.json, "dump", torn_dump)
    state = LabState.load(path)
    with pytest.raises(KeyboardInterrupt):
        state.set("stacks", {"demo": "new"})
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]
    assert LabState.load(path).get("stacks") == {"demo": "old"}
