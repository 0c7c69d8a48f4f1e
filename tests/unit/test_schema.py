"""inventory/schema.json is generated from the models and must not go stale."""

from __future__ import annotations

import json
from pathlib import Path

from lab_specs import REPO

from overlaylab.spec.schema import REGENERATE, SCHEMA_PATH, generate_schema, write_schema


def test_committed_schema_is_current() -> None:
    assert SCHEMA_PATH == REPO / "inventory" / "schema.json"
    committed = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    assert committed == generate_schema(), (
        f"{SCHEMA_PATH} is stale: run `{REGENERATE}` and commit the result"
    )


def test_schema_uses_yaml_spellings() -> None:
    schema = generate_schema()
    engine = schema["$defs"]["Engine"]["properties"]
    assert {"cluster-store", "cluster-advertise", "cluster-store-opts"} <= set(engine)
    assert "cluster_store" not in engine
    assert "apiVersion" in schema["properties"]
    assert schema["additionalProperties"] is False
    assert schema["title"].startswith("overlaylab cluster spec")


def test_write_schema(tmp_path: Path) -> None:
    path = write_schema(tmp_path / "schema.json")
    assert json.loads(path.read_text(encoding="utf-8")) == generate_schema()
    assert path.read_text(encoding="utf-8").endswith("}\n")
