"""JSON schema of the cluster spec, for editors (yaml-language-server) and reviewers.

`inventory/schema.json` is generated from the models so the two cannot drift apart;
a unit test fails when the committed file is stale. Regenerate with:

    python -m overlaylab.spec.schema [PATH]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from overlaylab.spec.models import API_VERSION, ClusterSpec

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "inventory" / "schema.json"
SCHEMA_ID = "urn:overlaylab:cluster-spec:v1"
REGENERATE = "python -m overlaylab.spec.schema"


def generate_schema() -> dict[str, Any]:
    """The spec's JSON schema, keys spelled as in YAML (aliases such as cluster-store)."""
    schema = ClusterSpec.model_json_schema(by_alias=True)
    header: dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": f"overlaylab cluster spec ({API_VERSION}, kind Cluster)",
        "description": (
            "A multi-host Docker test lab: provider, lab network, KV store, engine "
            "options, nodes, overlay networks, images and stacks. Generated from "
            f"overlaylab/spec/models.py by `{REGENERATE}`; do not edit by hand."
        ),
    }
    # Header keys first so the file reads well; the model's own title is replaced.
    return {**header, **{k: v for k, v in schema.items() if k not in header}}


def render_schema() -> str:
    return json.dumps(generate_schema(), indent=2, ensure_ascii=False) + "\n"


def write_schema(path: str | Path = SCHEMA_PATH) -> Path:
    path = Path(path)
    path.write_text(render_schema(), encoding="utf-8")
    return path


def main(argv: list[str]) -> int:
    path = write_schema(argv[0] if argv else SCHEMA_PATH)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
