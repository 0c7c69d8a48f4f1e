"""Bad input: one clear paragraph naming the file, the YAML path and the fix; nothing made."""

from __future__ import annotations

from pathlib import Path

from hostsnap import HostSnapshot, wait_until_clean
from lab_cli import invoke


def test_invalid_spec_is_refused_before_anything_is_created(tmp_path: Path) -> None:
    spec = tmp_path / "broken.yml"
    spec.write_text(
        "apiVersion: overlaylab/v1\nkind: Cluster\nname: broken\n"
        "engine:\n  clsuter-store: auto\n"
        "nodes:\n  - name: kv\n    roles: [kv]\n  - name: Node_1\n"
    )
    before = HostSnapshot.take()
    result = invoke("up", "-i", str(spec), check=False)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr + result.stdout
    assert str(spec) in result.stderr
    assert (
        "line 5, engine.clsuter-store: unknown key; did you mean 'cluster-store'?" in result.stderr
    )
    assert "2 problems" in result.stderr  # every problem at once, not the first only
    assert "line 9, nodes[1].name:" in result.stderr
    assert wait_until_clean(before) == []


def test_missing_spec_file(tmp_path: Path) -> None:
    result = invoke("up", "-i", str(tmp_path / "nope.yml"), check=False)
    assert result.returncode == 2 and "file not found" in result.stderr
    assert "Traceback" not in result.stderr


def test_semantic_error_names_path_and_fix(tmp_path: Path) -> None:
    spec = tmp_path / "outside.yml"
    spec.write_text(
        "apiVersion: overlaylab/v1\nkind: Cluster\nname: outside\n"
        "nodes:\n  - name: kv\n    roles: [kv]\n  - name: n1\n    address: 10.1.1.1\n"
    )
    before = HostSnapshot.take()
    result = invoke("up", "-i", str(spec), check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "line 8, nodes[1].address:" in result.stderr and "192.168.99.0/24" in result.stderr
    assert wait_until_clean(before) == []
